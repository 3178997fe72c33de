;; GroupNorm's loops (norm-kernels.ts has the same arithmetic in JavaScript,
;; the reference the tests hold these to) over one image x [P, C] in NHWC
;; memory, channel fastest: each call does the channels c0 ≤ c < c1 only
;; (multiples of 4), for every position. So gemm-pool.ts can hand each
;; thread its own channels: the threads write disjoint parts and need no
;; reduction, and a channel's sum is added in the same order whatever the
;; thread count. Sums are float64, as in the JavaScript, which they match
;; bit for bit; the elementwise passes are float32.
;;
;; Per-channel coefficients come as coef [C/4, 4, 4]: for each four
;; channels, four rows of four (one v128 each, at offsets 0, 16, 32, 48).
;;
;; Built with simd-kernels.wat by `npm run build:simd`; a module of its own
;; so that gemm-pool.ts's workers instantiate it beside gemm.wat.
(module
  (import "env" "memory" (memory 1))

  ;; out[c] = Σ_p x[p, c], or, where mean ≠ 0, Σ_p (x[p, c] − mean[c])²;
  ;; out and mean float64 [C].
  (func (export "channel_sums")
    (param $x i32) (param $mean i32) (param $out i32) (param $P i32) (param $C i32) (param $c0 i32) (param $c1 i32)
    (local $row i32) (local $end i32) (local $stride i32) (local $k i32) (local $k0 i32) (local $k1 i32) (local $o i32)
    (local $v v128) (local $lo v128) (local $hi v128)
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (local.set $k0 (i32.shl (local.get $c0) (i32.const 2)))
    (local.set $k1 (i32.shl (local.get $c1) (i32.const 2)))
    (memory.fill (i32.add (local.get $out) (i32.shl (local.get $k0) (i32.const 1))) (i32.const 0)
      (i32.shl (i32.sub (local.get $k1) (local.get $k0)) (i32.const 1)))
    (local.set $row (local.get $x))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $P) (local.get $stride))))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $row) (local.get $end)))
      (local.set $k (local.get $k0))
      (block $e (loop $cols
        (br_if $e (i32.ge_u (local.get $k) (local.get $k1)))
        (local.set $v (v128.load (i32.add (local.get $row) (local.get $k))))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $hi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        ;; a float64 sum's offset is twice its float32 channel's
        (local.set $o (i32.shl (local.get $k) (i32.const 1)))
        (if (local.get $mean) (then
          (local.set $lo (f64x2.sub (local.get $lo) (v128.load (i32.add (local.get $mean) (local.get $o)))))
          (local.set $hi (f64x2.sub (local.get $hi) (v128.load offset=16 (i32.add (local.get $mean) (local.get $o)))))
          (local.set $lo (f64x2.mul (local.get $lo) (local.get $lo)))
          (local.set $hi (f64x2.mul (local.get $hi) (local.get $hi)))))
        (local.set $o (i32.add (local.get $out) (local.get $o)))
        (v128.store (local.get $o) (f64x2.add (v128.load (local.get $o)) (local.get $lo)))
        (v128.store offset=16 (local.get $o) (f64x2.add (v128.load offset=16 (local.get $o)) (local.get $hi)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cols)))
      (local.set $row (i32.add (local.get $row) (local.get $stride)))
      (br $rows))))

  ;; x̂ = (x − mean)·σ⁻¹ and y = x·a + b (then max(y, 0) where relu ≠ 0, a
  ;; NaN kept), coef rows mean, σ⁻¹, a, b.
  (func (export "gn_apply")
    (param $x i32) (param $coef i32) (param $xhat i32) (param $y i32) (param $P i32) (param $C i32) (param $relu i32)
    (param $c0 i32) (param $c1 i32)
    (local $i i32) (local $end i32) (local $stride i32) (local $k i32) (local $k1 i32) (local $at i32) (local $q i32)
    (local $v v128) (local $t v128) (local $zero v128) ;; zero is never set
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (local.set $k1 (i32.shl (local.get $c1) (i32.const 2)))
    (local.set $end (i32.mul (local.get $P) (local.get $stride)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (i32.shl (local.get $c0) (i32.const 2)))
      (block $e (loop $cols
        (br_if $e (i32.ge_u (local.get $k) (local.get $k1)))
        (local.set $at (i32.add (local.get $i) (local.get $k)))
        (local.set $q (i32.add (local.get $coef) (i32.shl (local.get $k) (i32.const 2))))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $at))))
        (v128.store (i32.add (local.get $xhat) (local.get $at))
          (f32x4.mul (f32x4.sub (local.get $v) (v128.load (local.get $q))) (v128.load offset=16 (local.get $q))))
        (local.set $t (f32x4.add (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $q))) (v128.load offset=48 (local.get $q))))
        (if (local.get $relu) (then (local.set $t (f32x4.pmax (local.get $t) (local.get $zero)))))
        (v128.store (i32.add (local.get $y) (local.get $at)) (local.get $t))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (local.get $stride)))
      (br $rows))))

  ;; The backward's sums: out float64 [2, C] gets Σ_p d·x̂ and Σ_p d, with
  ;; d = dy where y = 0, else dy masked by y > 0 (the ReLU's gradient).
  (func (export "gn_grad_sums")
    (param $dy i32) (param $xhat i32) (param $y i32) (param $out i32) (param $P i32) (param $C i32) (param $c0 i32) (param $c1 i32)
    (local $i i32) (local $end i32) (local $stride i32) (local $k i32) (local $k0 i32) (local $k1 i32) (local $at i32)
    (local $o i32) (local $o2 i32)
    (local $d v128) (local $x v128) (local $dlo v128) (local $dhi v128) (local $zero v128) ;; zero is never set
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (local.set $k0 (i32.shl (local.get $c0) (i32.const 2)))
    (local.set $k1 (i32.shl (local.get $c1) (i32.const 2)))
    (memory.fill (i32.add (local.get $out) (i32.shl (local.get $k0) (i32.const 1))) (i32.const 0)
      (i32.shl (i32.sub (local.get $k1) (local.get $k0)) (i32.const 1)))
    (memory.fill (i32.add (i32.add (local.get $out) (i32.shl (local.get $stride) (i32.const 1))) (i32.shl (local.get $k0) (i32.const 1)))
      (i32.const 0) (i32.shl (i32.sub (local.get $k1) (local.get $k0)) (i32.const 1)))
    (local.set $end (i32.mul (local.get $P) (local.get $stride)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (local.get $k0))
      (block $e (loop $cols
        (br_if $e (i32.ge_u (local.get $k) (local.get $k1)))
        (local.set $at (i32.add (local.get $i) (local.get $k)))
        (local.set $d (v128.load (i32.add (local.get $dy) (local.get $at))))
        (if (local.get $y) (then
          (local.set $d (v128.and (local.get $d)
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $at))) (local.get $zero))))))
        (local.set $x (v128.load (i32.add (local.get $xhat) (local.get $at))))
        (local.set $dlo (f64x2.promote_low_f32x4 (local.get $d)))
        (local.set $dhi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $d) (local.get $d))))
        (local.set $o (i32.add (local.get $out) (i32.shl (local.get $k) (i32.const 1))))
        (local.set $o2 (i32.add (local.get $o) (i32.shl (local.get $stride) (i32.const 1))))
        (v128.store (local.get $o) (f64x2.add (v128.load (local.get $o))
          (f64x2.mul (local.get $dlo) (f64x2.promote_low_f32x4 (local.get $x)))))
        (v128.store offset=16 (local.get $o) (f64x2.add (v128.load offset=16 (local.get $o))
          (f64x2.mul (local.get $dhi) (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))))
        (v128.store (local.get $o2) (f64x2.add (v128.load (local.get $o2)) (local.get $dlo)))
        (v128.store offset=16 (local.get $o2) (f64x2.add (v128.load offset=16 (local.get $o2)) (local.get $dhi)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (local.get $stride)))
      (br $rows))))

  ;; dx = d·k0 − k1 − x̂·k2, d as in gn_grad_sums, coef rows k0, k1, k2.
  (func (export "gn_grad_apply")
    (param $dy i32) (param $xhat i32) (param $y i32) (param $coef i32) (param $dx i32) (param $P i32) (param $C i32)
    (param $c0 i32) (param $c1 i32)
    (local $i i32) (local $end i32) (local $stride i32) (local $k i32) (local $k1 i32) (local $at i32) (local $q i32)
    (local $d v128) (local $zero v128) ;; zero is never set
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (local.set $k1 (i32.shl (local.get $c1) (i32.const 2)))
    (local.set $end (i32.mul (local.get $P) (local.get $stride)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (i32.shl (local.get $c0) (i32.const 2)))
      (block $e (loop $cols
        (br_if $e (i32.ge_u (local.get $k) (local.get $k1)))
        (local.set $at (i32.add (local.get $i) (local.get $k)))
        (local.set $q (i32.add (local.get $coef) (i32.shl (local.get $k) (i32.const 2))))
        (local.set $d (v128.load (i32.add (local.get $dy) (local.get $at))))
        (if (local.get $y) (then
          (local.set $d (v128.and (local.get $d)
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $at))) (local.get $zero))))))
        (v128.store (i32.add (local.get $dx) (local.get $at))
          (f32x4.sub
            (f32x4.sub (f32x4.mul (local.get $d) (v128.load (local.get $q))) (v128.load offset=16 (local.get $q)))
            (f32x4.mul (v128.load (i32.add (local.get $xhat) (local.get $at))) (v128.load offset=32 (local.get $q)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (local.get $stride)))
      (br $rows))))
)
