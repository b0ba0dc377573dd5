/**
 * WebAssembly (SIMD128) source of a batched f32 matrix multiply that runs inside tfjs-backend-wasm's own memory:
 *
 *   C[b] (M×N) = op(A[b]) · op(B[b]),   op(X) = X or Xᵀ,   every matrix row-major and contiguous.
 *
 * Why it exists: tfjs-backend-wasm 4.22 sends every matMul with a batch dimension or a transpose flag to a scalar
 * triple loop (`slow_batch_matmul`, ~2 GFLOP/s here) and only batch-1, untransposed products to XNNPACK. Attention
 * is made of exactly those products (QKᵀ, PV and their gradients).
 *
 * How: the classic GotoBLAS/BLIS scheme, shrunk. B is packed once per batch into panels of 8 columns (k-major,
 * zero-padded; a transposed B in one sequential pass over its storage), and a 4×8 micro-kernel keeps the 4×8 block of C in eight f32x4 registers over the whole k loop (one
 * splat of A times two vectors of B per row and k). A is read in place through four row pointers when untransposed;
 * transposed, A is first packed into k-major strips of 4 rows, in one sequential pass over its storage. Packing reads
 * either layout, so transposes cost nothing beyond that pass, which is O(MK + NK) against O(MNK) of work.
 * Ragged edges are computed on zero padding and stored lane by lane. An optional bias (a row vector added to every
 * row of C) starts the accumulators, so `x·W + b` is one pass.
 *
 * All pointers are byte offsets into the imported memory; strides are in elements.
 */
export const BMM_WAT = String.raw`
(module
  (import "env" "memory" (memory 0))

  ;; Packs a transposed B (stored N×K) into ceil(N/8) panels of K×8 floats at $dst, reading it sequentially: row j of
  ;; the storage is lane j mod 8 of panel j/8 (four values per vector load, stored lane by lane at stride 32).
  (func $packBT (param $base i32) (param $dst i32) (param $N i32) (param $K i32) (param $ldb i32)
    (local $j i32) (local $k i32) (local $d i32) (local $v v128) (local $k4 i32) (local $nPad i32) (local $src i32)
    (local.set $k4 (i32.and (local.get $K) (i32.const -4)))
    (local.set $j (i32.const 0))
    (loop $rows
      (local.set $src (i32.add (local.get $base) (i32.shl (i32.mul (local.get $j) (local.get $ldb)) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst)
        (i32.add (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (i32.shl (local.get $K) (i32.const 5)))
          (i32.shl (i32.and (local.get $j) (i32.const 7)) (i32.const 2)))))
      (local.set $k (i32.const 0))
      (block $vecDone (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $k) (local.get $k4)))
        (local.set $v (v128.load (local.get $src)))
        (f32.store (local.get $d) (f32x4.extract_lane 0 (local.get $v)))
        (f32.store offset=32 (local.get $d) (f32x4.extract_lane 1 (local.get $v)))
        (f32.store offset=64 (local.get $d) (f32x4.extract_lane 2 (local.get $v)))
        (f32.store offset=96 (local.get $d) (f32x4.extract_lane 3 (local.get $v)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $d (i32.add (local.get $d) (i32.const 128)))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $vec)))
      (block $tailDone (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $k) (local.get $K)))
        (f32.store (local.get $d) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $d (i32.add (local.get $d) (i32.const 32)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $tail)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $j) (local.get $N))))
    ;; zero lanes of the last panel past N
    (local.set $nPad (i32.and (i32.add (local.get $N) (i32.const 7)) (i32.const -8)))
    (block $padDone (loop $pad
      (br_if $padDone (i32.ge_u (local.get $j) (local.get $nPad)))
      (local.set $d (i32.add (local.get $dst)
        (i32.add (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (i32.shl (local.get $K) (i32.const 5)))
          (i32.shl (i32.and (local.get $j) (i32.const 7)) (i32.const 2)))))
      (local.set $k (i32.const 0))
      (loop $zk
        (f32.store (local.get $d) (f32.const 0))
        (local.set $d (i32.add (local.get $d) (i32.const 32)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $zk (i32.lt_u (local.get $k) (local.get $K))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $pad))))

  ;; Packs an untransposed B (K×N) into ceil(N/8) panels of K×8 floats at $dst (two vector copies per k; the
  ;; ragged last panel element by element, zero-padded).
  (func $packB (param $src i32) (param $dst i32) (param $N i32) (param $K i32) (param $ldb i32)
    (local $jp i32) (local $k i32) (local $c i32) (local $j i32) (local $row i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $ldb) (i32.const 2)))
    (local.set $jp (i32.const 0))
    (loop $panels
      (local.set $row (i32.add (local.get $src) (i32.shl (local.get $jp) (i32.const 2))))
      (local.set $k (i32.const 0))
      (loop $ks
        (if (i32.le_u (i32.add (local.get $jp) (i32.const 8)) (local.get $N))
          (then
            (v128.store (local.get $dst) (v128.load (local.get $row)))
            (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $row))))
          (else
            (local.set $c (i32.const 0))
            (loop $cs
              (local.set $j (i32.add (local.get $jp) (local.get $c)))
              (f32.store
                (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $j) (local.get $N))
                  (then (f32.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
                  (else (f32.const 0))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br_if $cs (i32.lt_u (local.get $c) (i32.const 8))))))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $ks (i32.lt_u (local.get $k) (local.get $K))))
      (local.set $jp (i32.add (local.get $jp) (i32.const 8)))
      (br_if $panels (i32.lt_u (local.get $jp) (local.get $N)))))

  ;; Packs all of a transposed A (stored K×M) into ceil(M/4) k-major strips of K×4 floats at $dst (strip s at
  ;; $dst + s·16K bytes), reading A sequentially: row k of the storage holds entry k of every strip.
  (func $packAT (param $base i32) (param $dst i32) (param $M i32) (param $K i32) (param $lda i32)
    (local $k i32) (local $s i32) (local $full i32) (local $stripBytes i32) (local $d i32) (local $r i32) (local $src i32)
    (local.set $full (i32.shr_u (local.get $M) (i32.const 2)))
    (local.set $stripBytes (i32.shl (local.get $K) (i32.const 4)))
    (local.set $k (i32.const 0))
    (loop $ks
      (local.set $src (i32.add (local.get $base) (i32.shl (i32.mul (local.get $k) (local.get $lda)) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $k) (i32.const 4))))
      (local.set $s (i32.const 0))
      (block $fullDone (loop $strips
        (br_if $fullDone (i32.ge_u (local.get $s) (local.get $full)))
        (v128.store (local.get $d) (v128.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $d (i32.add (local.get $d) (local.get $stripBytes)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $strips)))
      ;; ragged last strip: M mod 4 values, zero-padded
      (if (i32.and (local.get $M) (i32.const 3))
        (then
          (local.set $r (i32.const 0))
          (loop $rs
            (f32.store (i32.add (local.get $d) (i32.shl (local.get $r) (i32.const 2)))
              (if (result f32) (i32.lt_u (local.get $r) (i32.and (local.get $M) (i32.const 3)))
                (then (f32.load (i32.add (local.get $src) (i32.shl (local.get $r) (i32.const 2)))))
                (else (f32.const 0))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br_if $rs (i32.lt_u (local.get $r) (i32.const 4))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $ks (i32.lt_u (local.get $k) (local.get $K)))))

  ;; Address of row min(i, M−1) of an untransposed A (M×K, rows lda apart).
  (func $rowPtr (param $a i32) (param $i i32) (param $M i32) (param $lda i32) (result i32)
    (if (i32.ge_u (local.get $i) (local.get $M)) (then (local.set $i (i32.sub (local.get $M) (i32.const 1)))))
    (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $lda)) (i32.const 2))))

  ;; Stores the first $n (< 8) lanes of a row held in two vectors.
  (func $storePartial (param $dst i32) (param $lo v128) (param $hi v128) (param $n i32)
    (local $c i32) (local $v v128)
    (local.set $c (i32.const 0))
    (loop $cs
      (if (i32.lt_u (local.get $c) (local.get $n))
        (then
          (local.set $v (if (result v128) (i32.lt_u (local.get $c) (i32.const 4)) (then (local.get $lo)) (else (local.get $hi))))
          ;; lane (c mod 4) of v (extract_lane takes a constant lane)
          (f32.store (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2)))
            (block $lane (result f32)
              (if (i32.eqz (i32.and (local.get $c) (i32.const 3))) (then (br $lane (f32x4.extract_lane 0 (local.get $v)))))
              (if (i32.eq (i32.and (local.get $c) (i32.const 3)) (i32.const 1)) (then (br $lane (f32x4.extract_lane 1 (local.get $v)))))
              (if (i32.eq (i32.and (local.get $c) (i32.const 3)) (i32.const 2)) (then (br $lane (f32x4.extract_lane 2 (local.get $v)))))
              (f32x4.extract_lane 3 (local.get $v))))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $cs)))))

  ;; C[b] = op(A[b]) · op(B[b]) (+ bias) for b < batch, each matrix strided: batch b = (n, h) with n = b / H,
  ;; h = b mod H starts at n·sXn + h·sXh elements from X's pointer, and its rows are ldX elements apart (so heads can
  ;; be read from and written into a [tokens, heads·width] layout in place; sXn = 0 broadcasts).
  ;; $causal skips work that a causal mask makes zero, for square T×T operands of attention: 1 — A is lower
  ;; triangular (A[i][k] = 0 for k > i: P·V, dS·K), so row block ip stops at k = ip+4; 2 — op(A) is upper triangular
  ;; (Pᵀ·dY, dSᵀ·Q), so it starts at k = ip; 3 — only C's lower triangle is wanted (Q·Kᵀ, dY·Vᵀ): column blocks past
  ;; the row block are not computed and those entries are left unwritten. 0 — none.
  ;; $bias: N floats or 0 for none. Scratch: $ap ceil(M/4)·4·K floats (transA only), $bp ceil(N/8)·8·K floats,
  ;; $biasp ceil(N/8)·8 floats.
  (func (export "bmm")
    (param $a0 i32) (param $b0 i32) (param $c0 i32) (param $batch i32)
    (param $M i32) (param $N i32) (param $K i32) (param $transA i32) (param $transB i32) (param $H i32)
    (param $lda i32) (param $sAn i32) (param $sAh i32) (param $ldb i32) (param $sBn i32) (param $sBh i32)
    (param $ldc i32) (param $sCn i32) (param $sCh i32) (param $causal i32)
    (param $ap i32) (param $bp i32) (param $bias i32) (param $biasp i32)
    (local $a i32) (local $b i32) (local $c i32) (local $hn i32) (local $hh i32) (local $k0 i32) (local $k1 i32) (local $jEnd i32)
    (local $bi i32) (local $ip i32) (local $jp i32) (local $k i32) (local $pa i32) (local $pb i32)
    (local $rowBytes i32) (local $crow i32) (local $ncols i32) (local $nrows i32) (local $x v128) (local $y0 v128) (local $y1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $sa i32) (local $ko i32)
    (local.set $rowBytes (i32.shl (local.get $ldc) (i32.const 2)))
    ;; the bias, zero-padded to whole panels of 8
    (local.set $jp (i32.const 0))
    (loop $biasL
      (f32.store (i32.add (local.get $biasp) (i32.shl (local.get $jp) (i32.const 2)))
        (if (result f32) (i32.and (i32.ne (local.get $bias) (i32.const 0)) (i32.lt_u (local.get $jp) (local.get $N)))
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $jp) (i32.const 2)))))
          (else (f32.const 0))))
      (local.set $jp (i32.add (local.get $jp) (i32.const 1)))
      (br_if $biasL (i32.or (i32.lt_u (local.get $jp) (local.get $N)) (i32.and (local.get $jp) (i32.const 7)))))
    (local.set $bi (i32.const 0))
    (loop $batches
      (local.set $hn (i32.div_u (local.get $bi) (local.get $H)))
      (local.set $hh (i32.rem_u (local.get $bi) (local.get $H)))
      (local.set $a (i32.add (local.get $a0)
        (i32.shl (i32.add (i32.mul (local.get $hn) (local.get $sAn)) (i32.mul (local.get $hh) (local.get $sAh))) (i32.const 2))))
      (local.set $b (i32.add (local.get $b0)
        (i32.shl (i32.add (i32.mul (local.get $hn) (local.get $sBn)) (i32.mul (local.get $hh) (local.get $sBh))) (i32.const 2))))
      (local.set $c (i32.add (local.get $c0)
        (i32.shl (i32.add (i32.mul (local.get $hn) (local.get $sCn)) (i32.mul (local.get $hh) (local.get $sCh))) (i32.const 2))))
      (if (local.get $transB)
        (then (call $packBT (local.get $b) (local.get $bp) (local.get $N) (local.get $K) (local.get $ldb)))
        (else (call $packB (local.get $b) (local.get $bp) (local.get $N) (local.get $K) (local.get $ldb))))
      (if (local.get $transA) (then (call $packAT (local.get $a) (local.get $ap) (local.get $M) (local.get $K) (local.get $lda))))
      (local.set $ip (i32.const 0))
      (loop $rowBlocks
        ;; Rows ip..ip+3 of op(A): untransposed, read in place through four row pointers, k-stride 4 bytes (rows past M
        ;; repeat the last row; their results are not stored). Transposed, from their packed k-major strip, through
        ;; the same four pointers at k-stride 16.
        (if (local.get $transA)
          (then
            (local.set $r0 (i32.add (local.get $ap) (i32.mul (i32.shr_u (local.get $ip) (i32.const 2)) (i32.shl (local.get $K) (i32.const 4)))))
            (local.set $r1 (i32.add (local.get $r0) (i32.const 4)))
            (local.set $r2 (i32.add (local.get $r0) (i32.const 8)))
            (local.set $r3 (i32.add (local.get $r0) (i32.const 12)))
            (local.set $sa (i32.const 16)))
          (else
            (local.set $r0 (call $rowPtr (local.get $a) (local.get $ip) (local.get $M) (local.get $lda)))
            (local.set $r1 (call $rowPtr (local.get $a) (i32.add (local.get $ip) (i32.const 1)) (local.get $M) (local.get $lda)))
            (local.set $r2 (call $rowPtr (local.get $a) (i32.add (local.get $ip) (i32.const 2)) (local.get $M) (local.get $lda)))
            (local.set $r3 (call $rowPtr (local.get $a) (i32.add (local.get $ip) (i32.const 3)) (local.get $M) (local.get $lda)))
            (local.set $sa (i32.const 4))))
        (local.set $nrows (i32.sub (local.get $M) (local.get $ip)))
        ;; the k range and the column blocks this row block needs (see $causal above)
        (local.set $k0 (i32.const 0))
        (local.set $k1 (local.get $K))
        (local.set $jEnd (local.get $N))
        (if (i32.eq (local.get $causal) (i32.const 1))
          (then (if (i32.lt_u (i32.add (local.get $ip) (i32.const 4)) (local.get $K)) (then (local.set $k1 (i32.add (local.get $ip) (i32.const 4)))))))
        (if (i32.eq (local.get $causal) (i32.const 2)) (then (local.set $k0 (local.get $ip))))
        (if (i32.eq (local.get $causal) (i32.const 3))
          (then (if (i32.lt_u (i32.add (local.get $ip) (i32.const 4)) (local.get $N)) (then (local.set $jEnd (i32.add (local.get $ip) (i32.const 4)))))))
        (local.set $jp (i32.const 0))
        (loop $colBlocks
          (local.set $c00 (v128.load (i32.add (local.get $biasp) (i32.shl (local.get $jp) (i32.const 2)))))
          (local.set $c01 (v128.load offset=16 (i32.add (local.get $biasp) (i32.shl (local.get $jp) (i32.const 2)))))
          (local.set $c10 (local.get $c00)) (local.set $c11 (local.get $c01))
          (local.set $c20 (local.get $c00)) (local.set $c21 (local.get $c01))
          (local.set $c30 (local.get $c00)) (local.set $c31 (local.get $c01))
          (local.set $pb (i32.add (i32.add (local.get $bp) (i32.mul (local.get $jp) (i32.shl (local.get $K) (i32.const 2))))
            (i32.shl (local.get $k0) (i32.const 5))))
          (local.set $k (i32.sub (local.get $k1) (local.get $k0)))
          (local.set $ko (i32.mul (local.get $k0) (local.get $sa)))
          (loop $ks
            (local.set $y0 (v128.load (local.get $pb)))
            (local.set $y1 (v128.load offset=16 (local.get $pb)))
            (local.set $x (v128.load32_splat (i32.add (local.get $r0) (local.get $ko))))
            (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $y0))))
            (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $y1))))
            (local.set $x (v128.load32_splat (i32.add (local.get $r1) (local.get $ko))))
            (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $y0))))
            (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $y1))))
            (local.set $x (v128.load32_splat (i32.add (local.get $r2) (local.get $ko))))
            (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $y0))))
            (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $y1))))
            (local.set $x (v128.load32_splat (i32.add (local.get $r3) (local.get $ko))))
            (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $y0))))
            (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $y1))))
            (local.set $ko (i32.add (local.get $ko) (local.get $sa)))
            (local.set $pb (i32.add (local.get $pb) (i32.const 32)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br_if $ks (local.get $k)))
          ;; store the 4×8 block (rows < M, columns < N)
          (local.set $crow (i32.add (local.get $c)
            (i32.add (i32.mul (local.get $ip) (local.get $rowBytes)) (i32.shl (local.get $jp) (i32.const 2)))))
          (local.set $ncols (i32.sub (local.get $N) (local.get $jp)))
          (if (i32.ge_u (local.get $ncols) (i32.const 8))
            (then
              (v128.store (local.get $crow) (local.get $c00))
              (v128.store offset=16 (local.get $crow) (local.get $c01))
              (if (i32.gt_u (local.get $nrows) (i32.const 1)) (then
                (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                (v128.store (local.get $crow) (local.get $c10))
                (v128.store offset=16 (local.get $crow) (local.get $c11))
                (if (i32.gt_u (local.get $nrows) (i32.const 2)) (then
                  (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                  (v128.store (local.get $crow) (local.get $c20))
                  (v128.store offset=16 (local.get $crow) (local.get $c21))
                  (if (i32.gt_u (local.get $nrows) (i32.const 3)) (then
                    (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                    (v128.store (local.get $crow) (local.get $c30))
                    (v128.store offset=16 (local.get $crow) (local.get $c31)))))))))
            (else
              (call $storePartial (local.get $crow) (local.get $c00) (local.get $c01) (local.get $ncols))
              (if (i32.gt_u (local.get $nrows) (i32.const 1)) (then
                (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                (call $storePartial (local.get $crow) (local.get $c10) (local.get $c11) (local.get $ncols))
                (if (i32.gt_u (local.get $nrows) (i32.const 2)) (then
                  (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                  (call $storePartial (local.get $crow) (local.get $c20) (local.get $c21) (local.get $ncols))
                  (if (i32.gt_u (local.get $nrows) (i32.const 3)) (then
                    (local.set $crow (i32.add (local.get $crow) (local.get $rowBytes)))
                    (call $storePartial (local.get $crow) (local.get $c30) (local.get $c31) (local.get $ncols))))))))))
          (local.set $jp (i32.add (local.get $jp) (i32.const 8)))
          (br_if $colBlocks (i32.lt_u (local.get $jp) (local.get $jEnd))))
        (local.set $ip (i32.add (local.get $ip) (i32.const 4)))
        (br_if $rowBlocks (i32.lt_u (local.get $ip) (local.get $M))))
      (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
      (br_if $batches (i32.lt_u (local.get $bi) (local.get $batch)))))
)
`;
