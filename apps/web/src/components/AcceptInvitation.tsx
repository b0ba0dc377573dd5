'use client';
import { useState } from 'react';
import { trpc } from '../lib/trpc';
import { useReady } from '../lib/use-ready';

export function AcceptInvitation({ token }: { token: string }) {
  const [error, setError] = useState<string | null>(null);
  const ready = useReady();
  const accept = async () => {
    setError(null);
    try {
      const r = await trpc.invitations.accept.mutate({ token });
      document.cookie = `aft_team=${encodeURIComponent(r.team)}; path=/; max-age=31536000; samesite=lax`;
      window.location.assign('/');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      {error ? (
        <div className="field-error" role="alert">
          {error}
        </div>
      ) : null}
      <button type="button" className="primary" onClick={accept} data-testid="accept-invitation" disabled={!ready}>
        Accept and join
      </button>
    </>
  );
}
