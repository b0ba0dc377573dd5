/**
 * `aft loss`: JSON on stdin → `{"loss": number, "grads": [[...], ...]}` on stdout, for checking our losses against
 * any other implementation. Input: {"method": a ranking method, "constraint": a constraint, "beta": 1.0,
 * "dpoBeta": 0.1, "groups": [{"scores": [..], "ranks": [..], "refScores": [..]}]}; methods, constraints and the
 * defaults are the spec's (spec.ts).
 */
import { z } from 'zod';
import { lossAndGrads } from '../losses';
import { ALIGN_CHOICE_DEFAULTS, CONSTRAINTS, RANKING_METHODS } from '../spec';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const lossInput = z
  .object({
    method: z.enum(RANKING_METHODS),
    constraint: z.enum(CONSTRAINTS).default(ALIGN_CHOICE_DEFAULTS.constraint),
    beta: finite.min(0).default(ALIGN_CHOICE_DEFAULTS.beta),
    dpoBeta: finite.positive().default(ALIGN_CHOICE_DEFAULTS.dpoBeta),
    groups: z
      .array(
        z
          .object({
            scores: z.array(finite).min(1).max(1000),
            ranks: z.array(z.number().int().min(0)).min(1).max(1000),
            refScores: z.array(finite).max(1000).optional(),
          })
          .refine((g) => g.ranks.length === g.scores.length, {
            message: 'ranks must have one entry per score',
            path: ['ranks'],
          })
          .refine((g) => !g.refScores || g.refScores.length === g.scores.length, {
            message: 'refScores must have one entry per score',
            path: ['refScores'],
          }),
      )
      .min(1)
      .max(10_000),
  })
  .strict()
  .refine((v) => v.method !== 'dpo' || v.groups.every((g) => g.refScores), {
    message: 'dpo needs refScores in every group',
    path: ['groups'],
  });

export async function runLoss(text: string): Promise<{ loss: number; grads: number[][] }> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('input is not JSON');
  }
  const parsed = lossInput.safeParse(raw);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '));
  }
  const { loss, grads } = await lossAndGrads(parsed.data, parsed.data.groups);
  return { loss, grads };
}
