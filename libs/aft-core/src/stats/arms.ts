/**
 * The arms of a comparison: a run's method, its constraint and, for the boundary, its β — the rows of the dashboard's
 * results table and of its paired comparison, one grouping for both (and for the API that computes the latter).
 */
import { ALIGN_METHODS, CONSTRAINTS, isControlMethod, METHOD_LABELS } from '../spec';

/** What grouping reads of a run. `config` is the run's JSON config (only its `beta` is read). */
export interface ArmRun {
  method: string;
  constraint: string;
  parentRunId: string | null;
  config: unknown;
}

export interface Arm {
  key: string;
  label: string;
  method: string;
  constraint: string;
  beta: number | null;
}

/** A VFT run without a parent: the baseline every alignment run starts from, first in the table. */
export const VFT_PARENT = 'vft-parent';
/** Continued VFT (a VFT run trained from a parent): the control a method is compared with first. */
export const CONTINUED_VFT_ARM = 'vft|none|';
/** The VFT parents themselves: the control when no continued VFT ran. */
export const VFT_PARENT_ARM = `${VFT_PARENT}|none|`;

// the methods, their order and labels are the training vocabulary's (spec.ts)
const METHOD_ORDER: readonly string[] = [VFT_PARENT, ...ALIGN_METHODS];
const CONSTRAINT_ORDER: readonly string[] = CONSTRAINTS;
const METHOD_LABEL: Readonly<Record<string, string>> = { [VFT_PARENT]: 'VFT', ...METHOD_LABELS };

const finite = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const configBeta = (config: unknown) =>
  typeof config === 'object' && config !== null && !Array.isArray(config)
    ? finite((config as Record<string, unknown>)['beta'])
    : null;

/** The run's boundary β (null unless its constraint is the boundary). */
export function betaOf(r: Pick<ArmRun, 'constraint' | 'config'>): number | null {
  return r.constraint === 'boundary' ? configBeta(r.config) : null;
}

/** A run's arm: its method, its constraint and, for the boundary, its β. A VFT run with no parent is the baseline. */
export function armOf(r: ArmRun): Arm {
  const method = r.method === 'vft' && r.parentRunId === null ? VFT_PARENT : r.method;
  // a method the vocabulary does not know (a run logged through the SDK) is shown as a ranking method
  const ranking = method !== VFT_PARENT && !isControlMethod(method);
  const constraint = ranking ? r.constraint : 'none';
  const beta = ranking ? betaOf(r) : null;
  const name = METHOD_LABEL[method] ?? method.toUpperCase();
  const label = ranking ? `${name} ${constraint}${beta !== null ? ` β=${beta}` : ''}` : name;
  return { key: `${method}|${constraint}|${beta ?? ''}`, label, method, constraint, beta };
}

const rank = (xs: readonly string[], v: string) => (xs.indexOf(v) === -1 ? xs.length : xs.indexOf(v));

/** Table order: the VFT parent, then the vocabulary's methods (unknown ones after, by name), constraints, β. */
export function compareArms(a: Arm, b: Arm): number {
  return (
    rank(METHOD_ORDER, a.method) - rank(METHOD_ORDER, b.method) ||
    a.method.localeCompare(b.method) ||
    rank(CONSTRAINT_ORDER, a.constraint) - rank(CONSTRAINT_ORDER, b.constraint) ||
    (a.beta ?? 0) - (b.beta ?? 0)
  );
}

/** The control a paired comparison starts from: continued VFT, else the VFT parents, else the first arm. */
export function defaultControl(keys: readonly string[]): string | null {
  return keys.find((k) => k === CONTINUED_VFT_ARM) ?? keys.find((k) => k === VFT_PARENT_ARM) ?? keys[0] ?? null;
}
