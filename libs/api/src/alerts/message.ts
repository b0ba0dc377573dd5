/**
 * What an alert POST carries: a Slack-compatible body (`text` and `blocks`, which Slack, Mattermost and most chat
 * webhooks show) with the structured event under `aft`, and the headers that sign it. How a receiver verifies:
 * docs/architecture.md, "Alerts".
 */
import { createHmac } from 'node:crypto';

/** The event a firing reports, as stored with it (`alert_delivery.payload`). */
export interface AlertEvent {
  kind: string;
  rule: { id: string; name: string };
  project: { id: string; name: string };
  run: { id: string; name: string; status: string } | null;
  sweep: { id: string; name: string; status?: string; counts?: Record<string, number> } | null;
  step: number | null;
  /** What fired it: the degradation's details, the failure's error, the value against the threshold. */
  evidence: Record<string, unknown>;
  firedAt: string;
}

/** Slack's mrkdwn treats these three as markup: a run named `<!channel>` must not ping anyone. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const link = (url: string, label: string) => `<${url}|${esc(label)}>`;
const num = (v: unknown) => (typeof v === 'number' ? String(v) : typeof v === 'string' ? v : '?');

function headline(e: AlertEvent, urls: { run?: string; sweep?: string }): string {
  const run = e.run && urls.run ? `run ${link(urls.run, e.run.name)}` : 'a run';
  const where = `in project *${esc(e.project.name)}*`;
  const at = e.step === null ? '' : ` at step ${e.step}`;
  switch (e.kind) {
    case 'degradation-detected':
      return `:warning: ${run} ${where} degraded${at}`;
    case 'run-failed': {
      const error = typeof e.evidence['error'] === 'string' ? `: ${esc(e.evidence['error'].slice(0, 300))}` : '';
      return `:x: ${run} ${where} failed${error}`;
    }
    case 'sweep-finished': {
      const sweep = e.sweep && urls.sweep ? `sweep ${link(urls.sweep, e.sweep.name)}` : 'a sweep';
      const counts = Object.entries(e.sweep?.counts ?? {})
        .map(([k, n]) => `${n} ${k}`)
        .join(' · ');
      return `:checkered_flag: ${sweep} ${where} finished: ${e.sweep?.status ?? 'done'}${counts ? ` (${counts})` : ''}`;
    }
    case 'metric-threshold': {
      const ev = e.evidence;
      return `:chart_with_upwards_trend: ${run} ${where} logged \`${esc(num(ev['key']))}\` = ${esc(num(ev['value']))}${at}, ${esc(num(ev['op']))} the threshold ${esc(num(ev['threshold']))}`;
    }
    default:
      return `:bell: test alert from project *${esc(e.project.name)}*: this webhook receives its alerts`;
  }
}

/** The JSON body of one delivery; `baseUrl` is the dashboard's address, for the links. */
export function alertBody(deliveryId: string, e: AlertEvent, baseUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  const urls = {
    run: e.run ? `${base}/runs/${encodeURIComponent(e.run.id)}` : undefined,
    sweep: e.sweep ? `${base}/sweeps/${encodeURIComponent(e.sweep.id)}` : undefined,
    rules: `${base}/projects/${encodeURIComponent(e.project.id)}/settings`,
  };
  const text = headline(e, urls);
  return JSON.stringify({
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `AFT Lab alert rule ${link(urls.rules, e.rule.name)}` }],
      },
    ],
    aft: {
      version: 1,
      deliveryId,
      kind: e.kind,
      rule: e.rule,
      project: e.project,
      run: e.run && { ...e.run, url: urls.run },
      sweep: e.sweep && { ...e.sweep, url: urls.sweep },
      step: e.step,
      evidence: e.evidence,
      firedAt: e.firedAt,
    },
  });
}

/** `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>` with the rule's secret. */
export function alertSignature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The headers of one attempt: the signature over this attempt's timestamp, and the ids receivers de-duplicate on. */
export function alertHeaders(
  secret: string,
  body: string,
  d: { id: string; kind: string; attempt: number },
  now = Date.now(),
): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'x-aft-signature': alertSignature(secret, timestamp, body),
    'x-aft-timestamp': String(timestamp),
    'x-aft-delivery': d.id,
    'x-aft-event': d.kind,
    'x-aft-attempt': String(d.attempt),
  };
}
