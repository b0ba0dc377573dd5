/**
 * WebAssembly (SIMD128) source of the GPT's fused element-wise kernels, in tfjs-backend-wasm's memory:
 *
 * - `gelu(x, y, n)`, `geluGrad(x, dy, dx, n)`: GELU, tanh form (GPT-2), and its derivative, one pass each instead of
 *   the 7 (forward) and ~12 (backward) tensor ops the composite takes. tanh is the rational approximation used by
 *   Eigen and XLA for float32 (odd degree-13 over even degree-6 polynomial on x clamped to ±7.9; error a few ulp).
 *
 * - `layerNorm(x, g, b, y, rows, d, eps)`, `layerNormGrad(x, g, dy, dx, dg, db, rows, d, eps)`: LayerNorm over rows of
 *   d (a multiple of 4) with gain and bias, and all three gradients in one kernel (instead of ~9 and ~20 ops). The
 *   backward recomputes each row's mean and 1/σ from x rather than saving them:
 *   dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ with dx̂ = dy·g;  dg = Σ dy·x̂;  db = Σ dy (sums over rows).
 * - `causalSoftmax(s, p, rows, t, scale)`, `causalSoftmaxGrad(p, dp, ds, rows, t, scale)`: attention's
 *   P = softmax(scale·S + causal mask) over rows of t (row r is query r mod t; keys past it get exactly 0, as
 *   exp(−1e9) does), and dS = scale · P ⊙ (dP − Σⱼ dP·P). exp is Cody–Waite range reduction and a degree-6
 *   polynomial (relative error ~2e-7).
 * - `adamw(p, g, m, v, p', m', v', n, gScale, β1, β2, bc1, bc2, eps, lr, decay)`: one AdamW update of a tensor
 *   (clip scale, moments, bias correction, decoupled decay factor) instead of ~14 ops.
 * - `tokenLogProbs(logits, targets, out, rows, v)`: log softmax(logits)[target] per row, and
 *   `tokenLogProbsGrad(logits, targets, dy, dx, rows, v)`: dy · (onehot(target) − softmax(logits)). log is
 *   ln2·exponent + 2·atanh series of the mantissa in [√½, √2) (relative error ~1e-9 before rounding).
 * - `colSum(x, out, rows, m)`: sums of the columns of a rows×m matrix (a bias's gradient), m a multiple of 4.
 *
 * Element-wise n may be any length: four lanes at a time, then the remainder one by one through the same vector
 * code. Pointers are byte offsets; lengths in elements.
 */
export const FUSED_WAT = String.raw`
(module
  (import "env" "memory" (memory 0))

  (func $tanh (param $x v128) (result v128)
    (local $x2 v128) (local $p v128) (local $q v128)
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (v128.const f32x4 -7.90531110763549805 -7.90531110763549805 -7.90531110763549805 -7.90531110763549805))
      (v128.const f32x4 7.90531110763549805 7.90531110763549805 7.90531110763549805 7.90531110763549805)))
    (local.set $x2 (f32x4.mul (local.get $x) (local.get $x)))
    (local.set $p (v128.const f32x4 -2.76076847742355e-16 -2.76076847742355e-16 -2.76076847742355e-16 -2.76076847742355e-16))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 2.00018790482477e-13 2.00018790482477e-13 2.00018790482477e-13 2.00018790482477e-13)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 -8.60467152213735e-11 -8.60467152213735e-11 -8.60467152213735e-11 -8.60467152213735e-11)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 5.12229709037114e-08 5.12229709037114e-08 5.12229709037114e-08 5.12229709037114e-08)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 1.48572235717979e-05 1.48572235717979e-05 1.48572235717979e-05 1.48572235717979e-05)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 6.37261928875436e-04 6.37261928875436e-04 6.37261928875436e-04 6.37261928875436e-04)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2)) (v128.const f32x4 4.89352455891786e-03 4.89352455891786e-03 4.89352455891786e-03 4.89352455891786e-03)))
    (local.set $p (f32x4.mul (local.get $p) (local.get $x)))
    (local.set $q (v128.const f32x4 1.19825839466702e-06 1.19825839466702e-06 1.19825839466702e-06 1.19825839466702e-06))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $x2)) (v128.const f32x4 1.18534705686654e-04 1.18534705686654e-04 1.18534705686654e-04 1.18534705686654e-04)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $x2)) (v128.const f32x4 2.26843463243900e-03 2.26843463243900e-03 2.26843463243900e-03 2.26843463243900e-03)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $x2)) (v128.const f32x4 4.89352518554385e-03 4.89352518554385e-03 4.89352518554385e-03 4.89352518554385e-03)))
    (f32x4.div (local.get $p) (local.get $q)))

  ;; t = tanh(c·(x + k·x³)) with c = sqrt(2/π), k = 0.044715
  (func $geluTanh (param $x v128) (result v128)
    (call $tanh (f32x4.mul (v128.const f32x4 0.7978845608028654 0.7978845608028654 0.7978845608028654 0.7978845608028654)
      (f32x4.add (local.get $x)
        (f32x4.mul (v128.const f32x4 0.044715 0.044715 0.044715 0.044715)
          (f32x4.mul (local.get $x) (f32x4.mul (local.get $x) (local.get $x))))))))

  ;; y = ½·x·(1 + t)
  (func $gelu4 (param $x v128) (result v128)
    (f32x4.mul (f32x4.mul (v128.const f32x4 0.5 0.5 0.5 0.5) (local.get $x))
      (f32x4.add (v128.const f32x4 1 1 1 1) (call $geluTanh (local.get $x)))))

  ;; dy/dx = ½·(1 + t) + ½·x·(1 − t²)·c·(1 + 3k·x²)
  (func $geluGrad4 (param $x v128) (param $dy v128) (result v128)
    (local $t v128)
    (local.set $t (call $geluTanh (local.get $x)))
    (f32x4.mul (local.get $dy)
      (f32x4.add
        (f32x4.mul (v128.const f32x4 0.5 0.5 0.5 0.5) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $t)))
        (f32x4.mul
          (f32x4.mul (v128.const f32x4 0.3989422804014327 0.3989422804014327 0.3989422804014327 0.3989422804014327) (local.get $x))
          (f32x4.mul
            (f32x4.sub (v128.const f32x4 1 1 1 1) (f32x4.mul (local.get $t) (local.get $t)))
            (f32x4.add (v128.const f32x4 1 1 1 1)
              (f32x4.mul (v128.const f32x4 0.134145 0.134145 0.134145 0.134145) (f32x4.mul (local.get $x) (local.get $x)))))))))

  (func (export "gelu") (param $x i32) (param $y i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (v128.store (local.get $y) (call $gelu4 (v128.load (local.get $x))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (br $vec)))
    (local.set $n (i32.and (local.get $n) (i32.const 3)))
    (block $done (loop $tail
      (br_if $done (i32.eqz (local.get $n)))
      (f32.store (local.get $y) (f32x4.extract_lane 0 (call $gelu4 (v128.load32_splat (local.get $x)))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $tail))))

  (func (export "geluGrad") (param $x i32) (param $dy i32) (param $dx i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (v128.store (local.get $dx) (call $geluGrad4 (v128.load (local.get $x)) (v128.load (local.get $dy))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
      (local.set $dx (i32.add (local.get $dx) (i32.const 16)))
      (br $vec)))
    (local.set $n (i32.and (local.get $n) (i32.const 3)))
    (block $done (loop $tail
      (br_if $done (i32.eqz (local.get $n)))
      (f32.store (local.get $dx)
        (f32x4.extract_lane 0 (call $geluGrad4 (v128.load32_splat (local.get $x)) (v128.load32_splat (local.get $dy)))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
      (local.set $dx (i32.add (local.get $dx) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $tail))))
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; mean of the row of d floats at $x
  (func $rowMean (param $x i32) (param $d i32) (result f32)
    (local $end i32) (local $acc v128)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (loop $l
      (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $x))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $x) (local.get $end))))
    (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d))))

  ;; 1/sqrt(mean((x − mu)²) + eps) of the row at $x
  (func $rowRstd (param $x i32) (param $d i32) (param $mu f32) (param $eps f32) (result f32)
    (local $end i32) (local $acc v128) (local $m v128) (local $c v128)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $m (f32x4.splat (local.get $mu)))
    (loop $l
      (local.set $c (f32x4.sub (v128.load (local.get $x)) (local.get $m)))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $c) (local.get $c))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $x) (local.get $end))))
    (f32.div (f32.const 1)
      (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d))) (local.get $eps)))))

  (func (export "layerNorm") (param $x i32) (param $g i32) (param $b i32) (param $y i32)
    (param $rows i32) (param $d i32) (param $eps f32)
    (local $mu f32) (local $r f32) (local $m v128) (local $rv v128) (local $j i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $mu (call $rowMean (local.get $x) (local.get $d)))
      (local.set $r (call $rowRstd (local.get $x) (local.get $d) (local.get $mu) (local.get $eps)))
      (local.set $m (f32x4.splat (local.get $mu)))
      (local.set $rv (f32x4.splat (local.get $r)))
      (local.set $j (i32.const 0))
      (loop $cols
        (v128.store (i32.add (local.get $y) (local.get $j))
          (f32x4.add
            (f32x4.mul
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $m)) (local.get $rv))
              (v128.load (i32.add (local.get $g) (local.get $j))))
            (v128.load (i32.add (local.get $b) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
      (local.set $y (i32.add (local.get $y) (local.get $rowBytes)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  (func (export "layerNormGrad") (param $x i32) (param $g i32) (param $dy i32) (param $dx i32) (param $dg i32) (param $db i32)
    (param $rows i32) (param $d i32) (param $eps f32)
    (local $mu f32) (local $r f32) (local $m v128) (local $rv v128) (local $j i32) (local $rowBytes i32)
    (local $xh v128) (local $dyv v128) (local $dxh v128) (local $s1 v128) (local $s2 v128) (local $a v128) (local $c v128)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    ;; dg = db = 0
    (local.set $j (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $dg) (local.get $j)) (v128.const i32x4 0 0 0 0))
      (v128.store (i32.add (local.get $db) (local.get $j)) (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $j) (local.get $rowBytes))))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $mu (call $rowMean (local.get $x) (local.get $d)))
      (local.set $r (call $rowRstd (local.get $x) (local.get $d) (local.get $mu) (local.get $eps)))
      (local.set $m (f32x4.splat (local.get $mu)))
      (local.set $rv (f32x4.splat (local.get $r)))
      ;; pass 1: s1 = Σ dx̂, s2 = Σ dx̂·x̂; dg += dy·x̂; db += dy
      (local.set $s1 (v128.const i32x4 0 0 0 0))
      (local.set $s2 (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $cols
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $m)) (local.get $rv)))
        (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $j))))
        (local.set $dxh (f32x4.mul (local.get $dyv) (v128.load (i32.add (local.get $g) (local.get $j)))))
        (local.set $s1 (f32x4.add (local.get $s1) (local.get $dxh)))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $dxh) (local.get $xh))))
        (v128.store (i32.add (local.get $dg) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dg) (local.get $j))) (f32x4.mul (local.get $dyv) (local.get $xh))))
        (v128.store (i32.add (local.get $db) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $db) (local.get $j))) (local.get $dyv)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
      ;; pass 2: dx = (dx̂ − s1/d − x̂·s2/d)·r
      (local.set $a (f32x4.splat (f32.div (call $hsum (local.get $s1)) (f32.convert_i32_u (local.get $d)))))
      (local.set $c (f32x4.splat (f32.div (call $hsum (local.get $s2)) (f32.convert_i32_u (local.get $d)))))
      (local.set $j (i32.const 0))
      (loop $cols2
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $m)) (local.get $rv)))
        (local.set $dxh (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (v128.load (i32.add (local.get $g) (local.get $j)))))
        (v128.store (i32.add (local.get $dx) (local.get $j))
          (f32x4.mul
            (f32x4.sub (f32x4.sub (local.get $dxh) (local.get $a)) (f32x4.mul (local.get $xh) (local.get $c)))
            (local.get $rv)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $cols2 (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
      (local.set $dy (i32.add (local.get $dy) (local.get $rowBytes)))
      (local.set $dx (i32.add (local.get $dx) (local.get $rowBytes)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  ;; e^x for x ≤ 88: x = n·ln2 + r, |r| ≤ ln2/2; e^r by its Taylor polynomial to degree 6; 2^n through the exponent bits
  (func $exp4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (local.get $x) (v128.const f32x4 -87.33 -87.33 -87.33 -87.33)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $n) (v128.const f32x4 2.12194440e-4 2.12194440e-4 2.12194440e-4 2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.3888889e-3 1.3888889e-3 1.3888889e-3 1.3888889e-3))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3333333e-3 8.3333333e-3 8.3333333e-3 8.3333333e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1666667e-2 4.1666667e-2 4.1666667e-2 4.1666667e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.16666667 0.16666667 0.16666667 0.16666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))

  ;; lanes < n of v, the others 0 (n in 0..4)
  (func $firstLanes (param $v v128) (param $n i32) (result v128)
    (v128.and (local.get $v)
      (i32x4.gt_s (i32x4.splat (local.get $n)) (v128.const i32x4 0 1 2 3))))

  ;; Zeros floats from..to−1 of the row at $row.
  (func $zeroFill (param $row i32) (param $from i32) (param $to i32)
    (block $done (loop $head
      (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
      (br_if $done (i32.eqz (i32.and (local.get $from) (i32.const 3))))
      (f32.store (i32.add (local.get $row) (i32.shl (local.get $from) (i32.const 2))) (f32.const 0))
      (local.set $from (i32.add (local.get $from) (i32.const 1)))
      (br $head)))
    (block $done (loop $vec
      (br_if $done (i32.gt_u (i32.add (local.get $from) (i32.const 4)) (local.get $to)))
      (v128.store (i32.add (local.get $row) (i32.shl (local.get $from) (i32.const 2))) (v128.const i32x4 0 0 0 0))
      (local.set $from (i32.add (local.get $from) (i32.const 4)))
      (br $vec)))
    (block $done (loop $tail
      (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
      (f32.store (i32.add (local.get $row) (i32.shl (local.get $from) (i32.const 2))) (f32.const 0))
      (local.set $from (i32.add (local.get $from) (i32.const 1)))
      (br $tail))))

  ;; Reads only keys ≤ the query of each row (s above the diagonal may be unwritten), writes all of p.
  (func (export "causalSoftmax") (param $s i32) (param $p i32) (param $rows i32) (param $t i32) (param $scale f32)
    (local $q i32) (local $n i32) (local $j i32) (local $rowBytes i32) (local $mx v128) (local $sum v128) (local $sc v128)
    (local $m f32) (local $e v128) (local $inv v128) (local $left i32)
    (local.set $rowBytes (i32.shl (local.get $t) (i32.const 2)))
    (local.set $sc (f32x4.splat (local.get $scale)))
    (local.set $q (i32.const 0))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $n (i32.add (local.get $q) (i32.const 1))) ;; keys 0..q
      ;; max of scale·s over the n keys (lanes past them repeat the running max)
      (local.set $mx (f32x4.splat (f32.mul (f32.load (local.get $s)) (local.get $scale))))
      (local.set $j (i32.const 0))
      (loop $maxL
        (local.set $left (i32.sub (local.get $n) (local.get $j)))
        (local.set $e (f32x4.mul (call $loadN (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $sc)))
        (if (i32.lt_u (local.get $left) (i32.const 4))
          (then (local.set $e (v128.bitselect (local.get $e) (local.get $mx)
            (i32x4.gt_s (i32x4.splat (local.get $left)) (v128.const i32x4 0 1 2 3))))))
        (local.set $mx (f32x4.max (local.get $mx) (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $maxL (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
        (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
      (local.set $mx (f32x4.splat (local.get $m)))
      ;; p = exp(scale·s − max) for the n keys, and their sum
      (local.set $sum (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $expL
        (local.set $left (i32.sub (local.get $n) (local.get $j)))
        (local.set $e (call $firstLanes
          (call $exp4 (f32x4.sub (f32x4.mul (call $loadN (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $sc)) (local.get $mx)))
          (select (local.get $left) (i32.const 4) (i32.lt_s (local.get $left) (i32.const 4)))))
        (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))
        (call $storeN (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $e) (local.get $left))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $expL (i32.lt_u (local.get $j) (local.get $n))))
      ;; normalise; keys past the query get 0
      (local.set $inv (f32x4.splat (f32.div (f32.const 1) (call $hsum (local.get $sum)))))
      (local.set $j (i32.const 0))
      (loop $normL
        (local.set $left (i32.sub (local.get $n) (local.get $j)))
        (call $storeN (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))
          (f32x4.mul (call $loadN (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $inv))
          (local.get $left))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $normL (i32.lt_u (local.get $j) (local.get $n))))
      (call $zeroFill (local.get $p) (local.get $n) (local.get $t))
      (local.set $s (i32.add (local.get $s) (local.get $rowBytes)))
      (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (if (i32.eq (local.get $q) (local.get $t)) (then (local.set $q (i32.const 0))))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  ;; stores min(n, 4) lanes of v at $dst (n ≥ 1)
  (func $storeN (param $dst i32) (param $v v128) (param $n i32)
    (if (i32.ge_s (local.get $n) (i32.const 4)) (then (v128.store (local.get $dst) (local.get $v)) (return)))
    (f32.store (local.get $dst) (f32x4.extract_lane 0 (local.get $v)))
    (if (i32.ge_s (local.get $n) (i32.const 2)) (then (f32.store offset=4 (local.get $dst) (f32x4.extract_lane 1 (local.get $v)))))
    (if (i32.ge_s (local.get $n) (i32.const 3)) (then (f32.store offset=8 (local.get $dst) (f32x4.extract_lane 2 (local.get $v))))))

  ;; Reads p and dp only at keys ≤ the query of each row (dp above the diagonal may be unwritten), writes all of ds.
  (func (export "causalSoftmaxGrad") (param $p i32) (param $dp i32) (param $ds i32) (param $rows i32) (param $t i32) (param $scale f32)
    (local $j i32) (local $rowBytes i32) (local $acc v128) (local $pv v128) (local $dot v128) (local $sc v128) (local $left i32)
    (local $q i32) (local $n i32)
    (local.set $rowBytes (i32.shl (local.get $t) (i32.const 2)))
    (local.set $sc (f32x4.splat (local.get $scale)))
    (local.set $q (i32.const 0))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $n (i32.add (local.get $q) (i32.const 1)))
      ;; Σ dP·P over the keys ≤ query (P is 0 after them)
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $dotL
        (local.set $left (i32.sub (local.get $n) (local.get $j)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (call $loadN (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $left))
            (call $loadN (i32.add (local.get $dp) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $dotL (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $dot (f32x4.splat (call $hsum (local.get $acc))))
      (local.set $j (i32.const 0))
      (loop $gradL
        (local.set $left (i32.sub (local.get $n) (local.get $j)))
        (local.set $pv (call $loadN (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)))
        (call $storeN (i32.add (local.get $ds) (i32.shl (local.get $j) (i32.const 2)))
          (f32x4.mul (local.get $sc) (f32x4.mul (local.get $pv)
            (f32x4.sub (call $loadN (i32.add (local.get $dp) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $dot))))
          (local.get $left))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $gradL (i32.lt_u (local.get $j) (local.get $n))))
      (call $zeroFill (local.get $ds) (local.get $n) (local.get $t))
      (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
      (local.set $dp (i32.add (local.get $dp) (local.get $rowBytes)))
      (local.set $ds (i32.add (local.get $ds) (local.get $rowBytes)))
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (if (i32.eq (local.get $q) (local.get $t)) (then (local.set $q (i32.const 0))))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  (func (export "adamw") (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $po i32) (param $mo i32) (param $vo i32) (param $n i32)
    (param $gs f32) (param $b1 f32) (param $b2 f32) (param $bc1 f32) (param $bc2 f32) (param $eps f32) (param $lr f32) (param $decay f32)
    (local $i i32) (local $gv v128) (local $mv v128) (local $vv v128) (local $upd v128)
    (local $gsv v128) (local $b1v v128) (local $b1c v128) (local $b2v v128) (local $b2c v128)
    (local $ibc1 v128) (local $ibc2 v128) (local $epsv v128) (local $lrv v128) (local $dv v128) (local $left i32)
    (local.set $gsv (f32x4.splat (local.get $gs)))
    (local.set $b1v (f32x4.splat (local.get $b1)))
    (local.set $b1c (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $b2v (f32x4.splat (local.get $b2)))
    (local.set $b2c (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $ibc1 (f32x4.splat (local.get $bc1)))
    (local.set $ibc2 (f32x4.splat (local.get $bc2)))
    (local.set $epsv (f32x4.splat (local.get $eps)))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $dv (f32x4.splat (local.get $decay)))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (local.set $left (i32.sub (local.get $n) (local.get $i)))
      (br_if $done (i32.le_s (local.get $left) (i32.const 0)))
      (local.set $gv (f32x4.mul (call $loadN (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2))) (local.get $left)) (local.get $gsv)))
      (local.set $mv (f32x4.add
        (f32x4.mul (call $loadN (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2))) (local.get $left)) (local.get $b1v))
        (f32x4.mul (local.get $gv) (local.get $b1c))))
      (local.set $vv (f32x4.add
        (f32x4.mul (call $loadN (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))) (local.get $left)) (local.get $b2v))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $b2c))))
      (local.set $upd (f32x4.div (f32x4.div (local.get $mv) (local.get $ibc1))
        (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $ibc2))) (local.get $epsv))))
      (call $storeN (i32.add (local.get $mo) (i32.shl (local.get $i) (i32.const 2))) (local.get $mv) (local.get $left))
      (call $storeN (i32.add (local.get $vo) (i32.shl (local.get $i) (i32.const 2))) (local.get $vv) (local.get $left))
      (call $storeN (i32.add (local.get $po) (i32.shl (local.get $i) (i32.const 2)))
        (f32x4.sub
          (f32x4.mul (call $loadN (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))) (local.get $left)) (local.get $dv))
          (f32x4.mul (local.get $upd) (local.get $lrv)))
        (local.get $left))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l))))

  ;; min(n, 4) floats from $src, the other lanes 0 (never reads past them)
  (func $loadN (param $src i32) (param $n i32) (result v128)
    (local $v v128)
    (if (i32.ge_s (local.get $n) (i32.const 4)) (then (return (v128.load (local.get $src)))))
    (local.set $v (f32x4.replace_lane 0 (v128.const i32x4 0 0 0 0) (f32.load (local.get $src))))
    (if (i32.ge_s (local.get $n) (i32.const 2)) (then (local.set $v (f32x4.replace_lane 1 (local.get $v) (f32.load offset=4 (local.get $src))))))
    (if (i32.ge_s (local.get $n) (i32.const 3)) (then (local.set $v (f32x4.replace_lane 2 (local.get $v) (f32.load offset=8 (local.get $src))))))
    (local.get $v))

  ;; natural log of x > 0 (normal floats)
  (func $log (param $x f32) (result f32)
    (local $bits i32) (local $e i32) (local $m f32) (local $s f32) (local $s2 f32)
    (local.set $bits (i32.reinterpret_f32 (local.get $x)))
    (local.set $e (i32.sub (i32.shr_u (local.get $bits) (i32.const 23)) (i32.const 127)))
    (local.set $m (f32.reinterpret_i32 (i32.or (i32.and (local.get $bits) (i32.const 0x007fffff)) (i32.const 0x3f800000))))
    (if (f32.gt (local.get $m) (f32.const 1.41421356))
      (then (local.set $m (f32.mul (local.get $m) (f32.const 0.5))) (local.set $e (i32.add (local.get $e) (i32.const 1)))))
    (local.set $s (f32.div (f32.sub (local.get $m) (f32.const 1)) (f32.add (local.get $m) (f32.const 1))))
    (local.set $s2 (f32.mul (local.get $s) (local.get $s)))
    (f32.add
      (f32.mul (f32.convert_i32_s (local.get $e)) (f32.const 0.693147181))
      (f32.mul (f32.mul (f32.const 2) (local.get $s))
        (f32.add (f32.const 1) (f32.mul (local.get $s2)
          (f32.add (f32.const 0.333333333) (f32.mul (local.get $s2)
            (f32.add (f32.const 0.2) (f32.mul (local.get $s2)
              (f32.add (f32.const 0.142857143) (f32.mul (local.get $s2) (f32.const 0.111111111))))))))))))

  ;; max and Σ exp(x − max) of the row of $v floats at $x
  (func $rowMaxSumExp (param $x i32) (param $v i32) (result f32 f32)
    (local $j i32) (local $mx v128) (local $m f32) (local $acc v128) (local $left i32)
    (local.set $mx (f32x4.splat (f32.load (local.get $x))))
    (local.set $j (i32.const 0))
    (loop $maxL
      (local.set $left (i32.sub (local.get $v) (local.get $j)))
      (local.set $mx (f32x4.max (local.get $mx)
        (v128.bitselect (call $loadN (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $mx)
          (i32x4.gt_s (i32x4.splat (local.get $left)) (v128.const i32x4 0 1 2 3)))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br_if $maxL (i32.lt_u (local.get $j) (local.get $v))))
    (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
      (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
    (local.set $mx (f32x4.splat (local.get $m)))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $j (i32.const 0))
    (loop $sumL
      (local.set $left (i32.sub (local.get $v) (local.get $j)))
      (local.set $acc (f32x4.add (local.get $acc) (call $firstLanes
        (call $exp4 (f32x4.sub (call $loadN (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $mx)))
        (select (local.get $left) (i32.const 4) (i32.lt_s (local.get $left) (i32.const 4))))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br_if $sumL (i32.lt_u (local.get $j) (local.get $v))))
    (local.get $m)
    (call $hsum (local.get $acc)))

  (func (export "tokenLogProbs") (param $x i32) (param $t i32) (param $out i32) (param $rows i32) (param $v i32)
    (local $m f32) (local $sum f32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $v) (i32.const 2)))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (call $rowMaxSumExp (local.get $x) (local.get $v))
      (local.set $sum)
      (local.set $m)
      (f32.store (local.get $out)
        (f32.sub
          (f32.sub (f32.load (i32.add (local.get $x) (i32.shl (i32.load (local.get $t)) (i32.const 2)))) (local.get $m))
          (call $log (local.get $sum))))
      (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
      (local.set $t (i32.add (local.get $t) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  (func (export "tokenLogProbsGrad") (param $x i32) (param $t i32) (param $dy i32) (param $dx i32) (param $rows i32) (param $v i32)
    (local $m f32) (local $sum f32) (local $rowBytes i32) (local $j i32) (local $c v128) (local $mx v128) (local $left i32) (local $tgt i32)
    (local.set $rowBytes (i32.shl (local.get $v) (i32.const 2)))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (call $rowMaxSumExp (local.get $x) (local.get $v))
      (local.set $sum)
      (local.set $m)
      ;; dx = −dy·softmax, then + dy at the target
      (local.set $c (f32x4.splat (f32.neg (f32.div (f32.load (local.get $dy)) (local.get $sum)))))
      (local.set $mx (f32x4.splat (local.get $m)))
      (local.set $j (i32.const 0))
      (loop $cols
        (local.set $left (i32.sub (local.get $v) (local.get $j)))
        (call $storeN (i32.add (local.get $dx) (i32.shl (local.get $j) (i32.const 2)))
          (f32x4.mul (local.get $c)
            (call $exp4 (f32x4.sub (call $loadN (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))) (local.get $left)) (local.get $mx))))
          (local.get $left))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br_if $cols (i32.lt_u (local.get $j) (local.get $v))))
      (local.set $tgt (i32.add (local.get $dx) (i32.shl (i32.load (local.get $t)) (i32.const 2))))
      (f32.store (local.get $tgt) (f32.add (f32.load (local.get $tgt)) (f32.load (local.get $dy))))
      (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
      (local.set $dx (i32.add (local.get $dx) (local.get $rowBytes)))
      (local.set $t (i32.add (local.get $t) (i32.const 4)))
      (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))

  (func (export "colSum") (param $x i32) (param $out i32) (param $rows i32) (param $m i32)
    (local $j i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $m) (i32.const 2)))
    (local.set $j (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $out) (local.get $j)) (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $j) (local.get $rowBytes))))
    (block $done (loop $rowsL
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $j (i32.const 0))
      (loop $cols
        (v128.store (i32.add (local.get $out) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $out) (local.get $j))) (v128.load (i32.add (local.get $x) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowsL))))
)
`;
