import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CharTokenizer,
  GPT,
  initBackend,
  makeBatch,
  nllLoss,
  resolveVftConfig,
  Rng,
  trainLoop,
  VftSession,
  generate,
  GREEDY,
  scoreCompletions,
} from '../src';

// A model small enough for tests: 1 layer, d=16, on a little arith data.
const SMALL = {
  steps: 6,
  batchSize: 4,
  'model.dModel': 16,
  'model.nHead': 2,
  'model.nLayer': 1,
  'model.blockSize': 64,
  'data.train': 200,
  'data.val': 20,
  'data.test': 20,
  'optim.warmupSteps': 2,
};

beforeAll(async () => {
  await initBackend('wasm');
});

async function lossCurve(session: VftSession, from: number, to: number): Promise<number[]> {
  const losses: number[] = [];
  await trainLoop({
    model: session.model,
    optimizer: session.optimizer,
    rng: session.rng,
    startStep: from,
    endStep: to,
    accumulate: session.config.accumulate,
    nextBatch: session.nextBatch,
    loss: (m, b) => ({ loss: nllLoss(m, b) }),
    onStep: (s) => {
      losses.push(s.loss);
      session.step = s.step + 1;
    },
  });
  return losses;
}

describe('GPT on the wasm backend', () => {
  it('trains on wasm', () => {
    expect(tf.getBackend()).toBe('wasm');
  });

  it('matches finite differences of the loss (custom gradients are right)', async () => {
    const tok = new CharTokenizer();
    const model = new GPT(
      { vocabSize: tok.size, blockSize: 16, nLayer: 1, nHead: 2, dModel: 8, initStd: 0.3 },
      new Rng(3),
    );
    const batch = makeBatch(
      tok,
      [
        { prompt: 'ab\n', response: '1+2=3' },
        { prompt: 'c\n', response: '#### 4' },
      ],
      16,
    );
    const vars = [...model.params.values()];
    const { grads } = tf.variableGrads(() => nllLoss(model, batch), vars);
    const lossAt = () => tf.tidy(() => nllLoss(model, batch).dataSync()[0]!);
    const rng = new Rng(11);
    let checked = 0;
    for (const name of ['wte', 'h0.attn.wqkv', 'h0.attn.wo', 'h0.mlp.w1', 'h0.ln1.g', 'lnf.b', 'wpe']) {
      const v = model.params.get(name)!;
      const g = grads[v.name]!.dataSync();
      const data = v.dataSync().slice();
      for (let t = 0; t < 6; t++) {
        const i = rng.int(0, data.length - 1);
        if (Math.abs(g[i]!) < 1e-3) continue;
        const eps = 1e-2;
        const orig = data[i]!;
        data[i] = orig + eps;
        v.assign(tf.tensor(data, v.shape));
        const up = lossAt();
        data[i] = orig - eps;
        v.assign(tf.tensor(data, v.shape));
        const down = lossAt();
        data[i] = orig;
        v.assign(tf.tensor(data, v.shape));
        const fd = (up - down) / (2 * eps);
        expect(Math.abs(fd - g[i]!) / Math.max(Math.abs(fd), Math.abs(g[i]!))).toBeLessThan(0.05);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
    Object.values(grads).forEach((g) => g.dispose());
    model.dispose();
  });

  it('leaks no tensor across training steps, generation and scoring', async () => {
    const s = new VftSession(resolveVftConfig('tiny', SMALL));
    await lossCurve(s, 0, 1); // first step allocates optimizer moments and masks
    const before = tf.memory().numTensors;
    await lossCurve(s, 1, 3);
    await generate(s.model, s.tok, ['Ann has 2 pens and 3 cups, gets 4 pens. Total?'], GREEDY, new Rng(1));
    await scoreCompletions(s.model, s.tok, [{ question: 'q', completion: '1+1=2\n#### 2' }]);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  it('is reproducible: same seed, same run', async () => {
    const cfg = resolveVftConfig('tiny', SMALL);
    const a = new VftSession(cfg);
    const b = new VftSession(cfg);
    const [la, lb] = [await lossCurve(a, 0, 4), await lossCurve(b, 0, 4)];
    expect(la).toEqual(lb);
    const c = new VftSession(resolveVftConfig('tiny', { ...SMALL, seed: 2 }));
    expect(await lossCurve(c, 0, 4)).not.toEqual(la);
    [a, b, c].forEach((s) => s.dispose());
  });

  it('resumes from a checkpoint exactly where an uninterrupted run would be', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aft-ckpt-'));
    try {
      const cfg = resolveVftConfig('tiny', SMALL);
      const whole = new VftSession(cfg);
      const full = await lossCurve(whole, 0, 6);
      whole.dispose();

      const first = new VftSession(cfg);
      const head = await lossCurve(first, 0, 3);
      await first.save(dir);
      first.dispose();

      const resumed = new VftSession(cfg);
      await resumed.restore(dir);
      expect(resumed.step).toBe(3);
      const tail = await lossCurve(resumed, resumed.step, 6);
      resumed.dispose();
      expect([...head, ...tail]).toEqual(full);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('decodes with a key/value cache exactly as full recomputation would', async () => {
    const s = new VftSession(resolveVftConfig('tiny', SMALL));
    await lossCurve(s, 0, 3);
    const q = 'Bob has 3 pens and 4 cups, gets 2 pens. Total?';
    const [cached] = await generate(s.model, s.tok, [q], { ...GREEDY, maxNewTokens: 12 }, new Rng(1));
    // recompute: feed the whole prefix each step and take the argmax of the last position
    const ids = [1, ...s.tok.encode(`${q}\n`)];
    const out: number[] = [];
    for (let t = 0; t < 12; t++) {
      const next = tf.tidy(() => {
        const logits = s.model.forward(tf.tensor2d([ids.concat(out)], [1, ids.length + out.length], 'int32'));
        return tf.argMax(logits, 1).dataSync().at(-1)!;
      });
      if (next === 2) break;
      out.push(next);
    }
    expect(cached!.text).toBe(s.tok.decode(out));
    s.dispose();
  });
});

describe('config', () => {
  it('rejects unknown keys, naming the valid ones, and bad values', () => {
    expect(() => resolveVftConfig('tiny', { stepz: 3 })).toThrow(
      /unknown config key "stepz"; valid keys: preset, seed, steps/,
    );
    expect(() => resolveVftConfig('tiny', { 'model.width': 3 })).toThrow(/unknown model key "width"/);
    expect(() => resolveVftConfig('huge')).toThrow(/unknown preset "huge"; choose one of tiny, small/);
    expect(() => resolveVftConfig('tiny', { steps: -1 })).toThrow(/steps must be a positive integer/);
    expect(() => resolveVftConfig('tiny', { 'optim.lr': 'fast' })).toThrow(/must be a number/);
  });
});
