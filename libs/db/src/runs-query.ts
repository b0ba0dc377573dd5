/**
 * Reads of runs: the runs list's statement (filtered, sorted, paged: runs-list.ts runs it), one run as its page
 * shows it, its live state, and which of some run ids are the team's.
 */
import type { Pool } from 'pg';
import type { Db } from './client';

export type CompareOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';

export interface ValueFilter {
  /** Dotted path into the JSON object, e.g. `optimizer.lr`. */
  path: string;
  op: CompareOp;
  value: string | number | boolean | null;
}

export interface RunListQuery {
  teamId: string;
  projectId?: string;
  sweepId?: string;
  status?: string[];
  method?: string[];
  constraint?: string[];
  /** Runs carrying every one of these tags. */
  tags?: string[];
  /** Case-insensitive substring of the name. */
  search?: string;
  config?: ValueFilter[];
  summary?: ValueFilter[];
  /** `createdAt`, `name`, `status`, `method`, or `summary.<key>` for any summary metric. */
  sortBy: string;
  sortDir: 'asc' | 'desc';
  cursor?: string;
  limit: number;
}

export interface RunListRow {
  id: string;
  projectId: string;
  sweepId: string | null;
  parentRunId: string | null;
  name: string;
  method: string;
  constraint: string;
  status: string;
  tags: string[];
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  seed: number | null;
  /** The backend it trained on, as its trainer reported it (the config holds the worker's full record). */
  backend: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  heartbeatAt: Date | null;
}

export class BadCursorError extends Error {
  constructor() {
    super('cursor is not one this list returned; start again without it');
  }
}

const TEXT_SORTS: Record<string, string> = { name: 'r.name', status: 'r.status::text', method: 'r.method' };
const OPS: Record<CompareOp, string> = { eq: '=', ne: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' };

/** A statement's parameter list, and `p(v)`, which adds `v` to it and gives its placeholder (`$1`, `$2`, …). */
export function sqlParams(): { values: unknown[]; p: (v: unknown) => string } {
  const values: unknown[] = [];
  return {
    values,
    p: (v) => {
      values.push(v);
      return `$${values.length}`;
    },
  };
}

/** The columns of a runs-list row, from `run r`. */
export const RUN_LIST_COLUMNS = `r.id, r.project_id AS "projectId", r.sweep_id AS "sweepId",
  r.parent_run_id AS "parentRunId", r.name, r.method, r.constraint, r.status::text AS status, r.tags, r.config,
  r.summary, r.seed, r.backend, r.created_at AS "createdAt", r.started_at AS "startedAt",
  r.finished_at AS "finishedAt", r.heartbeat_at AS "heartbeatAt"`;

/**
 * Runs of the team only. The team's projects as a one-time list rather than a join: with a join the planner may
 * sort every run of the project before joining and only then apply the LIMIT (a full sort, spilling to disk at
 * 100,000 runs); as a plain filter on run, ORDER BY … LIMIT is a top-N heap sort, or an index scan where an index
 * has the order.
 */
export const teamRuns = (teamParam: string) =>
  `r.project_id = ANY(ARRAY(SELECT pr.id FROM project pr WHERE pr.team_id = ${teamParam}))`;

/** A summary-sort row's cursor: [no value, sort key, id] (the sort key being the value, negated when descending). */
export const summaryCursorOf = (row: Record<string, unknown>) =>
  row['_k0'] === Infinity ? [true, 0, row['id']] : [false, row['_k0'], row['id']];

/** listRuns' statement (one more row than the page, to tell whether there is a next), and a row's cursor. */
export function runListStatement(q: RunListQuery): {
  text: string;
  values: unknown[];
  cursorOf: (row: Record<string, unknown>) => unknown[];
} {
  const { values: params, p } = sqlParams();
  const where: string[] = [teamRuns(p(q.teamId))];
  if (q.projectId) where.push(`r.project_id = ${p(q.projectId)}`);
  if (q.sweepId) where.push(`r.sweep_id = ${p(q.sweepId)}`);
  if (q.status?.length) where.push(`r.status::text = ANY(${p(q.status)}::text[])`);
  if (q.method?.length) where.push(`r.method = ANY(${p(q.method)}::text[])`);
  if (q.constraint?.length) where.push(`r.constraint = ANY(${p(q.constraint)}::text[])`);
  if (q.tags?.length) where.push(`r.tags @> ${p(q.tags)}::text[]`);
  if (q.search) where.push(`r.name ILIKE ${p(`%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)}`);
  for (const [col, filters] of [
    ['r.config', q.config],
    ['r.summary', q.summary],
  ] as const) {
    for (const f of filters ?? []) {
      const path = `${col} #> ${p(f.path.split('.'))}::text[]`;
      if (typeof f.value === 'number' && f.op !== 'eq' && f.op !== 'ne') {
        where.push(
          `(CASE WHEN jsonb_typeof(${path}) = 'number' THEN (${path} #>> '{}')::float8 END) ${OPS[f.op]} ${p(f.value)}`,
        );
      } else if (f.op === 'eq' || f.op === 'ne') {
        const cmp = `${path} = ${p(JSON.stringify(f.value))}::jsonb`;
        where.push(f.op === 'eq' ? cmp : `(${path} IS NULL OR NOT (${cmp}))`);
      } else {
        where.push(`(${path} #>> '{}') ${OPS[f.op]} ${p(String(f.value))}`);
      }
    }
  }

  const desc = q.sortDir === 'desc';
  let order: string;
  let keyCols: string[];
  let cursorOf: (row: Record<string, unknown>) => unknown[];
  /** The condition for the rows after a cursor (already checked to have this sort's kinds). */
  let after: (c: unknown[]) => string;
  if (q.sortBy.startsWith('summary.')) {
    const key = p(q.sortBy.slice('summary.'.length));
    const val = `(CASE WHEN jsonb_typeof(r.summary -> ${key}) = 'number' THEN (r.summary ->> ${key})::float8 END)`;
    // One sort key, computed once per run (at 100,000 runs that computation is most of the query): the value,
    // negated for descending, and +Infinity for runs without it, so they come last (a stored value is finite: JSON
    // has no Infinity). The cursor keeps the form it always had: [no value, value, id].
    keyCols = [`COALESCE(${desc ? '-' : ''}${val}, 'Infinity'::float8)`, 'r.id'];
    order = keyCols.map((c) => `${c} ASC`).join(', ');
    cursorOf = summaryCursorOf;
    after = ([none, k, id]) => `(${keyCols.join(', ')}) > (${p(none ? 'Infinity' : k)}::float8, ${p(id)}::text)`;
  } else {
    const col = TEXT_SORTS[q.sortBy] ?? 'r.created_at';
    keyCols = [col, 'r.id'];
    order = keyCols.map((c) => `${c} ${desc ? 'DESC' : 'ASC'}`).join(', ');
    cursorOf = (row) => [row['_k0'] instanceof Date ? (row['_k0'] as Date).toISOString() : row['_k0'], row['id']];
    const cast = q.sortBy in TEXT_SORTS ? '::text' : '::timestamptz';
    after = ([k, id]) => `(${keyCols.join(', ')}) ${desc ? '<' : '>'} (${p(k)}${cast}, ${p(id)}::text)`;
  }
  if (q.cursor) {
    const kinds: CursorKind[] = q.sortBy.startsWith('summary.')
      ? ['boolean', 'number', 'text']
      : [q.sortBy in TEXT_SORTS ? 'text' : 'timestamp', 'text'];
    where.push(after(decodeCursor(q.cursor, kinds)));
  }
  const limit = p(q.limit + 1);
  const sql = `
    SELECT ${RUN_LIST_COLUMNS}, ${keyCols
      .slice(0, -1)
      .map((c, i) => `${c} AS _k${i}`)
      .join(', ')}
    FROM run r
    WHERE ${where.join(' AND ')}
    ORDER BY ${order}
    LIMIT ${limit}`;
  return { text: sql, values: params, cursorOf };
}

export function encodeCursor(v: unknown[]): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

export type CursorKind = 'timestamp' | 'text' | 'number' | 'boolean';

/** Each key of a cursor must be what this sort wrote, or the query's cast fails in Postgres (a 500, not a 400). */
function cursorValueFits(x: unknown, kind: CursorKind): boolean {
  switch (kind) {
    case 'timestamp':
      // exactly what encodeCursor wrote (Date.toISOString): anything else Postgres may refuse to cast
      // (four-digit years only: Postgres does not read toISOString's signed six-digit years)
      return (
        typeof x === 'string' && /^\d{4}-/.test(x) && Number.isFinite(Date.parse(x)) && new Date(x).toISOString() === x
      );
    case 'text':
      return typeof x === 'string' && !x.includes('\u0000');
    case 'number':
      return typeof x === 'number' && Number.isFinite(x);
    case 'boolean':
      return typeof x === 'boolean';
  }
}

export function decodeCursor(s: string, kinds: CursorKind[]): unknown[] {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === kinds.length && v.every((x, i) => cursorValueFits(x, kinds[i]!))) return v;
  } catch {
    // fall through
  }
  throw new BadCursorError();
}

/** The run page's run: every column it shows, its project, its parent and up to 100 of its children. */
const RUN_DETAIL_SELECT = {
  id: true,
  projectId: true,
  sweepId: true,
  parentRunId: true,
  name: true,
  method: true,
  constraint: true,
  config: true,
  configHash: true,
  seed: true,
  datasetHash: true,
  backend: true,
  status: true,
  summary: true,
  tags: true,
  notes: true,
  error: true,
  writeSeq: true,
  createdAt: true,
  updatedAt: true,
  startedAt: true,
  finishedAt: true,
  heartbeatAt: true,
  project: { select: { id: true, name: true } },
  parent: { select: { id: true, name: true, method: true } },
  children: { select: { id: true, name: true, method: true, constraint: true, status: true }, take: 100 },
} as const;

/** A run of the team as the run page shows it (RUN_DETAIL_SELECT); null when not the team's. */
export function findRunDetail(db: Db, teamId: string, runId: string) {
  return db.prisma.run.findFirst({ where: { id: runId, project: { teamId } }, select: RUN_DETAIL_SELECT });
}

/**
 * Everything on the run page that can change while the run trains: status, summary, timestamps, its write sequence
 * (what a live view resumes from, docs/architecture.md) and each metric key's count and last value. Null when the
 * run is not the team's.
 */
export function findRunLiveState(db: Db, teamId: string, runId: string) {
  return db.prisma.run.findFirst({
    where: { id: runId, project: { teamId } },
    select: {
      id: true,
      status: true,
      summary: true,
      error: true,
      writeSeq: true,
      startedAt: true,
      finishedAt: true,
      heartbeatAt: true,
      metrics: { select: { key: true, count: true, lastStep: true, lastValue: true }, orderBy: { key: 'asc' } },
    },
  });
}

/** The status of a run of the team; null when not the team's. */
export function findRunStatus(db: Db, teamId: string, runId: string) {
  return db.prisma.run.findFirst({ where: { id: runId, project: { teamId } }, select: { status: true } });
}

/** Those of `runIds` that are not runs of the team (missing, or another team's: the caller cannot tell which). */
export async function missingRuns(pool: Pool, teamId: string, runIds: readonly string[]): Promise<string[]> {
  const found = await pool.query<{ id: string }>(
    `SELECT r.id FROM run r JOIN project p ON p.id = r.project_id WHERE r.id = ANY($1::text[]) AND p.team_id = $2`,
    [runIds, teamId],
  );
  const have = new Set(found.rows.map((r) => r.id));
  return runIds.filter((r) => !have.has(r));
}
