'use client';
import { useState, type FormEvent } from 'react';
import { useReady } from '../lib/use-ready';

type Mode = 'sign-in' | 'sign-up';

/** Email and password sign-in and sign-up (better-auth's endpoints); on success, back to where the user was going. */
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
    try {
      const res = await fetch(`/api/auth/${mode}/email`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) {
        const j = (await res.json().catch(() => null)) as { message?: string } | null;
        setError(j?.message ?? `${mode === 'sign-up' ? 'sign-up' : 'sign-in'} failed (HTTP ${res.status})`);
        return;
      }
      window.location.assign(next);
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
