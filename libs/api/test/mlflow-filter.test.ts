import { describe, expect, it } from 'vitest';
import { compileOrderBy, compileRunFilter, MAX_CLAUSES } from '@aft/db';

describe("MLflow's run filter grammar", () => {
  it('compiles metrics, params, tags and attributes joined with AND, with bound parameters', () => {
    const { where, params } = compileRunFilter(
      "metrics.`eval/accuracy` >= 0.5 and params.lr = '1e-4' AND tags.\"aft.method\" LIKE 'a%' and attributes.status IN ('FINISHED', 'KILLED') and start_time > 1700000000000",
    );
    expect(where).toHaveLength(5);
    expect(where[0]).toBe('(SELECT m.last_value FROM run_metric m WHERE m.run_id = r.id AND m.key = $1) >= $2');
    expect(where[1]).toBe('(r.config->>$3) = $4');
    expect(where[2]).toBe('(r.kv_tags->>$5) LIKE $6');
    expect(where[3]).toBe('(r.status::text = ANY($7::text[]))');
    expect(params).toEqual([
      'eval/accuracy',
      0.5,
      'lr',
      '1e-4',
      'aft.method',
      'a%',
      ['succeeded', 'canceled'],
      1700000000000,
    ]);
  });

  it('reads dotted bare keys and the empty filter', () => {
    expect(compileRunFilter("tags.mlflow.runName = 'x'").params).toEqual(['mlflow.runName', 'x']);
    expect(compileRunFilter('  ').where).toEqual([]);
  });

  it.each([
    ["metrics.loss < 1 OR params.lr = '1'", /no OR/],
    ["metrics.loss = 'high'", /metrics compare .* against a number/],
    ['params.lr > 1', /params compare with =, !=, LIKE, ILIKE/],
    ["attributes.status = 'DONE'", /a status is one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED/],
    ["attributes.color = 'red'", /expected an identifier|unknown attribute/],
    ["params.lr = 'unterminated", /unterminated quote/],
    ['loss < 1', /expected an identifier like metrics.<key>/],
    ["params.lr ~ '1'", /expected a comparator/],
  ])('refuses %s with a message that says what is accepted', (filter, message) => {
    expect(() => compileRunFilter(filter)).toThrow(message);
  });

  it('orders by metrics, params and attributes', () => {
    const params: unknown[] = [];
    expect(compileOrderBy(['metrics.acc DESC', 'attributes.start_time', 'params.lr asc'], params)).toEqual([
      '(SELECT m.last_value FROM run_metric m WHERE m.run_id = r.id AND m.key = $1) DESC NULLS LAST',
      '(extract(epoch FROM r.started_at) * 1000) ASC NULLS LAST',
      '(r.config->>$2) ASC NULLS LAST',
    ]);
    expect(params).toEqual(['acc', 'lr']);
  });

  it(`joins at most ${MAX_CLAUSES} clauses (each metric clause is a subquery Postgres must plan)`, () => {
    const clauses = (n: number) => Array.from({ length: n }, (_, i) => `metrics.m${i} > ${i}`).join(' AND ');
    expect(compileRunFilter(clauses(MAX_CLAUSES)).where).toHaveLength(MAX_CLAUSES);
    expect(() => compileRunFilter(clauses(MAX_CLAUSES + 1))).toThrow(`at most ${MAX_CLAUSES} clauses`);
  });

  it('reads an order_by with a run of spaces in linear time, as it reads the direction', () => {
    const params: unknown[] = [];
    expect(compileOrderBy([`  params.lr${' '.repeat(5)}DESC  `, 'params.lr\tasc', 'params.DESC'], params)).toEqual([
      '(r.config->>$1) DESC NULLS LAST',
      '(r.config->>$2) ASC NULLS LAST',
      '(r.config->>$3) ASC NULLS LAST',
    ]);
    // `^\s*(.+?)(?:\s+(ASC|DESC))?\s*$` took ~1 s on this; each character is now looked at a few times
    const t0 = performance.now();
    expect(() => compileOrderBy([`a${' '.repeat(20_000)}b`], [])).toThrow(/invalid order_by|expected/);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});
