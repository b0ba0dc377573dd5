'use client';
import { useState, type FormEvent } from 'react';
import { safeNextPath } from '../lib/safe-next';
import { useReady } from '../lib/use-ready';

type Mode = 'sign-in' | 'sign-up';

/**
 * Email and password sign-in and sign-up (better-auth's endpoints); on success, back to where the user was going.
 * Sign-up makes the account without a session (it answers alike for a taken email, so it does not reveal who has an
 * account); the form then signs in.
 */
export function SignInForm({ next, initialMode }: { next: string; initialMode: Mode }) {
  const [mode, setMode] = useState<Mode>(initialMode);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ready = useReady();

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body =
      mode === 'sign-up'
        ? {
            name: String(f.get('name') ?? ''),
            email: String(f.get('email') ?? ''),
            password: String(f.get('password') ?? ''),
          }
        : { email: String(f.get('email') ?? ''), password: String(f.get('password') ?? ''), rememberMe: true };
    setBusy(true);
    setError(null);
    const post = (path: string, b: unknown) =>
      fetch(`/api/auth/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
    const failed = async (res: Response, what: string) => {
      const j = (await res.json().catch(() => null)) as { message?: string } | null;
      setError(j?.message ?? `${what} failed (HTTP ${res.status})`);
    };
    try {
      if (mode === 'sign-up') {
        const up = await post('sign-up/email', body);
        if (!up.ok) return await failed(up, 'sign-up');
      }
      const res = await post('sign-in/email', { email: body.email, password: body.password, rememberMe: true });
      if (!res.ok) {
        if (mode === 'sign-up' && res.status === 401) {
          setError('could not sign in with that password: if the email already has an account, use its password');
          setMode('sign-in');
          return;
        }
        return await failed(res, 'sign-in');
      }
      window.location.assign(safeNextPath(next));
    } catch (err) {
      setError(`could not reach the server: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth-box panel" data-ready={ready || undefined}>
      <h1>{mode === 'sign-up' ? 'Create your account' : 'Sign in to AFT Lab'}</h1>
      <form onSubmit={submit} className="auth-form" data-testid="auth-form">
        {mode === 'sign-up' ? (
          <label className="field">
            <span>Name</span>
            <input name="name" autoComplete="name" required maxLength={100} />
          </label>
        ) : null}
        <label className="field">
          <span>Email</span>
          <input name="email" type="email" autoComplete="email" required maxLength={320} />
        </label>
        <label className="field">
          <span>Password{mode === 'sign-up' ? ' (10 characters or more)' : ''}</span>
          <input
            name="password"
            type="password"
            autoComplete={mode === 'sign-up' ? 'new-password' : 'current-password'}
            required
            minLength={mode === 'sign-up' ? 10 : 1}
            maxLength={256}
          />
        </label>
        {error ? (
          <div className="field-error" role="alert">
            {error}
          </div>
        ) : null}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? '…' : mode === 'sign-up' ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <div className="muted" style={{ marginTop: 12 }}>
        {mode === 'sign-up' ? 'Have an account? ' : 'New here? '}
        <button
          type="button"
          className="link"
          onClick={() => (setMode(mode === 'sign-up' ? 'sign-in' : 'sign-up'), setError(null))}
        >
          {mode === 'sign-up' ? 'Sign in' : 'Create an account'}
        </button>
      </div>
    </div>
  );
}
