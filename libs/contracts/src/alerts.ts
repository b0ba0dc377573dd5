/**
 * The vocabulary of alert rules (docs/architecture.md, "Alerts"): what can fire one, how a metric threshold is
 * compared, and the bounds of a rule. The API validates with it; the dashboard builds its form from the same lists.
 */
import { z } from 'zod';

/** What fires a rule, once per run (the sweep's: once per sweep). */
export const ALERT_KINDS = ['degradation-detected', 'run-failed', 'sweep-finished', 'metric-threshold'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_KIND_LABELS: Readonly<Record<AlertKind, string>> = {
  'degradation-detected': 'a run degrades',
  'run-failed': 'a run fails',
  'sweep-finished': 'a sweep finishes',
  'metric-threshold': 'a metric crosses a threshold',
};

/** A metric-threshold rule fires when a logged value is strictly above, or strictly below, its threshold. */
export const ALERT_OPS = ['above', 'below'] as const;
export type AlertOp = (typeof ALERT_OPS)[number];

export const ALERT_LIMITS = {
  rulesPerProject: 50,
  nameChars: 100,
  /** Characters of a webhook URL. */
  urlChars: 2000,
  /** Delivery log rows one list returns. */
  deliveries: 200,
} as const;

export const alertKind = z.enum(ALERT_KINDS, { message: `a kind is one of ${ALERT_KINDS.join(', ')}` });
export const alertOp = z.enum(ALERT_OPS, { message: `op is one of ${ALERT_OPS.join(', ')}` });
