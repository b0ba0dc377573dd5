/**
 * A project's alert rules and their delivery log (docs/architecture.md, "Alerts"). Everyone in the team reads them
 * (never a rule's secret, which `create` shows once); members and owners — and keys with the `launch` scope —
 * create, change, delete and test them, each change in the audit log. Rules fire from the writes that trigger
 * them (../alerts/fire.ts).
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { ALERT_LIMITS, alertKind, alertOp, id, metricKey, pgText } from '@aft/contracts';
import {
  AlertRuleCapError,
  createAlertRule,
  deleteAlertRule,
  findAlertRule,
  listAlertDeliveries,
  listAlertRules,
  updateAlertRule,
  type Db,
} from '@aft/db';
import { webhookUrlProblem } from '@aft/queue';
import { audit } from '../audit';
import { alertEvent, fireAlerts } from '../alerts/fire';
import { readProcedure, runAdminProcedure, type Actor, type Context } from '../trpc';

const ruleName = pgText
  .trim()
  .min(1, 'a rule name must not be empty')
  .max(ALERT_LIMITS.nameChars, `a rule name is at most ${ALERT_LIMITS.nameChars} characters`);
const webhookUrl = pgText
  .trim()
  .max(ALERT_LIMITS.urlChars, `a webhook URL is at most ${ALERT_LIMITS.urlChars} characters`)
  .superRefine((u, ctx) => {
    const problem = webhookUrlProblem(u);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const threshold = z.number().refine(Number.isFinite, 'a threshold is a finite number');
const METRIC_FIELDS = ['metricKey', 'op', 'threshold'] as const;

const createInput = z
  .object({
    projectId: id,
    name: ruleName,
    kind: alertKind,
    url: webhookUrl,
    metricKey: metricKey.optional(),
    op: alertOp.optional(),
    threshold: threshold.optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .superRefine((v, ctx) => {
    for (const f of METRIC_FIELDS) {
      if (v.kind === 'metric-threshold' && v[f] === undefined)
        ctx.addIssue({ code: 'custom', path: [f], message: `a metric-threshold rule needs ${f}` });
      if (v.kind !== 'metric-threshold' && v[f] !== undefined)
        ctx.addIssue({ code: 'custom', path: [f], message: `only a metric-threshold rule takes ${f}` });
    }
  });

const updateInput = z
  .object({
    id,
    name: ruleName.optional(),
    url: webhookUrl.optional(),
    enabled: z.boolean().optional(),
    metricKey: metricKey.optional(),
    op: alertOp.optional(),
    threshold: threshold.optional(),
  })
  .strict()
  .refine((v) => Object.keys(v).length > 1, { message: 'give at least one field to change' });

type Ctx = Context & { actor: Actor };

const notFound = (ruleId: string) => new TRPCError({ code: 'NOT_FOUND', message: `alert rule ${ruleId} not found` });

async function ruleOrThrow(db: Db, teamId: string, ruleId: string) {
  const rule = await findAlertRule(db, teamId, ruleId);
  if (!rule) throw notFound(ruleId);
  return rule;
}

const by = (ctx: Ctx) => ({
  teamId: ctx.actor.teamId,
  userId: ctx.actor.userId,
  keyId: ctx.actor.keyId,
  ip: ctx.ip ?? null,
});

/** Where a rule posts, for the audit log: the host alone (a webhook's path is often its own secret). */
const hostOf = (url: string) => new URL(url).host;

/** A webhook URL for someone who may not change the rule: a Slack webhook's path is a credential to post with. */
const masked = (url: string) => {
  const u = new URL(url);
  return u.pathname.length > 1 || u.search ? `${u.origin}/…` : u.origin;
};

/**
 * A delivery's error for someone who may not change the rule: the receiver's answer can echo the webhook's path,
 * so only that there was one (the status code stays).
 */
const HIDDEN_ERROR = 'not delivered (members and owners see why)';

export const alertsRouter = {
  /**
   * The project's rules and its latest deliveries (newest first); webhook paths and delivery errors only for those
   * who edit rules.
   */
  list: readProcedure
    .input(z.object({ projectId: id, deliveries: z.number().int().min(1).max(ALERT_LIMITS.deliveries).default(50) }))
    .query(async ({ ctx, input }) => {
      const rules = await listAlertRules(ctx.db, ctx.actor.teamId, input.projectId);
      if (!rules) throw new TRPCError({ code: 'NOT_FOUND', message: `project ${input.projectId} not found` });
      const editor = ctx.actor.scopes.includes('launch');
      const deliveries = await listAlertDeliveries(ctx.db, input.projectId, input.deliveries);
      return {
        rules: editor ? rules : rules.map((r) => ({ ...r, url: masked(r.url) })),
        deliveries: editor ? deliveries : deliveries.map((d) => ({ ...d, lastError: d.lastError && HIDDEN_ERROR })),
      };
    }),

  /** A new rule with its signing secret, shown this once. */
  create: runAdminProcedure.input(createInput).mutation(async ({ ctx, input }) => {
    const { projectId, ...rule } = input;
    let made;
    try {
      made = await createAlertRule(
        ctx.db,
        ctx.actor.teamId,
        projectId,
        {
          ...rule,
          metricKey: rule.metricKey ?? null,
          op: rule.op ?? null,
          threshold: rule.threshold ?? null,
          createdBy: ctx.actor.userId,
        },
        {
          maxRules: ALERT_LIMITS.rulesPerProject,
          within: (c, r) =>
            audit(
              ctx.db,
              {
                ...by(ctx),
                action: 'alert.create',
                target: r.id,
                details: { name: r.name, kind: r.kind, projectId, host: hostOf(r.url) },
              },
              c,
            ),
        },
      );
    } catch (e) {
      if (e instanceof AlertRuleCapError) throw new TRPCError({ code: 'BAD_REQUEST', message: e.message, cause: e });
      throw e;
    }
    if (!made) throw new TRPCError({ code: 'NOT_FOUND', message: `projectId: project ${projectId} not found` });
    return made;
  }),

  /** Renames, re-points, enables or disables a rule, or changes its threshold; the kind and secret stay. */
  update: runAdminProcedure.input(updateInput).mutation(async ({ ctx, input }) => {
    const { id: ruleId, ...patch } = input;
    const rule = await ruleOrThrow(ctx.db, ctx.actor.teamId, ruleId);
    if (rule.kind !== 'metric-threshold') {
      const bad = METRIC_FIELDS.find((f) => patch[f] !== undefined);
      if (bad)
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: `invalid input — ${bad}: only a metric-threshold rule takes ${bad}`,
        });
    }
    const updated = await updateAlertRule(ctx.db, ctx.actor.teamId, ruleId, patch, (c, r) =>
      audit(
        ctx.db,
        {
          ...by(ctx),
          action: 'alert.update',
          target: r.id,
          details: { name: r.name, changed: Object.keys(patch), ...(patch.url ? { host: hostOf(patch.url) } : {}) },
        },
        c,
      ),
    );
    if (!updated) throw notFound(ruleId);
    return updated;
  }),

  /** Deletes a rule with its delivery log; deliveries still queued are then dropped by the worker. */
  delete: runAdminProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    const gone = await deleteAlertRule(ctx.db, ctx.actor.teamId, input.id, (c, r) =>
      audit(
        ctx.db,
        { ...by(ctx), action: 'alert.delete', target: input.id, details: { name: r.name, projectId: r.projectId } },
        c,
      ),
    );
    if (!gone) throw notFound(input.id);
    return { id: input.id, deleted: true };
  }),

  /** Sends a test alert through the rule (enabled or not), logged like any delivery. */
  testSend: runAdminProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    const rule = await ruleOrThrow(ctx.db, ctx.actor.teamId, input.id);
    if (!ctx.jobs) {
      throw new TRPCError({
        code: 'PRECONDITION_FAILED',
        message: 'this server has no job queue configured (set REDIS_URL); alerts cannot be sent',
      });
    }
    const event = alertEvent({ ...rule, ruleId: rule.id, ruleName: rule.name }, 'test', {
      evidence: { note: 'a test send from the project settings page' },
    });
    const [fired] = await fireAlerts(ctx, [
      {
        ruleId: rule.id,
        projectId: rule.projectId,
        kind: 'test',
        subject: null,
        runId: null,
        payload: event as unknown as Record<string, unknown>,
      },
    ]);
    return { deliveryId: fired!.deliveryId };
  }),
};
