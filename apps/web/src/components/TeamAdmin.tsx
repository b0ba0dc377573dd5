'use client';
import { useRouter } from 'next/navigation';
import { useState, type FormEvent, type ReactNode } from 'react';
import type { RouterInputs, RouterOutputs } from '@aft/api';
import { trpc } from '../lib/trpc';
import { fmtAgo } from '../lib/format';
import { useReady } from '../lib/use-ready';
import { ShownOnce } from './ui';

type Role = RouterInputs['teams']['setRole']['role'];
/** The roles the selects offer; what a select or form gives back is read against them. */
const ROLES = ['owner', 'member', 'viewer'] as const satisfies readonly Role[];
const roleOf = (v: unknown): Role | undefined => ROLES.find((r) => r === v);

/** The team's lists as their procedures return them (the page sends their dates as ISO strings, as JSON would). */
interface Props {
  me: { id: string; role: string };
  members: RouterOutputs['teams']['members'];
  invitations: RouterOutputs['invitations']['list'];
  keys: RouterOutputs['keys']['list'];
  audit: RouterOutputs['audit']['list']['items'];
}

function DangerButton({ onClick, children }: { onClick: () => void; children: ReactNode }) {
  return (
    <button type="button" className="danger" onClick={onClick}>
      {children}
    </button>
  );
}

/** Members and roles for everyone to see; invitations, API keys and the audit log for owners. */
export function TeamAdmin({ me, members, invitations, keys, audit }: Props) {
  const router = useRouter();
  const owner = me.role === 'owner';
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ label: string; value: string } | null>(null);
  const ready = useReady();

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      router.refresh();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const invite = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const email = String(f.get('email') ?? '').trim();
    const role = roleOf(f.get('role'));
    if (!role) return;
    void act(async () => {
      const inv = await trpc.invitations.create.mutate({ role, email: email || undefined });
      setSecret({
        label: 'Invitation link (shown once; anyone signed in who opens it joins the team)',
        value: `${window.location.origin}${inv.path}`,
      });
    });
  };
  const createKey = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const scopes = (['read', 'log', 'launch'] as const).filter((s) => f.get(`scope-${s}`));
    void act(async () => {
      const k = await trpc.keys.create.mutate({ name: String(f.get('name') ?? ''), scopes });
      setSecret({ label: `API key "${k.name}" (shown once: copy it now; set it as AFT_API_KEY)`, value: k.key });
    });
  };

  return (
    <div data-ready={ready || undefined} data-testid="team-admin">
      {error ? (
        <div className="error" role="alert">
          {error}
        </div>
      ) : null}
      {secret ? (
        <ShownOnce testId="secret" value={secret.value}>
          {secret.label}
        </ShownOnce>
      ) : null}

      <h2>Members</h2>
      <table className="data" data-testid="members">
        <thead>
          <tr>
            <th>Name</th>
            <th>Email</th>
            <th>Role</th>
            <th>Joined</th>
            {owner ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.userId}>
              <td>{m.name}</td>
              <td>{m.email}</td>
              <td>
                {owner ? (
                  <select
                    aria-label={`role of ${m.email}`}
                    value={m.role}
                    onChange={(e) => {
                      const role = roleOf(e.target.value);
                      if (role) void act(() => trpc.teams.setRole.mutate({ userId: m.userId, role }));
                    }}
                  >
                    <option value="owner">owner</option>
                    <option value="member">member</option>
                    <option value="viewer">viewer</option>
                  </select>
                ) : (
                  m.role
                )}
              </td>
              <td>{fmtAgo(m.joinedAt)}</td>
              {owner ? (
                <td>
                  <DangerButton onClick={() => act(() => trpc.teams.removeMember.mutate({ userId: m.userId }))}>
                    {m.userId === me.id ? 'Leave' : 'Remove'}
                  </DangerButton>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>

      {owner ? (
        <>
          <h2>Invite</h2>
          <form className="row" onSubmit={invite}>
            <label className="field">
              <span>Email (optional, for your records)</span>
              <input name="email" type="email" maxLength={320} />
            </label>
            <label className="field">
              <span>Role</span>
              <select name="role" defaultValue="member">
                <option value="viewer">viewer</option>
                <option value="member">member</option>
                <option value="owner">owner</option>
              </select>
            </label>
            <button type="submit" className="primary">
              Create invitation link
            </button>
          </form>
          {invitations.length ? (
            <table className="data" style={{ marginTop: 10 }}>
              <thead>
                <tr>
                  <th>Role</th>
                  <th>Email</th>
                  <th>Created</th>
                  <th>Expires</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {invitations.map((i) => (
                  <tr key={i.id}>
                    <td>{i.role}</td>
                    <td>{i.email ?? '—'}</td>
                    <td>{fmtAgo(i.createdAt)}</td>
                    <td>{new Date(i.expiresAt).toLocaleDateString()}</td>
                    <td>
                      <DangerButton onClick={() => act(() => trpc.invitations.revoke.mutate({ id: i.id }))}>
                        Revoke
                      </DangerButton>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}

          <h2>API keys</h2>
          <div className="sub">
            For the SDK (`AFT_API_KEY`), workers and MLflow clients (`MLFLOW_TRACKING_TOKEN`). Only a hash is stored.
          </div>
          <form className="row" onSubmit={createKey}>
            <label className="field">
              <span>Name</span>
              <input name="name" required maxLength={100} placeholder="cluster workers" />
            </label>
            {(['read', 'log', 'launch'] as const).map((s) => (
              <label key={s} className="check">
                <input type="checkbox" name={`scope-${s}`} defaultChecked /> {s}
              </label>
            ))}
            <button type="submit" className="primary">
              Create key
            </button>
          </form>
          <table className="data" style={{ marginTop: 10 }} data-testid="keys">
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Scopes</th>
                <th>Created</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id} className={k.revokedAt ? 'muted' : undefined}>
                  <td>{k.name}</td>
                  <td className="mono">aft_{k.prefix}_…</td>
                  <td>{k.scopes.join(', ')}</td>
                  <td>{fmtAgo(k.createdAt)}</td>
                  <td>{k.lastUsedAt ? fmtAgo(k.lastUsedAt) : 'never'}</td>
                  <td>
                    {k.revokedAt ? (
                      `revoked ${fmtAgo(k.revokedAt)}`
                    ) : (
                      <DangerButton onClick={() => act(() => trpc.keys.revoke.mutate({ id: k.id }))}>
                        Revoke
                      </DangerButton>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>

          <h2>Audit log</h2>
          <table className="data" data-testid="audit">
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>What</th>
                <th>Target</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {audit.map((a) => (
                <tr key={a.id}>
                  <td title={a.createdAt}>{fmtAgo(a.createdAt)}</td>
                  <td>{a.user ?? (a.key ? `key ${a.key}` : '—')}</td>
                  <td className="mono">{a.action}</td>
                  <td className="mono">{a.target ?? ''}</td>
                  <td className="mono muted">
                    {Object.keys(a.details).length ? JSON.stringify(a.details) : (a.ip ?? '')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
