'use client';
import { useState } from 'react';
import { trpc } from '../lib/trpc';
import { useReady } from '../lib/use-ready';

/** Deletes a run with everything it logged, after asking; recorded in the team's audit log. */
export function DeleteRun({ runId, name, projectId }: { runId: string; name: string; projectId: string }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ready = useReady();
  const remove = async () => {
    if (!window.confirm(`Delete run "${name}" with all its metrics, samples and events? This cannot be undone.`))
      return;
    setBusy(true);
    setError(null);
    try {
      await trpc.runs.delete.mutate({ id: runId });
      window.location.assign(`/projects/${projectId}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className="danger"
        disabled={busy || !ready}
        onClick={() => void remove()}
        data-testid="delete-run"
      >
        {busy ? 'Deleting…' : 'Delete run'}
      </button>
      {error ? <span className="field-error">{error}</span> : null}
    </>
  );
}
