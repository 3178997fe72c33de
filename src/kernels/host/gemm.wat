;; A matrix product for the transformer's frozen weights: C = A·B (+ bias),
;; A [M, K] row-major, B packed once per weight into panels of 8 columns,
;; [N/8, K, 8] (the 8 columns of a panel side by side for each k), C [M, N].
;; Each tile of 6 rows by one panel keeps its 6×8 sums in 12 vector locals
;; (with the panel's two vectors and a broadcast value, 15 of the 16 vector
;; registers an x86 engine has), so the inner loop is loads and
;; multiply-adds only. Rows past the last multiple of 6 run one at a time.
;;
;; Why not tfjs-wasm's product (XNNPACK): on one thread a whole step runs
;; about 1.1× faster with this one, at the shipped model's size and at
;; ViT-S/16's (`npm run bench:profile -- --compare-gemm`, docs/speed.md).
;; Written with plain SIMD multiply and add. `npm run build:simd` also makes
;; a variant with the relaxed fused multiply-add (one instruction, one
;; rounding, where the processor has FMA), which runs where the engine has
;; relaxed SIMD: there a product's last bits may differ from the plain
;; variant's, as between two BLAS builds (simd.test.ts holds the two to 1e-5).
;;
;; Built with simd-kernels.wat by `npm run build:simd`; a module of its own,
;; on a memory of its own kind or on the threaded build's shared one (simd.ts).
;; There, gemm-pool.ts runs one call per thread, each on its own columns
;; [j0, j1) of C: the threads write disjoint parts and read what is frozen.
(module
  (import "env" "memory" (memory 1))

  ;; gemm(a, b, bias, c, M, N, K, j0, j1): columns j0 ≤ j < j1 of C only;
  ;; bias [N] or 0 for none; N, j0 and j1 multiples of 8, K ≥ 1.
  (func (export "gemm") (param $a i32) (param $b i32) (param $bias i32) (param $c i32) (param $M i32) (param $N i32) (param $K i32) (param $j0 i32) (param $j1 i32)
    (local $lda i32) (local $ldc i32) (local $panel i32)
    (local $i i32) (local $j i32) (local $k i32) (local $ap i32) (local $bq i32) (local $cp i32)
    (local $z0 v128) (local $z1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128) (local $c50 v128) (local $c51 v128)
    (local.set $lda (i32.shl (local.get $K) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $N) (i32.const 2)))
    (local.set $panel (i32.shl (local.get $K) (i32.const 5)))
    ;; Panel j0/8 starts j0/8 panels of K×8 values into b.
    (local.set $j (local.get $j0))
    (local.set $b (i32.add (local.get $b) (i32.mul (i32.shr_u (local.get $j0) (i32.const 3)) (local.get $panel))))
    (block $done (loop $panels
      (br_if $done (i32.ge_u (local.get $j) (local.get $j1)))
      ;; Each sum starts at the bias of its column.
      (local.set $z0 (v128.const i32x4 0 0 0 0))
      (local.set $z1 (v128.const i32x4 0 0 0 0))
      (if (local.get $bias) (then
        (local.set $z0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $z1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))))
      (local.set $i (i32.const 0))
      (block $tiles_done (loop $tiles
        (br_if $tiles_done (i32.gt_u (i32.add (local.get $i) (i32.const 6)) (local.get $M)))
        (local.set $c00 (local.get $z0)) (local.set $c01 (local.get $z1)) (local.set $c10 (local.get $z0)) (local.set $c11 (local.get $z1)) (local.set $c20 (local.get $z0)) (local.set $c21 (local.get $z1)) (local.set $c30 (local.get $z0)) (local.set $c31 (local.get $z1)) (local.set $c40 (local.get $z0)) (local.set $c41 (local.get $z1)) (local.set $c50 (local.get $z0)) (local.set $c51 (local.get $z1))
        (local.set $ap (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
        (local.set $bq (local.get $b))
        (local.set $k (local.get $K))
        (loop $ks
          (local.set $b0 (v128.load (local.get $bq)))
          (local.set $b1 (v128.load offset=16 (local.get $bq)))
          (local.set $s (v128.load32_splat (local.get $ap)))
          (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (i32.mul (i32.const 1) (local.get $lda)))))
          (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (i32.mul (i32.const 2) (local.get $lda)))))
          (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (i32.mul (i32.const 3) (local.get $lda)))))
          (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (i32.mul (i32.const 4) (local.get $lda)))))
          (local.set $c40 (f32x4.add (local.get $c40) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c41 (f32x4.add (local.get $c41) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $ap) (i32.mul (i32.const 5) (local.get $lda)))))
          (local.set $c50 (f32x4.add (local.get $c50) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $c51 (f32x4.add (local.get $c51) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bq (i32.add (local.get $bq) (i32.const 32)))
          (br_if $ks (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
        (local.set $cp (i32.add (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (i32.mul (local.get $i) (local.get $ldc))))
        (v128.store (local.get $cp) (local.get $c00)) (v128.store offset=16 (local.get $cp) (local.get $c01))
        (v128.store (i32.add (local.get $cp) (i32.mul (i32.const 1) (local.get $ldc))) (local.get $c10)) (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const 1) (local.get $ldc))) (local.get $c11))
        (v128.store (i32.add (local.get $cp) (i32.mul (i32.const 2) (local.get $ldc))) (local.get $c20)) (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const 2) (local.get $ldc))) (local.get $c21))
        (v128.store (i32.add (local.get $cp) (i32.mul (i32.const 3) (local.get $ldc))) (local.get $c30)) (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const 3) (local.get $ldc))) (local.get $c31))
        (v128.store (i32.add (local.get $cp) (i32.mul (i32.const 4) (local.get $ldc))) (local.get $c40)) (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const 4) (local.get $ldc))) (local.get $c41))
        (v128.store (i32.add (local.get $cp) (i32.mul (i32.const 5) (local.get $ldc))) (local.get $c50)) (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const 5) (local.get $ldc))) (local.get $c51))
        (local.set $i (i32.add (local.get $i) (i32.const 6)))
        (br $tiles)))
      (block $rows_done (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $M)))
        (local.set $c00 (local.get $z0))
        (local.set $c01 (local.get $z1))
        (local.set $ap (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
        (local.set $bq (local.get $b))
        (local.set $k (local.get $K))
        (loop $ks
          (local.set $s (v128.load32_splat (local.get $ap)))
          (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s) (v128.load (local.get $bq)))))
          (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $bq)))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bq (i32.add (local.get $bq) (i32.const 32)))
          (br_if $ks (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
        (local.set $cp (i32.add (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (i32.mul (local.get $i) (local.get $ldc))))
        (v128.store (local.get $cp) (local.get $c00))
        (v128.store offset=16 (local.get $cp) (local.get $c01))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
      (local.set $b (i32.add (local.get $b) (local.get $panel)))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $panels)))))
