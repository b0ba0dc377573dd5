'use client';
import Link from 'next/link';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { RouterInputs, RouterOutputs } from '@aft/api';
import { ALERT_KIND_LABELS, ALERT_KINDS, ALERT_LIMITS, ALERT_OPS } from '@aft/contracts';
import { trpc } from '../lib/trpc';
import { fmtAgo } from '../lib/format';
import { useReady } from '../lib/use-ready';
import { ShownOnce } from './ui';

type Alerts = RouterOutputs['alerts']['list'];
type Rule = Alerts['rules'][number];
type Delivery = Alerts['deliveries'][number];
type Kind = RouterInputs['alerts']['create']['kind'];
type Op = NonNullable<RouterInputs['alerts']['create']['op']>;
const kindOf = (v: unknown): Kind | undefined => ALERT_KINDS.find((k) => k === v);
const opOf = (v: unknown): Op | undefined => ALERT_OPS.find((o) => o === v);

/** Deliveries are made by the worker after the page has loaded: the log is read again this often. */
const POLL_MS = 3_000;

const kindLabel = (k: string) => {
  const kind = kindOf(k);
  return kind ? ALERT_KIND_LABELS[kind] : k === 'test' ? 'test send' : k;
};

function condition(r: Rule): string {
  return r.kind === 'metric-threshold' ? `${r.metricKey} ${r.op} ${r.threshold}` : kindLabel(r.kind);
}

/** Host and the start of the path: a webhook's path is often its own secret (Slack's are), so it is not shown whole. */
function shortUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname.length > 12 ? `${u.pathname.slice(0, 12)}…` : u.pathname;
    return `${u.host}${path}`;
  } catch {
    return url;
  }
}

function state(d: Delivery): { cls: string; label: string } {
  if (d.deliveredAt) return { cls: 'succeeded', label: 'delivered' };
  if (d.lastError && d.attempts === 0) return { cls: 'canceled', label: 'not sent' };
  if (d.lastError) return { cls: 'failed', label: 'failing' };
  return { cls: 'queued', label: 'pending' };
}

/** A project's alert rules (members and owners edit them) and the log of their deliveries. */
export function AlertRules({ projectId, canEdit, initial }: { projectId: string; canEdit: boolean; initial: Alerts }) {
  const [data, setData] = useState(initial);
  const [kind, setKind] = useState<Kind>('degradation-detected');
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ rule: string; value: string } | null>(null);
  const ready = useReady();

  const refresh = useCallback(async () => {
    setData(await trpc.alerts.list.query({ projectId }));
  }, [projectId]);

  useEffect(() => {
    const timer = setInterval(() => {
      if (!document.hidden) void refresh().catch(() => undefined);
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      await refresh();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const create = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const text = (k: string) => String(f.get(k) ?? '').trim();
    const metric =
      kind === 'metric-threshold'
        ? { metricKey: text('metricKey'), op: opOf(f.get('op')), threshold: Number(text('threshold')) }
        : {};
    void act(async () => {
      const made = await trpc.alerts.create.mutate({
        projectId,
        name: text('name'),
        kind,
        url: text('url'),
        ...metric,
      });
      setSecret({ rule: made.rule.name, value: made.secret });
      form.reset();
    });
  };

  return (
    <div data-ready={ready || undefined} data-testid="alert-rules">
      {error ? (
        <div className="error" role="alert">
          {error}
        </div>
      ) : null}
      {secret ? (
        <ShownOnce testId="alert-secret" value={secret.value}>
          Signing secret of &ldquo;{secret.rule}&rdquo; (shown once: copy it now). Receivers check that X-AFT-Signature
          is <code>sha256=</code> the hex HMAC-SHA256 of <code>X-AFT-Timestamp + &quot;.&quot; + body</code> with it.
        </ShownOnce>
      ) : null}

      <h3>Rules</h3>
      {data.rules.length ? (
        <table className="data" data-testid="alert-rule-table">
          <thead>
            <tr>
              <th>Rule</th>
              <th>Fires when</th>
              <th>Webhook</th>
              <th>Enabled</th>
              {canEdit ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {data.rules.map((r) => (
              <tr key={r.id} data-testid="alert-rule">
                <td>{r.name}</td>
                <td>{condition(r)}</td>
                <td className="mono" title={canEdit ? r.url : undefined}>
                  {shortUrl(r.url)}
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`${r.name} enabled`}
                    checked={r.enabled}
                    disabled={!canEdit}
                    onChange={(e) => act(() => trpc.alerts.update.mutate({ id: r.id, enabled: e.target.checked }))}
                  />
                </td>
                {canEdit ? (
                  <td>
                    <div className="row">
                      <button type="button" onClick={() => act(() => trpc.alerts.testSend.mutate({ id: r.id }))}>
                        Send test
                      </button>
                      <button
                        type="button"
                        className="danger"
                        onClick={() => act(() => trpc.alerts.delete.mutate({ id: r.id }))}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="empty">No alert rules yet.</div>
      )}

      {canEdit ? (
        <>
          <h3>New rule</h3>
          <form className="row" onSubmit={create} data-testid="alert-form">
            <label className="field">
              <span>Name</span>
              <input name="name" required maxLength={ALERT_LIMITS.nameChars} placeholder="degradations to #alerts" />
            </label>
            <label className="field">
              <span>Fires when</span>
              <select name="kind" value={kind} onChange={(e) => setKind(kindOf(e.target.value) ?? kind)}>
                {ALERT_KINDS.map((k) => (
                  <option key={k} value={k}>
                    {ALERT_KIND_LABELS[k]}
                  </option>
                ))}
              </select>
            </label>
            {kind === 'metric-threshold' ? (
              <>
                <label className="field">
                  <span>Metric</span>
                  <input name="metricKey" required maxLength={200} placeholder="train/loss" />
                </label>
                <label className="field">
                  <span>Goes</span>
                  <select name="op" defaultValue="above">
                    {ALERT_OPS.map((o) => (
                      <option key={o} value={o}>
                        {o}
                      </option>
                    ))}
                  </select>
                </label>
                <label className="field">
                  <span>Threshold</span>
                  <input name="threshold" type="number" step="any" required size={8} />
                </label>
              </>
            ) : null}
            <label className="field" style={{ flex: 1, minWidth: 320 }}>
              <span>Webhook URL (https:// or http://)</span>
              <input
                name="url"
                type="url"
                required
                maxLength={ALERT_LIMITS.urlChars}
                placeholder="https://hooks.slack.com/services/…"
              />
            </label>
            <button type="submit" className="primary">
              Create rule
            </button>
          </form>
        </>
      ) : (
        <div className="sub">Members and owners create and change rules; viewers read them.</div>
      )}

      <h2>Deliveries</h2>
      {data.deliveries.length ? (
        <table className="data" data-testid="alert-deliveries">
          <thead>
            <tr>
              <th>Fired</th>
              <th>Rule</th>
              <th>Event</th>
              <th>Run</th>
              <th className="num">Attempts</th>
              <th className="num">Last status</th>
              <th>Delivered</th>
            </tr>
          </thead>
          <tbody>
            {data.deliveries.map((d) => {
              const s = state(d);
              return (
                <tr key={d.id} data-testid="alert-delivery" data-delivery-id={d.id}>
                  <td title={d.createdAt}>{fmtAgo(d.createdAt)}</td>
                  <td>{d.ruleName}</td>
                  <td>{kindLabel(d.kind)}</td>
                  <td>{d.runId ? <Link href={`/runs/${d.runId}`}>{d.runName ?? d.runId}</Link> : '—'}</td>
                  <td className="num">{d.attempts}</td>
                  <td className="num" data-testid="delivery-status" title={d.lastError ?? undefined}>
                    {d.lastStatus ?? '—'}
                  </td>
                  <td>
                    <span className={`badge ${s.cls}`}>{s.label}</span>{' '}
                    {d.deliveredAt ? <span className="muted">{fmtAgo(d.deliveredAt)}</span> : null}
                    {!d.deliveredAt && d.lastError ? <div className="muted">{d.lastError.slice(0, 160)}</div> : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : (
        <div className="empty">Nothing has fired yet. &ldquo;Send test&rdquo; posts a test alert through a rule.</div>
      )}
    </div>
  );
}
