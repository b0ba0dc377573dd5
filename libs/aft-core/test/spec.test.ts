/**
 * The training vocabulary (src/spec.ts) is the one place a method, constraint, preset or default is named: the
 * trainer, the loss registry and the CLI take theirs from it. Every check loops over the spec, so a method added
 * there is checked here (and in libs/queue/test/spec.test.ts, apps/web/test/method-vocabulary.test.ts) with nothing
 * else to list.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ALIGN_CHOICE_DEFAULTS,
  ALIGN_DEFAULTS,
  ALIGN_METHODS,
  CONSTRAINTS,
  CONTROL_METHODS,
  DEFAULT_PRESET,
  FEEDBACK,
  getLoss,
  initBackend,
  isControlMethod,
  isRankingMethod,
  lossAndGrads,
  LOSSES,
  METHOD_LABELS,
  MODEL_PRESETS,
  PRESETS,
  RANKING_METHODS,
  resolveAlignConfig,
  resolveVftConfig,
} from '../src';
import { lossInput } from '../src/cli/loss';

const source = (rel: string) => readFileSync(new URL(rel, import.meta.url), 'utf8');

beforeAll(async () => {
  await initBackend();
});

describe('the spec entry', () => {
  it('imports nothing, so `@aft/aft-core/spec` never pulls TensorFlow into a bundle', () => {
    const text = source('../src/spec.ts');
    expect(text).not.toMatch(/^\s*import\s/m);
    expect(text).not.toMatch(/^\s*export\s[^\n]*\sfrom\s+['"]/m);
    expect(text).not.toMatch(/\b(require|import)\s*\(/);
    const pkg = JSON.parse(source('../package.json')) as { exports: Record<string, string> };
    expect(pkg.exports['./spec']).toBe('./src/spec.ts');
  });

  it('lists every method once: the controls and the ranking losses, each labelled', () => {
    expect(new Set(ALIGN_METHODS).size).toBe(ALIGN_METHODS.length);
    expect([...ALIGN_METHODS].sort()).toEqual([...CONTROL_METHODS, ...RANKING_METHODS].sort());
    for (const m of ALIGN_METHODS) {
      expect(isRankingMethod(m) !== isControlMethod(m), m).toBe(true);
      expect(METHOD_LABELS[m], m).toMatch(/\S/);
    }
    expect(Object.keys(METHOD_LABELS).sort()).toEqual([...ALIGN_METHODS].sort());
  });
});

describe('the trainer agrees with the spec', () => {
  it('has exactly one loss per ranking method', () => {
    expect(Object.keys(LOSSES).sort()).toEqual([...RANKING_METHODS].sort());
    for (const m of RANKING_METHODS) expect(getLoss(m), m).toBeTypeOf('function');
    for (const m of CONTROL_METHODS) expect(() => getLoss(m), m).toThrow(/unknown loss/);
  });

  it.each(RANKING_METHODS.flatMap((m) => CONSTRAINTS.map((c) => [m, c] as const)))(
    '%s with %s computes a finite loss and gradient at the spec defaults',
    async (method, constraint) => {
      const { beta, dpoBeta } = ALIGN_CHOICE_DEFAULTS;
      const r = await lossAndGrads({ method, constraint, beta, dpoBeta }, [
        { scores: [-1, -2, -1.5], ranks: [0, 1, 1], refScores: [-1.2, -1.8, -1.4] },
      ]);
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.grads[0]!.every(Number.isFinite)).toBe(true);
    },
  );

  it('trains with the spec defaults where nothing is chosen', () => {
    const d = ALIGN_CHOICE_DEFAULTS;
    expect(ALIGN_DEFAULTS).toMatchObject({
      method: d.method,
      seed: d.seed,
      steps: d.steps,
      spec: { constraint: d.constraint, beta: d.beta, dpoBeta: d.dpoBeta, wNll: d.wNll, feedback: d.feedback },
      optim: { lr: d.lr, totalSteps: d.steps },
    });
  });

  it.each(ALIGN_METHODS)('accepts %s with every feedback kind and nothing else chosen', (method) => {
    for (const feedback of FEEDBACK) {
      const cfg = resolveAlignConfig({ method, feedback });
      expect(cfg.method).toBe(method);
      expect(cfg.spec.feedback).toBe(feedback);
      expect(cfg.spec.constraint).toBe(ALIGN_CHOICE_DEFAULTS.constraint);
    }
  });

  it('refuses a method the spec does not have, naming the ones it has', () => {
    expect(() => resolveAlignConfig({ method: 'ppo' as never })).toThrow(
      new RegExp(`one of ${[...RANKING_METHODS, ...CONTROL_METHODS].join(', ')}`),
    );
  });

  it('has a VFT and model preset for every spec preset, the default among them', () => {
    expect(Object.keys(MODEL_PRESETS).sort()).toEqual([...PRESETS].sort());
    for (const p of PRESETS) expect(resolveVftConfig(p).preset).toBe(p);
    expect(PRESETS).toContain(DEFAULT_PRESET);
  });
});

describe('`aft loss` agrees with the spec', () => {
  it('takes every ranking method and constraint, with the spec defaults', () => {
    for (const method of RANKING_METHODS) {
      for (const constraint of CONSTRAINTS) {
        const groups = [{ scores: [-1, -2], ranks: [0, 1], refScores: [-1, -2] }];
        expect(lossInput.safeParse({ method, constraint, groups }).success, `${method}/${constraint}`).toBe(true);
      }
    }
    const parsed = lossInput.parse({ method: 'aft', groups: [{ scores: [-1, -2], ranks: [0, 1] }] });
    const { constraint, beta, dpoBeta } = ALIGN_CHOICE_DEFAULTS;
    expect({ constraint: parsed.constraint, beta: parsed.beta, dpoBeta: parsed.dpoBeta }).toEqual({
      constraint,
      beta,
      dpoBeta,
    });
    for (const m of CONTROL_METHODS) expect(lossInput.safeParse({ method: m, groups: [] }).success, m).toBe(false);
  });
});
