/**
 * WGSL programs for tfjs-backend-webgpu (its `WebGPUProgram` route: the backend wraps `getUserCode()` with the
 * bindings — output `result` at 0, then each of `variableNames` read-only, then the uniforms — and compiles one
 * pipeline per `shaderKey` and input ranks). Every program here has a flat layout: `main(index)` runs once per
 * output element (or row), and `index` past the end (`uniforms.count`) returns at once.
 *
 * Dispatch is tfjs's own: `dispatch` is ⌈count / 64⌉ workgroups along x, as its `computeDispatch` gives for a flat
 * `dispatchLayout`. Past the device's maxComputeWorkgroupsPerDimension (65,535, WebGPU's default and lavapipe's)
 * `runWebGPUProgram` reshapes it to [⌈√n⌉, ⌈√n⌉, 1] (a cube past 65,535²), and the `main(getGlobalIndex())` it
 * generates for a dispatch that is not flat derives the index from workgroup_id, num_workgroups and
 * local_invocation_index. So the workgroup count sets no limit (buffer sizes do: webgpu-kernels.ts), and the
 * surplus of the square is what the `count` check is for.
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
  /** Ours, not tfjs's: the values of `uniforms`, in order, for `runWebGPUProgram`. */
  uniformData: Uniform[];
}

/** A program's own uniform value, as `runWebGPUProgram` takes it. */
export type Uniform = { type: 'int32' | 'float32'; data: number[] };

const WG = 64;

interface ProgramSpec {
  key: string;
  inputs: string[];
  outputShape: number[];
  /** How many invocations do work: the uniform `count`, first of the uniforms. */
  count: number;
  uniforms: [name: string, type: 'i32' | 'f32', value: number][];
  /** The body of `main(index : i32)`, past the end check. */
  body: string;
}

function program(s: ProgramSpec): Program {
  const uniforms: ProgramSpec['uniforms'] = [['count', 'i32', s.count], ...s.uniforms];
  return {
    variableNames: s.inputs,
    outputShape: s.outputShape,
    shaderKey: s.key,
    dispatchLayout: { x: s.outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(s.count / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: uniforms.map(([name, type]) => `${name} : ${type},`).join(' '),
    uniformData: uniforms.map(([, type, value]) => ({ type: type === 'i32' ? 'int32' : 'float32', data: [value] })),
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.count) { return; }
      ${s.body}
    }`,
  };
}

export interface AttentionShape {
  B: number;
  H: number;
  T: number;
  hd: number;
  scale: number;
}

/**
 * An attention program: one invocation per `row` (b, h, i) of the scores [B·H, T, T], or per `element` (b, t, col)
 * of an output [B·T, cols] (tfjs's own uniform `outShape` gives cols). Either way the body has HD (compiled in), T,
 * H and D, and those indices; a row program also `po`, where its row of the scores starts.
 */
function attention(
  name: string,
  s: AttentionShape,
  o: { inputs: string[]; outputShape: number[]; per: 'row' | 'element'; body: string },
): Program {
  const rows = o.per === 'row';
  return program({
    key: `aftAttention${name}_${s.hd}`,
    inputs: o.inputs,
    outputShape: o.outputShape,
    count: rows ? s.B * s.H * s.T : o.outputShape.reduce((a, x) => a * x, 1),
    uniforms: [
      ['seqLen', 'i32', s.T],
      ['heads', 'i32', s.H],
      ['scale', 'f32', s.scale],
    ],
    body: `
      const HD = ${s.hd};
      let T = uniforms.seqLen;
      let H = uniforms.heads;
      let D = H * HD;${
        rows
          ? `
      let i = index % T;
      let bh = index / T;
      let b = bh / H;
      let h = bh % H;
      let po = index * T;`
          : `
      let cols = uniforms.outShape[1];
      let col = index % cols;
      let bt = index / cols;
      let b = bt / T;
      let t = bt % T;`
      }
      ${o.body}`,
  });
}

/**
 * P = softmax(scale·q·kᵀ + causal mask) [B·H, T, T] from qkv: one invocation per row (b, h, i) computes its i + 1
 * scores, then exponentiates and normalises them in place; the masked rest of the row is 0.
 */
export const attentionProbs = (s: AttentionShape): Program =>
  attention('Probs', s, {
    inputs: ['qkv'],
    outputShape: [s.B * s.H, s.T, s.T],
    per: 'row',
    body: `
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
      for (var j = i + 1; j < T; j++) { result[po + j] = 0.0; }`,
  });

/** y = P·v [B·T, D], heads merged: one invocation per element (b, t, h, e) sums over the keys j ≤ t. */
export const attentionOutput = (s: AttentionShape): Program =>
  attention('Output', s, {
    inputs: ['qkv', 'probs'],
    outputShape: [s.B * s.T, s.H * s.hd],
    per: 'element',
    body: `
      let h = col / HD;
      let po = ((b * H + h) * T + t) * T;
      var acc = 0.0;
      for (var j = 0; j <= t; j++) { acc += probs[po + j] * qkv[(b * T + j) * 3 * D + 2 * D + col]; }
      result[index] = acc;`,
  });

/**
 * dS = scale·P ⊙ (dP − Σⱼ dP·P) with dP = dy·vᵀ [B·H, T, T]: one invocation per row, dP written first and
 * rewritten once its row sum is known; 0 above the diagonal.
 */
export const attentionScoresGrad = (s: AttentionShape): Program =>
  attention('ScoresGrad', s, {
    inputs: ['qkv', 'probs', 'dy'],
    outputShape: [s.B * s.H, s.T, s.T],
    per: 'row',
    body: `
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
      for (var j = i + 1; j < T; j++) { result[po + j] = 0.0; }`,
  });

/**
 * dqkv [B·T, 3D] from dS, P and dy: one invocation per element. Its third of the row says which product:
 * dq = dS·k (keys j ≤ t), dk = dSᵀ·q and dv = Pᵀ·dy (queries i ≥ t).
 */
export const attentionQkvGrad = (s: AttentionShape): Program =>
  attention('QkvGrad', s, {
    inputs: ['qkv', 'probs', 'dsc', 'dy'],
    outputShape: [s.B * s.T, 3 * s.H * s.hd],
    per: 'element',
    body: `
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
      result[index] = acc;`,
  });

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

/**
 * One output of an AdamW step — the new parameter (`p`), first moment (`m`) or second moment (`v`) — from p, g,
 * m, v: tfjs-webgpu's programs have one output, so the moments are recomputed (a few flops) in each of the three.
 * The same arithmetic, in the same order, as the wasm kernel and optim.ts's unfused update.
 */
export function adamw(which: 'p' | 'm' | 'v', shape: number[], a: AdamWUniforms): Program {
  const out = { p: 'decay * weights[index] - upd * lr', m: 'mv', v: 'vv' }[which];
  const names = ['gradScale', 'beta1', 'beta2', 'bc1', 'bc2', 'eps', 'lr', 'decay'] as const;
  return program({
    key: `aftAdamW_${which}`,
    inputs: ['weights', 'grads', 'moment1', 'moment2'],
    outputShape: shape,
    count: shape.reduce((n, x) => n * x, 1),
    uniforms: names.map((k) => [k, 'f32', a[k]]),
    body: `
      _ = weights[index]; // bound in all three programs: the bind group's layout is the same
      let g = grads[index] * uniforms.gradScale;
      let mv = moment1[index] * uniforms.beta1 + g * (1.0 - uniforms.beta1);
      let vv = moment2[index] * uniforms.beta2 + g * g * (1.0 - uniforms.beta2);
      let upd = (mv / uniforms.bc1) / (sqrt(vv / uniforms.bc2) + uniforms.eps);
      let decay = uniforms.decay;
      let lr = uniforms.lr;
      result[index] = ${out};`,
  });
}
