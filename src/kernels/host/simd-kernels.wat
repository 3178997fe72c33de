;; WebAssembly SIMD versions of the host kernels that do the most arithmetic
;; per value (host-kernels.ts has the same arithmetic in JavaScript, in
;; float64, and is the reference the tests hold these to). They run in the
;; memory of tfjs-wasm itself: every pointer is a byte offset of a tensor
;; there, so nothing is copied. Four float32 lanes at a time; the callers
;; check that row lengths are multiples of 4 where a loop assumes it.
;;
;; Built into simd-kernels.wasm.ts by `npm run build:simd`.
(module
  (import "env" "memory" (memory 1))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; y = x̂·γ + β per row of x [R, D], x̂ = (x − mean)·rstd, rstd = 1/√(var + eps);
  ;; the row statistics (mean, rstd) into stats [R, 2] unless stats is 0. D % 4 = 0.
  (func (export "layer_norm")
    (param $x i32) (param $g i32) (param $b i32) (param $y i32) (param $stats i32)
    (param $R i32) (param $D i32) (param $eps f32)
    (local $rowBytes i32) (local $r i32) (local $row i32) (local $k i32)
    (local $acc v128) (local $t v128) (local $mv v128) (local $rv v128)
    (local $mean f32) (local $rs f32) (local $Df f32)
    (local.set $rowBytes (i32.shl (local.get $D) (i32.const 2)))
    (local.set $Df (f32.convert_i32_u (local.get $D)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $r) (local.get $R)))
      (local.set $row (i32.mul (local.get $r) (local.get $rowBytes)))
      ;; mean
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $acc (f32x4.add (local.get $acc)
          (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l1)))
      (local.set $mean (f32.div (call $hsum (local.get $acc)) (local.get $Df)))
      (local.set $mv (f32x4.splat (local.get $mean)))
      ;; variance about the mean
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $t (f32x4.sub
          (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $k))))
          (local.get $mv)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $t) (local.get $t))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l2)))
      (local.set $rs (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (local.get $Df)) (local.get $eps)))))
      (if (local.get $stats) (then
        (f32.store (i32.add (local.get $stats) (i32.shl (local.get $r) (i32.const 3))) (local.get $mean))
        (f32.store offset=4 (i32.add (local.get $stats) (i32.shl (local.get $r) (i32.const 3))) (local.get $rs))))
      (local.set $rv (f32x4.splat (local.get $rs)))
      (local.set $k (i32.const 0))
      (block $e3 (loop $l3
        (br_if $e3 (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $row) (local.get $k)))
          (f32x4.add
            (f32x4.mul
              (f32x4.mul
                (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $k)))) (local.get $mv))
                (local.get $rv))
              (v128.load (i32.add (local.get $g) (local.get $k))))
            (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l3)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))

  ;; Backward of layer_norm from x and its row statistics: dγ = Σ_rows dy·x̂,
  ;; dβ = Σ_rows dy into dg, db [D]; unless dx is 0 also
  ;; dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·γ, plus res where res
  ;; is not 0. D % 4 = 0.
  (func (export "layer_norm_grad")
    (param $dy i32) (param $x i32) (param $stats i32) (param $g i32) (param $res i32)
    (param $dg i32) (param $db i32) (param $dx i32) (param $R i32) (param $D i32)
    (local $rowBytes i32) (local $r i32) (local $row i32) (local $k i32)
    (local $mv v128) (local $rv v128) (local $gy v128) (local $h v128) (local $dh v128)
    (local $sumv v128) (local $dotv v128) (local $sv v128) (local $tv v128) (local $v v128)
    (local $Df f32)
    (local.set $rowBytes (i32.shl (local.get $D) (i32.const 2)))
    (local.set $Df (f32.convert_i32_u (local.get $D)))
    (memory.fill (local.get $dg) (i32.const 0) (local.get $rowBytes))
    (memory.fill (local.get $db) (i32.const 0) (local.get $rowBytes))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $r) (local.get $R)))
      (local.set $row (i32.mul (local.get $r) (local.get $rowBytes)))
      (local.set $mv (f32x4.splat (f32.load (i32.add (local.get $stats) (i32.shl (local.get $r) (i32.const 3))))))
      (local.set $rv (f32x4.splat (f32.load offset=4 (i32.add (local.get $stats) (i32.shl (local.get $r) (i32.const 3))))))
      (local.set $sumv (v128.const f32x4 0 0 0 0))
      (local.set $dotv (v128.const f32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $gy (v128.load (i32.add (local.get $dy) (i32.add (local.get $row) (local.get $k)))))
        (local.set $h (f32x4.mul
          (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $k)))) (local.get $mv))
          (local.get $rv)))
        (v128.store (i32.add (local.get $dg) (local.get $k))
          (f32x4.add (v128.load (i32.add (local.get $dg) (local.get $k))) (f32x4.mul (local.get $gy) (local.get $h))))
        (v128.store (i32.add (local.get $db) (local.get $k))
          (f32x4.add (v128.load (i32.add (local.get $db) (local.get $k))) (local.get $gy)))
        (local.set $dh (f32x4.mul (local.get $gy) (v128.load (i32.add (local.get $g) (local.get $k)))))
        (local.set $sumv (f32x4.add (local.get $sumv) (local.get $dh)))
        (local.set $dotv (f32x4.add (local.get $dotv) (f32x4.mul (local.get $dh) (local.get $h))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l1)))
      (if (local.get $dx) (then
        (local.set $sv (f32x4.splat (f32.div (call $hsum (local.get $sumv)) (local.get $Df))))
        (local.set $tv (f32x4.splat (f32.div (call $hsum (local.get $dotv)) (local.get $Df))))
        (local.set $k (i32.const 0))
        (block $e2 (loop $l2
          (br_if $e2 (i32.ge_u (local.get $k) (local.get $rowBytes)))
          (local.set $h (f32x4.mul
            (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $k)))) (local.get $mv))
            (local.get $rv)))
          (local.set $v (f32x4.mul (local.get $rv)
            (f32x4.sub
              (f32x4.sub
                (f32x4.mul
                  (v128.load (i32.add (local.get $dy) (i32.add (local.get $row) (local.get $k))))
                  (v128.load (i32.add (local.get $g) (local.get $k))))
                (local.get $sv))
              (f32x4.mul (local.get $h) (local.get $tv)))))
          (if (local.get $res) (then
            (local.set $v (f32x4.add (local.get $v)
              (v128.load (i32.add (local.get $res) (i32.add (local.get $row) (local.get $k))))))))
          (v128.store (i32.add (local.get $dx) (i32.add (local.get $row) (local.get $k))) (local.get $v))
          (local.set $k (i32.add (local.get $k) (i32.const 16)))
          (br $l2)))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))

  ;; GELU's backward da = dy·(Φ(a) + a·φ(a)) over n values (n % 4 = 0), with
  ;; exp(−a²/2) as in host-kernels.ts's gaussian(): 2^−t, t = a²·log₂e/2, split
  ;; into its nearest integer m (put into the exponent bits) and a rest whose
  ;; power is a degree-6 polynomial; zero once t > 62.
  (func (export "gelu_grad")
    (param $dy i32) (param $a i32) (param $cdf i32) (param $da i32) (param $n i32)
    (local $k i32) (local $end i32)
    (local $v v128) (local $t v128) (local $keep v128) (local $m v128) (local $y v128) (local $e v128) (local $pow v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $a) (local.get $k))))
      (local.set $t (f32x4.mul (f32x4.mul (local.get $v) (local.get $v)) (f32x4.splat (f32.const 0.7213475204444817))))
      (local.set $keep (f32x4.le (local.get $t) (f32x4.splat (f32.const 62))))
      (local.set $t (f32x4.min (local.get $t) (f32x4.splat (f32.const 62))))
      (local.set $m (f32x4.nearest (local.get $t)))
      (local.set $y (f32x4.mul (f32x4.sub (local.get $m) (local.get $t)) (f32x4.splat (f32.const 0.6931471805599453))))
      ;; e^y = 1 + y(1 + y(1/2 + y(1/6 + y(1/24 + y(1/120 + y/720)))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.008333333333333333))
        (f32x4.mul (local.get $y) (f32x4.splat (f32.const 0.001388888888888889)))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.041666666666666664)) (f32x4.mul (local.get $y) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.16666666666666666)) (f32x4.mul (local.get $y) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.5)) (f32x4.mul (local.get $y) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $y) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $y) (local.get $e))))
      ;; 2^−m as the float32 with exponent field 127 − m
      (local.set $pow (i32x4.shl
        (i32x4.sub (i32x4.splat (i32.const 127)) (i32x4.trunc_sat_f32x4_s (local.get $m)))
        (i32.const 23)))
      (v128.store (i32.add (local.get $da) (local.get $k))
        (f32x4.mul
          (v128.load (i32.add (local.get $dy) (local.get $k)))
          (f32x4.add
            (v128.load (i32.add (local.get $cdf) (local.get $k)))
            (v128.and (local.get $keep)
              (f32x4.mul (local.get $v)
                (f32x4.mul (f32x4.mul (local.get $e) (local.get $pow)) (f32x4.splat (f32.const 0.3989422804014327))))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l))))

  ;; One head's softmax backward from P and dP [N, M]: dS = P ⊙ (dP − Σ_m dP ⊙ P)
  ;; per row, its transpose dST [M, N], and Pᵀ into pT [M, N]. Any M.
  (func (export "softmax_grad")
    (param $dP i32) (param $p i32) (param $dS i32) (param $dST i32) (param $pT i32) (param $N i32) (param $M i32)
    (local $n i32) (local $m i32) (local $row i32) (local $M4 i32) (local $col i32) (local $nBytes i32)
    (local $acc v128) (local $dot f32) (local $pv f32) (local $val f32)
    (local.set $M4 (i32.and (local.get $M) (i32.const -4)))
    (local.set $nBytes (i32.shl (local.get $N) (i32.const 2)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $row (i32.shl (i32.mul (local.get $n) (local.get $M)) (i32.const 2)))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $m (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $m) (local.get $M4)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul
            (v128.load (i32.add (local.get $dP) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2)))))
            (v128.load (i32.add (local.get $p) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2))))))))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (br $l1)))
      (local.set $dot (call $hsum (local.get $acc)))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $dot (f32.add (local.get $dot)
          (f32.mul
            (f32.load (i32.add (local.get $dP) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2)))))
            (f32.load (i32.add (local.get $p) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2))))))))
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (br $l2)))
      ;; dS and the transposed writes; col walks column n of the [M, N] outputs.
      (local.set $m (i32.const 0))
      (local.set $col (i32.shl (local.get $n) (i32.const 2)))
      (block $e3 (loop $l3
        (br_if $e3 (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $pv (f32.load (i32.add (local.get $p) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2))))))
        (local.set $val (f32.mul (local.get $pv)
          (f32.sub
            (f32.load (i32.add (local.get $dP) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2)))))
            (local.get $dot))))
        (f32.store (i32.add (local.get $dS) (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2)))) (local.get $val))
        (f32.store (i32.add (local.get $dST) (local.get $col)) (local.get $val))
        (f32.store (i32.add (local.get $pT) (local.get $col)) (local.get $pv))
        (local.set $col (i32.add (local.get $col) (local.get $nBytes)))
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (br $l3)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $rows))))

  ;; C = A·B in tiles of 2 rows × 16 columns of C, the 8 sums in registers
  ;; (a third row measured slower: V8 then spills): C[o, :] = Σ_r A(o, r)·B[r, :],
  ;; A(o, r) at a + o·aOut + r·aRed, B's rows at stride ldb and C's at ldc
  ;; (bytes), for rows ≥ 2 rows of C, K ≥ 1 terms and w ≥ 64 bytes of columns
  ;; (w % 16 = 0). With aOut and aRed swapped A is read transposed, so the one
  ;; loop gives dS·k, dSᵀ·q and Pᵀ·dO. The last tile of rows and of columns is
  ;; moved back to end at the edge: it recomputes a few values instead of
  ;; needing a remainder loop.
  (func $products
    (param $a i32) (param $aOut i32) (param $aRed i32) (param $b i32) (param $ldb i32)
    (param $c i32) (param $ldc i32) (param $rows i32) (param $K i32) (param $w i32)
    (local $o i32) (local $ot i32) (local $col i32) (local $ct i32) (local $r i32)
    (local $ap i32) (local $bp i32) (local $lastO i32) (local $lastC i32)
    (local $s v128) (local $zero v128) ;; zero is never set
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128)
    (local.set $lastO (i32.sub (local.get $rows) (i32.const 2)))
    (local.set $lastC (i32.sub (local.get $w) (i32.const 64)))
    (loop $outRows
      (local.set $ot (select (local.get $o) (local.get $lastO) (i32.lt_s (local.get $o) (local.get $lastO))))
      (local.set $col (i32.const 0))
      (loop $groups
        (local.set $ct (select (local.get $col) (local.get $lastC) (i32.lt_s (local.get $col) (local.get $lastC))))
        (local.set $ap (i32.add (local.get $a) (i32.mul (local.get $ot) (local.get $aOut))))
        (local.set $bp (i32.add (local.get $b) (local.get $ct)))
        (local.set $x0 (local.get $zero))
        (local.set $x1 (local.get $zero))
        (local.set $x2 (local.get $zero))
        (local.set $x3 (local.get $zero))
        (local.set $y0 (local.get $zero))
        (local.set $y1 (local.get $zero))
        (local.set $y2 (local.get $zero))
        (local.set $y3 (local.get $zero))
        (local.set $r (local.get $K))
        (loop $terms
          (local.set $s (v128.load32_splat (local.get $ap)))
          (local.set $x0 (f32x4.add (local.get $x0) (f32x4.mul (local.get $s) (v128.load (local.get $bp)))))
          (local.set $x1 (f32x4.add (local.get $x1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $bp)))))
          (local.set $x2 (f32x4.add (local.get $x2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $bp)))))
          (local.set $x3 (f32x4.add (local.get $x3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $bp)))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (local.get $aOut))))
          (local.set $y0 (f32x4.add (local.get $y0) (f32x4.mul (local.get $s) (v128.load (local.get $bp)))))
          (local.set $y1 (f32x4.add (local.get $y1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $bp)))))
          (local.set $y2 (f32x4.add (local.get $y2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $bp)))))
          (local.set $y3 (f32x4.add (local.get $y3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $bp)))))
          (local.set $ap (i32.add (local.get $ap) (local.get $aRed)))
          (local.set $bp (i32.add (local.get $bp) (local.get $ldb)))
          (br_if $terms (local.tee $r (i32.sub (local.get $r) (i32.const 1)))))
        (local.set $bp (i32.add (i32.add (local.get $c) (i32.mul (local.get $ot) (local.get $ldc))) (local.get $ct)))
        (v128.store (local.get $bp) (local.get $x0))
        (v128.store offset=16 (local.get $bp) (local.get $x1))
        (v128.store offset=32 (local.get $bp) (local.get $x2))
        (v128.store offset=48 (local.get $bp) (local.get $x3))
        (local.set $bp (i32.add (local.get $bp) (local.get $ldc)))
        (v128.store (local.get $bp) (local.get $y0))
        (v128.store offset=16 (local.get $bp) (local.get $y1))
        (v128.store offset=32 (local.get $bp) (local.get $y2))
        (v128.store offset=48 (local.get $bp) (local.get $y3))
        (br_if $groups (i32.lt_s (local.tee $col (i32.add (local.get $col) (i32.const 64))) (local.get $w))))
      (br_if $outRows (i32.lt_s (local.tee $o (i32.add (local.get $o) (i32.const 2))) (local.get $rows)))))

  ;; One head's attention backward at batch 1, written into its columns of
  ;; dqkv (out, [N, 3D]): from dO [N, D], qkv [N, 3D] (the head's q, k, v at
  ;; column off of each third) and its softmax P [N, N], dP = dO·vᵀ,
  ;; dS = P ⊙ (dP − Σ_key dP ⊙ P), dq = dS·k, dk = dSᵀ·q, dv = Pᵀ·dO, reading
  ;; q, k, v and dO where they lie. dS [N, N] and one dP row [N] go to scratch.
  ;; N ≥ 4, d ≥ 16, d % 4 = 0. dP goes four keys at a time, the last four
  ;; moved back to end at N (the dot product masks the keys counted twice).
  (func (export "attention_head_grad")
    (param $dO i32) (param $qkv i32) (param $p i32) (param $dS i32) (param $out i32)
    (param $N i32) (param $D i32) (param $off i32) (param $d i32)
    (local $rowQ i32) (local $rowO i32) (local $rowN i32) (local $dB i32) (local $lastJ i32)
    (local $q i32) (local $v i32) (local $dP i32)
    (local $i i32) (local $j i32) (local $jt i32) (local $c i32)
    (local $a i32) (local $b i32) (local $e i32) (local $f i32) (local $g i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $y0 v128) (local $y1 v128) (local $s v128) (local $dot v128)
    (local $zero v128) ;; never set
    (local.set $rowO (i32.shl (local.get $D) (i32.const 2)))
    (local.set $rowQ (i32.mul (local.get $rowO) (i32.const 3)))
    (local.set $rowN (i32.shl (local.get $N) (i32.const 2)))
    (local.set $dB (i32.shl (local.get $d) (i32.const 2)))
    (local.set $lastJ (i32.sub (local.get $N) (i32.const 4)))
    (local.set $off (i32.shl (local.get $off) (i32.const 2)))
    (local.set $q (i32.add (local.get $qkv) (local.get $off)))
    (local.set $v (i32.add (local.get $q) (i32.shl (local.get $rowO) (i32.const 1))))
    (local.set $dO (i32.add (local.get $dO) (local.get $off)))
    (local.set $out (i32.add (local.get $out) (local.get $off)))
    (local.set $dP (i32.add (local.get $dS) (i32.mul (local.get $N) (local.get $rowN))))
    ;; dS row by row: dP_i four keys at a time, then the softmax backward.
    (loop $rows
      (local.set $a (i32.add (local.get $p) (i32.mul (local.get $i) (local.get $rowN))))
      (local.set $b (i32.add (local.get $dS) (i32.mul (local.get $i) (local.get $rowN))))
      (local.set $e (i32.add (local.get $dO) (i32.mul (local.get $i) (local.get $rowO))))
      (local.set $dot (local.get $zero))
      (local.set $j (i32.const 0))
      (loop $tiles
        (local.set $jt (select (local.get $j) (local.get $lastJ) (i32.lt_s (local.get $j) (local.get $lastJ))))
        (local.set $f (i32.add (local.get $v) (i32.mul (local.get $jt) (local.get $rowQ))))
        (local.set $x0 (local.get $zero))
        (local.set $x1 (local.get $zero))
        (local.set $x2 (local.get $zero))
        (local.set $x3 (local.get $zero))
        (local.set $c (i32.const 0))
        (loop $chunks
          (local.set $s (v128.load (i32.add (local.get $e) (local.get $c))))
          (local.set $g (i32.add (local.get $f) (local.get $c)))
          (local.set $x0 (f32x4.add (local.get $x0) (f32x4.mul (local.get $s) (v128.load (local.get $g)))))
          (local.set $g (i32.add (local.get $g) (local.get $rowQ)))
          (local.set $x1 (f32x4.add (local.get $x1) (f32x4.mul (local.get $s) (v128.load (local.get $g)))))
          (local.set $g (i32.add (local.get $g) (local.get $rowQ)))
          (local.set $x2 (f32x4.add (local.get $x2) (f32x4.mul (local.get $s) (v128.load (local.get $g)))))
          (local.set $g (i32.add (local.get $g) (local.get $rowQ)))
          (local.set $x3 (f32x4.add (local.get $x3) (f32x4.mul (local.get $s) (v128.load (local.get $g)))))
          (br_if $chunks (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 16))) (local.get $dB))))
        ;; the four sums side by side: lanes (0+2, 1+3) of each pair, then of the pairs
        (local.set $y0 (f32x4.add
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x0) (local.get $x1))
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x0) (local.get $x1))))
        (local.set $y1 (f32x4.add
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x2) (local.get $x3))
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x2) (local.get $x3))))
        (local.set $s (f32x4.add
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $y0) (local.get $y1))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $y0) (local.get $y1))))
        (local.set $g (i32.shl (local.get $jt) (i32.const 2)))
        (v128.store (i32.add (local.get $dP) (local.get $g)) (local.get $s))
        ;; keys before j were counted by the previous tile
        (local.set $dot (f32x4.add (local.get $dot)
          (v128.and
            (i32x4.ge_s (v128.const i32x4 0 1 2 3) (i32x4.splat (i32.sub (local.get $j) (local.get $jt))))
            (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $a) (local.get $g)))))))
        (br_if $tiles (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 4))) (local.get $N))))
      (local.set $dot (f32x4.splat (call $hsum (local.get $dot))))
      (local.set $j (i32.const 0))
      (loop $ds
        (local.set $g (i32.shl (select (local.get $j) (local.get $lastJ) (i32.lt_s (local.get $j) (local.get $lastJ))) (i32.const 2)))
        (v128.store (i32.add (local.get $b) (local.get $g))
          (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $g)))
            (f32x4.sub (v128.load (i32.add (local.get $dP) (local.get $g))) (local.get $dot))))
        (br_if $ds (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 4))) (local.get $N))))
      (br_if $rows (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $N))))
    ;; dq = dS·k, dk = dSᵀ·q, dv = Pᵀ·dO
    (call $products (local.get $dS) (local.get $rowN) (i32.const 4) (i32.add (local.get $q) (local.get $rowO)) (local.get $rowQ)
      (local.get $out) (local.get $rowQ) (local.get $N) (local.get $N) (local.get $dB))
    (call $products (local.get $dS) (i32.const 4) (local.get $rowN) (local.get $q) (local.get $rowQ)
      (i32.add (local.get $out) (local.get $rowO)) (local.get $rowQ) (local.get $N) (local.get $N) (local.get $dB))
    (call $products (local.get $p) (i32.const 4) (local.get $rowN) (local.get $dO) (local.get $rowO)
      (i32.add (local.get $out) (i32.shl (local.get $rowO) (i32.const 1))) (local.get $rowQ) (local.get $N) (local.get $N) (local.get $dB)))

  ;; Copies a block of `rows` rows × w floats from src (row stride srcStride
  ;; floats) to dst (row stride dstStride floats).
  (func (export "copy_block")
    (param $src i32) (param $srcStride i32) (param $dst i32) (param $dstStride i32) (param $rows i32) (param $w i32)
    (local $r i32) (local $bytes i32) (local $sStep i32) (local $dStep i32)
    (local.set $bytes (i32.shl (local.get $w) (i32.const 2)))
    (local.set $sStep (i32.shl (local.get $srcStride) (i32.const 2)))
    (local.set $dStep (i32.shl (local.get $dstStride) (i32.const 2)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (memory.copy (local.get $dst) (local.get $src) (local.get $bytes))
      (local.set $src (i32.add (local.get $src) (local.get $sStep)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dStep)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $l))))

  ;; The transpose [w, rows] into dst of the block of `rows` rows × w floats at
  ;; src (row stride srcStride floats).
  (func (export "transpose_block")
    (param $src i32) (param $srcStride i32) (param $dst i32) (param $rows i32) (param $w i32)
    (local $r i32) (local $j i32) (local $rowBytes i32) (local $from i32) (local $to i32)
    (local.set $rowBytes (i32.shl (local.get $rows) (i32.const 2)))
    (block $done (loop $lr
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $from (i32.add (local.get $src) (i32.shl (i32.mul (local.get $r) (local.get $srcStride)) (i32.const 2))))
      (local.set $to (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2))))
      (local.set $j (i32.const 0))
      (block $e (loop $lj
        (br_if $e (i32.ge_u (local.get $j) (local.get $w)))
        (f32.store (local.get $to) (f32.load (local.get $from)))
        (local.set $from (i32.add (local.get $from) (i32.const 4)))
        (local.set $to (i32.add (local.get $to) (local.get $rowBytes)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lj)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $lr))))

  ;; Exact GELU y = a·Φ(a), Φ(a) = ½(1 + erf(a/√2)), over n values (n % 4 = 0),
  ;; also writing Φ(a) into cdf for the backward. erf(z), z ≥ 0, is
  ;; Abramowitz & Stegun 7.1.26, 1 − t·(a₁ + t(a₂ + t(a₃ + t(a₄ + t·a₅))))·e^(−z²)
  ;; with t = 1/(1 + p·z) (error under 1.5e-7), odd in z; e^(−z²) = 2^−(z²·log₂e)
  ;; as in gelu_grad.
  (func (export "gelu")
    (param $a i32) (param $y i32) (param $cdf i32) (param $n i32)
    (local $k i32) (local $end i32)
    (local $v v128) (local $z v128) (local $t v128) (local $u v128) (local $keep v128) (local $m v128) (local $r v128)
    (local $e v128) (local $pow v128) (local $erf v128) (local $phi v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $a) (local.get $k))))
      (local.set $z (f32x4.abs (f32x4.mul (local.get $v) (f32x4.splat (f32.const 0.7071067811865476)))))
      (local.set $t (f32x4.div (f32x4.splat (f32.const 1))
        (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $z) (f32x4.splat (f32.const 0.3275911))))))
      (local.set $u (f32x4.add (f32x4.splat (f32.const -1.453152027)) (f32x4.mul (local.get $t) (f32x4.splat (f32.const 1.061405429)))))
      (local.set $u (f32x4.add (f32x4.splat (f32.const 1.421413741)) (f32x4.mul (local.get $t) (local.get $u))))
      (local.set $u (f32x4.add (f32x4.splat (f32.const -0.284496736)) (f32x4.mul (local.get $t) (local.get $u))))
      (local.set $u (f32x4.add (f32x4.splat (f32.const 0.254829592)) (f32x4.mul (local.get $t) (local.get $u))))
      (local.set $u (f32x4.mul (local.get $t) (local.get $u)))
      ;; e^(−z²) = 2^−s, s = z²·log₂e, zero once s > 62
      (local.set $r (f32x4.mul (f32x4.mul (local.get $z) (local.get $z)) (f32x4.splat (f32.const 1.4426950408889634))))
      (local.set $keep (f32x4.le (local.get $r) (f32x4.splat (f32.const 62))))
      (local.set $r (f32x4.min (local.get $r) (f32x4.splat (f32.const 62))))
      (local.set $m (f32x4.nearest (local.get $r)))
      (local.set $r (f32x4.mul (f32x4.sub (local.get $m) (local.get $r)) (f32x4.splat (f32.const 0.6931471805599453))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.008333333333333333))
        (f32x4.mul (local.get $r) (f32x4.splat (f32.const 0.001388888888888889)))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.041666666666666664)) (f32x4.mul (local.get $r) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.16666666666666666)) (f32x4.mul (local.get $r) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 0.5)) (f32x4.mul (local.get $r) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $r) (local.get $e))))
      (local.set $e (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $r) (local.get $e))))
      (local.set $pow (i32x4.shl
        (i32x4.sub (i32x4.splat (i32.const 127)) (i32x4.trunc_sat_f32x4_s (local.get $m)))
        (i32.const 23)))
      (local.set $erf (f32x4.sub (f32x4.splat (f32.const 1))
        (v128.and (local.get $keep) (f32x4.mul (local.get $u) (f32x4.mul (local.get $e) (local.get $pow))))))
      ;; erf is odd: the sign of a
      (local.set $erf (v128.bitselect (f32x4.neg (local.get $erf)) (local.get $erf)
        (f32x4.lt (local.get $v) (f32x4.splat (f32.const 0)))))
      (local.set $phi (f32x4.mul (f32x4.add (local.get $erf) (f32x4.splat (f32.const 1))) (f32x4.splat (f32.const 0.5))))
      (v128.store (i32.add (local.get $cdf) (local.get $k)) (local.get $phi))
      (v128.store (i32.add (local.get $y) (local.get $k)) (f32x4.mul (local.get $v) (local.get $phi)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l))))
)
