/**
 * Every procedure of the router with its authorization decision and a valid input on fresh fixtures: the table that
 * the authorization and the malformed-input tests walk. A procedure added without a row here fails both.
 */
import { createHash, randomBytes } from 'node:crypto';
import { generateApiKey, type Db } from '@aft/db';
import { appRouter } from '../src';
import { createMember } from '../src/testing';

type Meta = { scope?: string; keyOnly?: boolean };
type Proc = { _def: { meta?: Meta; type: string } };
/** The router's procedures by dotted path (walking nested routers). */
function flatten(rec: Record<string, unknown>, prefix = ''): [string, Proc][] {
  return Object.entries(rec).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    const def = (v as Proc)?._def;
    if (def && typeof def.type === 'string' && ['query', 'mutation', 'subscription'].includes(def.type))
      return [[path, v as Proc]];
    const nested =
      (v as { _def?: { record?: Record<string, unknown> } })?._def?.record ?? (v as Record<string, unknown>);
    return v && typeof v === 'object' ? flatten(nested, path) : [];
  });
}
export const procedures = flatten(appRouter._def.record as unknown as Record<string, unknown>);
export const DECISIONS = ['read', 'log', 'launch', 'manage', 'account'];

export interface Fx {
  projectId: string;
  projectName: string;
  runId: string;
  sweepId: string;
  invitationId: string;
  invitationToken: string;
  keyId: string;
  memberId: string;
  alertRuleId: string;
  viewId: string;
}
export const uniq = () => randomBytes(4).toString('hex');

/** Fresh things in "home" for one call (a mutation may delete or change what it is given). */
export async function fixture(db: Db): Promise<Fx> {
  const home = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'home' } });
  const projectName = `p-${uniq()}`;
  const project = await db.prisma.project.create({ data: { teamId: home.id, name: projectName } });
  const run = await db.prisma.run.create({ data: { projectId: project.id, name: `r-${uniq()}`, status: 'running' } });
  const sweep = await db.prisma.sweep.create({ data: { projectId: project.id, name: `s-${uniq()}` } });
  const invitationToken = randomBytes(24).toString('base64url');
  const inv = await db.prisma.invitation.create({
    data: {
      teamId: home.id,
      role: 'viewer',
      hash: createHash('sha256').update(invitationToken).digest('hex'),
      expiresAt: new Date(Date.now() + 86400_000),
    },
  });
  const k = generateApiKey();
  const key = await db.prisma.apiKey.create({
    data: { teamId: home.id, name: 'fixture', prefix: k.prefix, hash: k.hash },
  });
  const { user } = await createMember(db, 'home', 'member');
  const alertRule = await db.prisma.alertRule.create({
    data: {
      projectId: project.id,
      name: 'fixture',
      kind: 'run-failed',
      url: 'https://hooks.example.com/x',
      secret: 'aftwh_x',
    },
  });
  const view = await db.prisma.savedView.create({
    data: { projectId: project.id, kind: 'runs', name: `v-${uniq()}`, query: 'group=1', createdById: user.id },
  });
  return {
    projectId: project.id,
    projectName,
    runId: run.id,
    sweepId: sweep.id,
    invitationId: inv.id,
    invitationToken,
    keyId: key.id,
    memberId: user.id,
    alertRuleId: alertRule.id,
    viewId: view.id,
  };
}

/**
 * The decision for each procedure — the permission it needs in the team (`log*`: `log`, and from an API key only,
 * as trainers and workers log; `account`: any signed-in person) — and a valid input for it. `capability`: the input
 * itself grants access (an invitation token), so anyone holding it may use it.
 */
/**
 * Saved views are saved by people, not API keys, and changed only by their creator or an owner: `deny` says what a
 * caller whom the permission allows is still refused (the fixture's view was saved by another member).
 */
type Deny = (c: { via: 'user' | 'key'; role: string | null }) => string | RegExp | null;
const VIEW_BY_KEY = 'FORBIDDEN: saved views are saved by signed-in members, not API keys';
const peopleOnly: Deny = (c) => (c.via === 'key' ? VIEW_BY_KEY : null);
const creatorOrOwner: Deny = (c) =>
  c.via === 'key' ? VIEW_BY_KEY : c.role === 'member' ? /^FORBIDDEN: view "v-\w+" was saved by .+: only they/ : null;

export const INPUTS: Record<string, { need: string; input: (f: Fx) => unknown; capability?: boolean; deny?: Deny }> = {
  'projects.create': { need: 'log', input: () => ({ name: `new-${uniq()}` }) },
  'projects.list': { need: 'read', input: () => undefined },
  'fleet.list': { need: 'read', input: () => undefined },
  'projects.get': { need: 'read', input: (f) => ({ id: f.projectId }) },
  'runs.create': { need: 'log', input: () => ({ project: `logged-${uniq()}`, config: { lr: 0.1 } }) },
  'runs.get': { need: 'read', input: (f) => ({ id: f.runId }) },
  'runs.list': { need: 'read', input: (f) => ({ projectId: f.projectId }) },
  'runs.update': { need: 'log', input: (f) => ({ id: f.runId, notes: 'looks good' }) },
  'runs.delete': { need: 'launch', input: (f) => ({ id: f.runId }) },
  'runs.setStatus': { need: 'log', input: (f) => ({ id: f.runId, status: 'failed', error: 'x' }) },
  'runs.setSummary': { need: 'log*', input: (f) => ({ id: f.runId, summary: { acc: 0.5 } }) },
  'runs.onUpdate': { need: 'read', input: (f) => ({ runId: f.runId }) },
  'runs.launch': {
    need: 'launch',
    input: () => ({ kind: 'vft', project: `launched-${uniq()}`, config: { preset: 'tiny', seed: 1 } }),
  },
  'runs.cancel': { need: 'launch', input: (f) => ({ id: f.runId }) },
  'runs.start': { need: 'log*', input: (f) => ({ id: f.runId, backend: 'wasm' }) },
  'sweeps.launch': {
    need: 'launch',
    input: () => ({ name: 'grid', project: `swept-${uniq()}`, axes: { method: ['aft'] } }),
  },
  'sweeps.get': { need: 'read', input: (f) => ({ id: f.sweepId }) },
  'sweeps.list': { need: 'read', input: (f) => ({ projectId: f.projectId }) },
  'sweeps.cancel': { need: 'launch', input: (f) => ({ id: f.sweepId }) },
  'metrics.log': { need: 'log*', input: (f) => ({ runId: f.runId, points: [{ key: 'loss', step: 1, value: 0.5 }] }) },
  'metrics.series': { need: 'read', input: (f) => ({ runIds: [f.runId], keys: ['loss'] }) },
  'metrics.seriesPacked': { need: 'read', input: (f) => ({ runIds: [f.runId], keys: ['loss'] }) },
  'metrics.keys': { need: 'read', input: (f) => ({ runIds: [f.runId] }) },
  'samples.log': {
    need: 'log*',
    input: (f) => ({
      runId: f.runId,
      rows: [
        { step: 1, split: 'test', questionId: 'q1', prompt: '1+1?', completion: '#### 2', gold: '2', correct: true },
      ],
    }),
  },
  'samples.list': { need: 'read', input: (f) => ({ runId: f.runId }) },
  'samples.splits': { need: 'read', input: (f) => ({ runId: f.runId }) },
  'compare.paired': { need: 'read', input: (f) => ({ runIds: [f.runId] }) },
  'artifacts.register': {
    need: 'log*',
    input: (f) => ({ runId: f.runId, kind: 'checkpoint', name: 'step-1', uri: 'file:///tmp/c1', bytes: 10, step: 1 }),
  },
  'artifacts.list': { need: 'read', input: (f) => ({ runId: f.runId }) },
  'events.log': { need: 'log*', input: (f) => ({ runId: f.runId, kind: 'note', step: 1, details: {} }) },
  'events.list': { need: 'read', input: (f) => ({ runId: f.runId }) },
  'alerts.list': { need: 'read', input: (f) => ({ projectId: f.projectId }) },
  'alerts.create': {
    need: 'launch',
    input: (f) => ({
      projectId: f.projectId,
      name: 'on failure',
      kind: 'run-failed',
      url: 'https://hooks.example.com/a',
    }),
  },
  'alerts.update': { need: 'launch', input: (f) => ({ id: f.alertRuleId, enabled: false }) },
  'alerts.delete': { need: 'launch', input: (f) => ({ id: f.alertRuleId }) },
  'alerts.testSend': { need: 'launch', input: (f) => ({ id: f.alertRuleId }) },
  'teams.me': { need: 'account', input: () => undefined },
  'teams.create': { need: 'account', input: () => ({ name: `Team ${uniq()}` }) },
  'teams.members': { need: 'read', input: () => undefined },
  'teams.setRole': { need: 'manage', input: (f) => ({ userId: f.memberId, role: 'viewer' }) },
  'teams.removeMember': { need: 'manage', input: (f) => ({ userId: f.memberId }) },
  'invitations.create': { need: 'manage', input: () => ({ role: 'member', email: 'new@home.test' }) },
  'invitations.list': { need: 'manage', input: () => undefined },
  'invitations.revoke': { need: 'manage', input: (f) => ({ id: f.invitationId }) },
  'invitations.preview': { need: 'account', input: (f) => ({ token: f.invitationToken }), capability: true },
  'invitations.accept': { need: 'account', input: (f) => ({ token: f.invitationToken }), capability: true },
  'keys.list': { need: 'manage', input: () => undefined },
  'keys.create': { need: 'manage', input: () => ({ name: 'ci', scopes: ['log'] }) },
  'keys.revoke': { need: 'manage', input: (f) => ({ id: f.keyId }) },
  'audit.list': { need: 'manage', input: () => ({ limit: 10 }) },
  'views.list': { need: 'read', input: (f) => ({ projectId: f.projectId, kind: 'runs' }) },
  'views.get': { need: 'read', input: (f) => ({ id: f.viewId }) },
  'views.create': {
    need: 'log',
    input: (f) => ({ projectId: f.projectId, kind: 'runs', name: `view-${uniq()}`, query: 'group=1' }),
    deny: peopleOnly,
  },
  'views.rename': { need: 'log', input: (f) => ({ id: f.viewId, name: `renamed-${uniq()}` }), deny: creatorOrOwner },
  'views.delete': { need: 'log', input: (f) => ({ id: f.viewId }), deny: creatorOrOwner },
};
