/**
 * MLflow's search grammar for runs (the subset training clients and the MLflow UI use), compiled to SQL over `run r`:
 *
 *   metrics.accuracy > 0.9 AND params.optimizer = 'adam' AND tags."aft.method" LIKE 'a%'
 *   AND attributes.status = 'FINISHED' AND attributes.run_id IN ('a', 'b') AND attributes.start_time >= 1700000000000
 *
 * Entities: metrics (the latest value, as MLflow compares), params and tags (strings), attributes (status, run_name,
 * run_id, user_id, start_time, end_time, created). Keys may be bare (`tags.mlflow.runName`), `backquoted` or
 * "double-quoted". Comparators: = != > >= < <= for numbers; = != LIKE ILIKE for strings; IN / NOT IN for run_id,
 * status, run_name. Clauses join with AND (MLflow has no OR). Errors say what was wrong and what is accepted.
 *
 * It lives here, not in libs/api, because what it emits is SQL (docs/architecture.md, "Layers"); the MLflow API
 * answers a FilterError as INVALID_PARAMETER_VALUE.
 */

export class FilterError extends Error {}

const ENTITY: Record<string, 'metric' | 'param' | 'tag' | 'attribute'> = {
  metric: 'metric',
  metrics: 'metric',
  param: 'param',
  params: 'param',
  parameter: 'param',
  parameters: 'param',
  tag: 'tag',
  tags: 'tag',
  attribute: 'attribute',
  attributes: 'attribute',
  attr: 'attribute',
  run: 'attribute',
};

const STATUS_TO_DB: Record<string, string> = {
  RUNNING: 'running',
  SCHEDULED: 'queued',
  FINISHED: 'succeeded',
  FAILED: 'failed',
  KILLED: 'canceled',
};

type Attr = { sql: string; kind: 'string' | 'number' | 'status' };
const ATTRIBUTES: Record<string, Attr> = {
  status: { sql: 'r.status::text', kind: 'status' },
  run_name: { sql: 'r.name', kind: 'string' },
  'run name': { sql: 'r.name', kind: 'string' },
  name: { sql: 'r.name', kind: 'string' },
  run_id: { sql: 'r.id', kind: 'string' },
  run_uuid: { sql: 'r.id', kind: 'string' },
  id: { sql: 'r.id', kind: 'string' },
  user_id: { sql: `(r.kv_tags->>'mlflow.user')`, kind: 'string' },
  start_time: { sql: '(extract(epoch FROM r.started_at) * 1000)', kind: 'number' },
  end_time: { sql: '(extract(epoch FROM r.finished_at) * 1000)', kind: 'number' },
  created: { sql: '(extract(epoch FROM r.created_at) * 1000)', kind: 'number' },
  Created: { sql: '(extract(epoch FROM r.created_at) * 1000)', kind: 'number' },
};

const NUMERIC_OPS = ['=', '!=', '>', '>=', '<', '<='];
/** Clauses a filter may join: far more than anyone writes, few enough that Postgres plans the query at once. */
export const MAX_CLAUSES = 100;
const STRING_OPS = ['=', '!=', 'LIKE', 'ILIKE'];

class Scanner {
  i = 0;
  constructor(readonly s: string) {}
  ws() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  done() {
    this.ws();
    return this.i >= this.s.length;
  }
  peekWord(): string {
    this.ws();
    const m = /^[A-Za-z_]+/.exec(this.s.slice(this.i));
    return m ? m[0] : '';
  }
  word(): string {
    const w = this.peekWord();
    this.i += w.length;
    return w;
  }
  quoted(q: string): string {
    const start = this.i;
    this.i++; // opening quote
    let out = '';
    while (this.i < this.s.length && this.s[this.i] !== q) {
      // a doubled quote inside a string stands for one
      if (this.s[this.i] === '\\' && this.i + 1 < this.s.length) this.i++;
      out += this.s[this.i++];
    }
    if (this.i >= this.s.length) throw new FilterError(`unterminated quote starting at character ${start + 1}`);
    this.i++;
    return out;
  }
}

/** An identifier: `entity.key`, or a bare attribute name (`status`, `start_time`) as MLflow also allows. */
function identifier(sc: Scanner): { entity: 'metric' | 'param' | 'tag' | 'attribute'; key: string } {
  sc.ws();
  const m = /^([A-Za-z_]+)\./.exec(sc.s.slice(sc.i));
  if (m && ENTITY[m[1]!.toLowerCase()]) {
    sc.i += m[0].length;
    const entity = ENTITY[m[1]!.toLowerCase()]!;
    const c = sc.s[sc.i];
    let key: string;
    if (c === '`' || c === '"') key = sc.quoted(c);
    else {
      const k = /^[^\s=!<>()]+/.exec(sc.s.slice(sc.i));
      if (!k) throw new FilterError(`expected a key after "${m[0]}" at character ${sc.i + 1}`);
      key = k[0];
      sc.i += key.length;
    }
    if (!key) throw new FilterError(`empty key after "${m[0]}"`);
    return { entity, key };
  }
  const w = /^[A-Za-z_]+/.exec(sc.s.slice(sc.i));
  if (w && ATTRIBUTES[w[0]]) {
    sc.i += w[0].length;
    return { entity: 'attribute', key: w[0] };
  }
  const got = sc.s.slice(sc.i, sc.i + 30);
  throw new FilterError(
    `expected an identifier like metrics.<key>, params.<key>, tags.<key> or attributes.<name> at character ${sc.i + 1}, got "${got}"`,
  );
}

function comparator(sc: Scanner): string {
  sc.ws();
  const sym = /^(>=|<=|!=|=|>|<)/.exec(sc.s.slice(sc.i));
  if (sym) {
    sc.i += sym[0].length;
    return sym[0];
  }
  const w = sc.word().toUpperCase();
  if (w === 'LIKE' || w === 'ILIKE' || w === 'IN') return w;
  if (w === 'NOT') {
    if (sc.word().toUpperCase() === 'IN') return 'NOT IN';
  }
  throw new FilterError(
    `expected a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN) at character ${sc.i + 1}`,
  );
}

type Value = { kind: 'number'; v: number } | { kind: 'string'; v: string } | { kind: 'list'; v: string[] };

function value(sc: Scanner): Value {
  sc.ws();
  const c = sc.s[sc.i];
  if (c === "'" || c === '"') return { kind: 'string', v: sc.quoted(c) };
  if (c === '(') {
    sc.i++;
    const items: string[] = [];
    for (;;) {
      sc.ws();
      const q = sc.s[sc.i];
      if (q !== "'" && q !== '"')
        throw new FilterError(`expected a quoted string in the list at character ${sc.i + 1}`);
      items.push(sc.quoted(q));
      sc.ws();
      if (sc.s[sc.i] === ',') {
        sc.i++;
        continue;
      }
      if (sc.s[sc.i] === ')') {
        sc.i++;
        break;
      }
      throw new FilterError(`expected , or ) in the list at character ${sc.i + 1}`);
    }
    if (!items.length) throw new FilterError('an IN list must not be empty');
    return { kind: 'list', v: items };
  }
  const n = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(sc.s.slice(sc.i));
  if (n) {
    sc.i += n[0].length;
    return { kind: 'number', v: Number(n[0]) };
  }
  throw new FilterError(`expected a value (a number, a 'quoted string' or a ('list')) at character ${sc.i + 1}`);
}

export interface Compiled {
  where: string[];
  params: unknown[];
}

/** Compiles a filter into SQL conditions over `run r`; placeholders start after `params` already bound. */
export function compileRunFilter(filter: string, params: unknown[] = []): Compiled {
  const where: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const sc = new Scanner(filter);
  if (sc.done()) return { where, params };
  for (;;) {
    const id = identifier(sc);
    const op = comparator(sc);
    const val = value(sc);
    const label = `${id.entity === 'attribute' ? 'attributes' : `${id.entity}s`}.${id.key}`;
    const sqlOp = op === 'LIKE' ? 'LIKE' : op === 'ILIKE' ? 'ILIKE' : op === '!=' ? '<>' : op;
    if (id.entity === 'metric') {
      if (!NUMERIC_OPS.includes(op) || val.kind !== 'number') {
        throw new FilterError(`${label}: metrics compare with =, !=, >, >=, <, <= against a number`);
      }
      // a scalar subquery (one row per run and key, NULL when absent: no match), not EXISTS: Postgres turns each
      // EXISTS into a join and plans them together, in time that grows steeply (20 clauses: half a second)
      where.push(
        `(SELECT m.last_value FROM run_metric m WHERE m.run_id = r.id AND m.key = ${p(id.key)}) ${sqlOp} ${p(val.v)}`,
      );
    } else if (id.entity === 'param' || id.entity === 'tag') {
      const col = id.entity === 'param' ? `(r.config->>${p(id.key)})` : `(r.kv_tags->>${p(id.key)})`;
      if (op === 'IN' || op === 'NOT IN') {
        if (val.kind !== 'list') throw new FilterError(`${label}: ${op} takes a ('list', 'of', 'strings')`);
        where.push(`${op === 'NOT IN' ? 'NOT ' : ''}(${col} = ANY(${p(val.v)}::text[]))`);
      } else {
        if (!STRING_OPS.includes(op) || val.kind !== 'string') {
          throw new FilterError(`${label}: ${id.entity}s compare with =, !=, LIKE, ILIKE against a 'quoted string'`);
        }
        where.push(`${col} ${sqlOp} ${p(val.v)}`);
      }
    } else {
      const attr = ATTRIBUTES[id.key];
      if (!attr)
        throw new FilterError(`${label}: unknown attribute; searchable are ${Object.keys(ATTRIBUTES).join(', ')}`);
      if (attr.kind === 'number') {
        if (!NUMERIC_OPS.includes(op) || val.kind !== 'number')
          throw new FilterError(`${label}: compare with =, !=, >, >=, <, <= against a number (ms since the epoch)`);
        where.push(`${attr.sql} ${sqlOp} ${p(val.v)}`);
      } else {
        const conv = (s: string) => {
          if (attr.kind !== 'status') return s;
          const db = STATUS_TO_DB[s.toUpperCase()];
          if (!db) throw new FilterError(`${label}: a status is one of ${Object.keys(STATUS_TO_DB).join(', ')}`);
          return db;
        };
        if (op === 'IN' || op === 'NOT IN') {
          if (val.kind !== 'list') throw new FilterError(`${label}: ${op} takes a ('list', 'of', 'strings')`);
          where.push(`${op === 'NOT IN' ? 'NOT ' : ''}(${attr.sql} = ANY(${p(val.v.map(conv))}::text[]))`);
        } else {
          if (!STRING_OPS.includes(op) || val.kind !== 'string')
            throw new FilterError(`${label}: compare with =, !=, LIKE, ILIKE against a 'quoted string'`);
          if (attr.kind === 'status' && (op === 'LIKE' || op === 'ILIKE'))
            throw new FilterError(`${label}: compare with = or != (or IN)`);
          where.push(`${attr.sql} ${sqlOp} ${p(conv(val.v))}`);
        }
      }
    }
    if (sc.done()) break;
    if (where.length >= MAX_CLAUSES) throw new FilterError(`a filter joins at most ${MAX_CLAUSES} clauses with AND`);
    const joiner = sc.word().toUpperCase();
    if (joiner !== 'AND') {
      throw new FilterError(
        joiner === 'OR'
          ? "MLflow's search has no OR: join clauses with AND"
          : `expected AND between clauses at character ${sc.i + 1}`,
      );
    }
  }
  return { where, params };
}

/** `order_by` entries (`metrics.acc DESC`, `attributes.start_time`, `params.lr ASC`) as SQL ORDER BY terms. */
export function compileOrderBy(orderBy: readonly string[], params: unknown[]): string[] {
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  return orderBy.map((o) => {
    // not one regex with a lazy `(.+?)` before `\s+(ASC|DESC)`: that rescans a run of spaces from each position in it
    const t = o.trim();
    const m = /\s(ASC|DESC)$/i.exec(t);
    const ident = m ? t.slice(0, m.index).trimEnd() : t;
    if (!ident) throw new FilterError(`invalid order_by "${o}"`);
    const sc = new Scanner(ident);
    const id = identifier(sc);
    if (!sc.done()) throw new FilterError(`invalid order_by "${o}": expected <identifier> [ASC|DESC]`);
    const dir = (m?.[1] ?? 'ASC').toUpperCase();
    let expr: string;
    if (id.entity === 'metric')
      expr = `(SELECT m.last_value FROM run_metric m WHERE m.run_id = r.id AND m.key = ${p(id.key)})`;
    else if (id.entity === 'param') expr = `(r.config->>${p(id.key)})`;
    else if (id.entity === 'tag') expr = `(r.kv_tags->>${p(id.key)})`;
    else {
      const attr = ATTRIBUTES[id.key];
      if (!attr) throw new FilterError(`invalid order_by "${o}": unknown attribute ${id.key}`);
      expr = attr.sql;
    }
    return `${expr} ${dir} NULLS LAST`;
  });
}
