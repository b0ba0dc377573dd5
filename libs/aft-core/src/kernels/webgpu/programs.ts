/**
 * WGSL programs for tfjs-backend-webgpu (its `WebGPUProgram` route: the backend wraps `getUserCode()` with the
 * bindings — output `result` at 0, then each of `variableNames` read-only, then the uniforms — and compiles one
 * pipeline per `shaderKey` and input ranks). Every program here has a flat layout: `main(index)` runs once per
 * output element (or row), `index` past the end returning at once, since a large dispatch is reshaped to 2-D.
 *
 * Attention works on the fused projection qkv [B·T, 3D] as the wasm kernels do (kernels/wasm-kernels.ts): head h
 * of q, k, v is columns h·hd, D + h·hd, 2D + h·hd of a row, so no split, transpose or concat either way, and the
 * causal mask is the loops' bounds. Each invocation owns a row or an element: no workgroup memory and no barriers,
 * which a software rasteriser (lavapipe) runs slowly and which shapes this small do not need.
 */

/** The members of tfjs-backend-webgpu's WebGPUProgram these programs set (the package is an optional dependency). */
export interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms: string;
  getUserCode(): string;
}

/** A program's own uniforms, in the order of its `uniforms` declaration. */
export type Uniform = { type: 'int32' | 'float32'; data: number[] };

const WG = 64;

function flat(shape: number[], invocations: number): Pick<Program, 'dispatchLayout' | 'dispatch' | 'workgroupSize'> {
  return {
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(invocations / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
  };
}

export interface AttentionShape {
  B: number;
  H: number;
  T: number;
  hd: number;
  scale: number;
}

const ATTENTION_UNIFORMS = 'count : i32, seqLen : i32, heads : i32, scale : f32,';
export const attentionUniforms = (s: AttentionShape, count: number): Uniform[] => [
  { type: 'int32', data: [count] },
  { type: 'int32', data: [s.T] },
  { type: 'int32', data: [s.H] },
  { type: 'float32', data: [s.scale] },
];

/** The indices every attention program shares: the row r = (b·H + h)·T + i of the scores, and where heads start. */
const ROW_PRELUDE = (hd: number) => `
      const HD = ${hd};
      let T = uniforms.seqLen;
      let H = uniforms.heads;
      let D = H * HD;
      let i = index % T;
      let bh = index / T;
      let b = bh / H;
      let h = bh % H;
      let po = index * T;`;

/**
 * P = softmax(scale·q·kᵀ + causal mask) [B·H, T, T] from qkv: one invocation per row (b, h, i) computes its i + 1
 * scores, then exponentiates and normalises them in place; the masked rest of the row is 0.
 */
export function attentionProbs(s: AttentionShape): Program {
  const outputShape = [s.B * s.H, s.T, s.T];
  return {
    variableNames: ['qkv'],
    outputShape,
    shaderKey: `aftAttentionProbs_${s.hd}`,
    ...flat(outputShape, s.B * s.H * s.T),
    uniforms: ATTENTION_UNIFORMS,
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      ${ROW_PRELUDE(s.hd)}
      let qo = (b * T + i) * 3 * D + h * HD;
      var q : array<f32, ${s.hd}>;
      for (var d = 0; d < HD; d++) { q[d] = qkv[qo + d] * uniforms.scale; }
      var mx = -3.402823e+38;
      for (var j = 0; j <= i; j++) {
        let ko = (b * T + j) * 3 * D + D + h * HD;
        var sc = 0.0;
        for (var d = 0; d < HD; d++) { sc += q[d] * qkv[ko + d]; }
        result[po + j] = sc;
        mx = max(mx, sc);
      }
      var sum = 0.0;
      for (var j = 0; j <= i; j++) {
        let e = exp(result[po + j] - mx);
        result[po + j] = e;
        sum += e;
      }
      let inv = 1.0 / sum;
      for (var j = 0; j <= i; j++) { result[po + j] *= inv; }
      for (var j = i + 1; j < T; j++) { result[po + j] = 0.0; }
    }`,
  };
}

/** y = P·v [B·T, D], heads merged: one invocation per element (b, t, h, e) sums over the keys j ≤ t. */
export function attentionOutput(s: AttentionShape): Program {
  const D = s.H * s.hd;
  const outputShape = [s.B * s.T, D];
  return {
    variableNames: ['qkv', 'probs'],
    outputShape,
    shaderKey: `aftAttentionOutput_${s.hd}`,
    ...flat(outputShape, s.B * s.T * D),
    uniforms: ATTENTION_UNIFORMS,
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      const HD = ${s.hd};
      let T = uniforms.seqLen;
      let H = uniforms.heads;
      let D = H * HD;
      let c = index % D;
      let bt = index / D;
      let b = bt / T;
      let t = bt % T;
      let h = c / HD;
      let po = ((b * H + h) * T + t) * T;
      var acc = 0.0;
      for (var j = 0; j <= t; j++) { acc += probs[po + j] * qkv[(b * T + j) * 3 * D + 2 * D + c]; }
      result[index] = acc;
    }`,
  };
}

/**
 * dS = scale·P ⊙ (dP − Σⱼ dP·P) with dP = dy·vᵀ [B·H, T, T]: one invocation per row, dP written first and
 * rewritten once its row sum is known; 0 above the diagonal.
 */
export function attentionScoresGrad(s: AttentionShape): Program {
  const outputShape = [s.B * s.H, s.T, s.T];
  return {
    variableNames: ['qkv', 'probs', 'dy'],
    outputShape,
    shaderKey: `aftAttentionScoresGrad_${s.hd}`,
    ...flat(outputShape, s.B * s.H * s.T),
    uniforms: ATTENTION_UNIFORMS,
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      ${ROW_PRELUDE(s.hd)}
      let go = (b * T + i) * D + h * HD;
      var g : array<f32, ${s.hd}>;
      for (var d = 0; d < HD; d++) { g[d] = dy[go + d]; }
      var rowDot = 0.0;
      for (var j = 0; j <= i; j++) {
        let vo = (b * T + j) * 3 * D + 2 * D + h * HD;
        var dp = 0.0;
        for (var d = 0; d < HD; d++) { dp += g[d] * qkv[vo + d]; }
        result[po + j] = dp;
        rowDot += dp * probs[po + j];
      }
      for (var j = 0; j <= i; j++) {
        result[po + j] = uniforms.scale * probs[po + j] * (result[po + j] - rowDot);
      }
      for (var j = i + 1; j < T; j++) { result[po + j] = 0.0; }
    }`,
  };
}

/**
 * dqkv [B·T, 3D] from dS, P and dy: one invocation per element. Its third of the row says which product:
 * dq = dS·k (keys j ≤ t), dk = dSᵀ·q and dv = Pᵀ·dy (queries i ≥ t).
 */
export function attentionQkvGrad(s: AttentionShape): Program {
  const D = s.H * s.hd;
  const outputShape = [s.B * s.T, 3 * D];
  return {
    variableNames: ['qkv', 'probs', 'dsc', 'dy'],
    outputShape,
    shaderKey: `aftAttentionQkvGrad_${s.hd}`,
    ...flat(outputShape, s.B * s.T * 3 * D),
    uniforms: ATTENTION_UNIFORMS,
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      const HD = ${s.hd};
      let T = uniforms.seqLen;
      let H = uniforms.heads;
      let D = H * HD;
      let col = index % (3 * D);
      let bt = index / (3 * D);
      let b = bt / T;
      let t = bt % T;
      let part = col / D;
      let c = col % D;
      let h = c / HD;
      let base = (b * H + h) * T;
      var acc = 0.0;
      if (part == 0) {
        for (var j = 0; j <= t; j++) { acc += dsc[(base + t) * T + j] * qkv[(b * T + j) * 3 * D + D + c]; }
      } else if (part == 1) {
        for (var i = t; i < T; i++) { acc += dsc[(base + i) * T + t] * qkv[(b * T + i) * 3 * D + c]; }
      } else {
        for (var i = t; i < T; i++) { acc += probs[(base + i) * T + t] * dy[(b * T + i) * D + c]; }
      }
      result[index] = acc;
    }`,
  };
}

export interface AdamWUniforms {
  gradScale: number;
  beta1: number;
  beta2: number;
  bc1: number;
  bc2: number;
  eps: number;
  lr: number;
  decay: number;
}

export const adamwUniforms = (n: number, a: AdamWUniforms): Uniform[] => [
  { type: 'int32', data: [n] },
  ...[a.gradScale, a.beta1, a.beta2, a.bc1, a.bc2, a.eps, a.lr, a.decay].map((x): Uniform => ({
    type: 'float32',
    data: [x],
  })),
];

/**
 * One output of an AdamW step — the new parameter (`p`), first moment (`m`) or second moment (`v`) — from p, g,
 * m, v: tfjs-webgpu's programs have one output, so the moments are recomputed (a few flops) in each of the three.
 * The same arithmetic, in the same order, as the wasm kernel and optim.ts's unfused update.
 */
export function adamw(which: 'p' | 'm' | 'v', shape: number[]): Program {
  const n = shape.reduce((a, x) => a * x, 1);
  const out = { p: 'decay * weights[index] - upd * lr', m: 'mv', v: 'vv' }[which];
  return {
    variableNames: ['weights', 'grads', 'moment1', 'moment2'],
    outputShape: shape,
    shaderKey: `aftAdamW_${which}`,
    ...flat(shape, n),
    uniforms:
      'count : i32, gradScale : f32, beta1 : f32, beta2 : f32, bc1 : f32, bc2 : f32, eps : f32, lr : f32, decay : f32,',
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      _ = weights[index]; // bound in all three programs: the bind group's layout is the same
      let g = grads[index] * uniforms.gradScale;
      let mv = moment1[index] * uniforms.beta1 + g * (1.0 - uniforms.beta1);
      let vv = moment2[index] * uniforms.beta2 + g * g * (1.0 - uniforms.beta2);
      let upd = (mv / uniforms.bc1) / (sqrt(vv / uniforms.bc2) + uniforms.eps);
      let decay = uniforms.decay;
      let lr = uniforms.lr;
      result[index] = ${out};
    }`,
  };
}
