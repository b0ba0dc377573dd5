'use client';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import type { RouterOutputs } from '@aft/api';
import { SAVED_VIEW_LIMITS, SAVED_VIEW_PARAMS, type SavedViewKind } from '@aft/contracts';
import { trpc } from '../lib/trpc';
import { useReady } from '../lib/use-ready';

type Listed = RouterOutputs['views']['list'];
type View = Listed['items'][number];

/** The page's query reduced to what a view of `kind` keeps (the table's cursor is not part of a view). */
export function viewQuery(kind: SavedViewKind, params: URLSearchParams): string {
  const keep = new URLSearchParams();
  for (const [k, v] of params) if (SAVED_VIEW_PARAMS[kind].includes(k)) keep.append(k, v);
  return keep.toString();
}

/** Two queries with the same parameters in another order are the same view. */
const canonical = (q: string) =>
  [...new URLSearchParams(q)]
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join('&');

/**
 * The Views menu of the runs table and the compare page: the project's saved views of this page (open one, copy its
 * link), "Save view as…" from the current URL, rename and delete. Self-contained: it reads the URL and asks the API
 * what the caller may do. On the compare page of a sweep or of picked runs, views belong to the project of the first
 * run (`runId`); with neither a project nor a run there is nothing to save and nothing is shown.
 */
export function SavedViews(props: { kind: SavedViewKind; projectId?: string | null; runId?: string | null }) {
  const { kind } = props;
  const params = useSearchParams();
  const ready = useReady();
  const [projectId, setProjectId] = useState(props.projectId ?? null);
  const [data, setData] = useState<Listed | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (props.projectId || !props.runId) {
      setProjectId(props.projectId ?? null);
      return;
    }
    trpc.runs.get
      .query({ id: props.runId })
      .then((r) => setProjectId(r.projectId))
      .catch((e: Error) => setError(e.message));
  }, [props.projectId, props.runId]);

  const load = useCallback(async () => {
    if (!projectId) return;
    try {
      setData(await trpc.views.list.query({ projectId, kind }));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [projectId, kind]);
  useEffect(() => void load(), [load]);

  // the menu closes on a click elsewhere and on Escape, as menus do
  useEffect(() => {
    if (!open) return;
    const away = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', away);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('mousedown', away);
      document.removeEventListener('keydown', esc);
    };
  }, [open]);

  const query = useMemo(() => viewQuery(kind, new URLSearchParams(params.toString())), [kind, params]);
  const current = data?.items.find((v) => canonical(v.query) === canonical(query)) ?? null;

  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      await load();
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (projectId && (await act(() => trpc.views.create.mutate({ projectId, kind, name, query })))) setName('');
  };
  const rename = async (e: FormEvent) => {
    e.preventDefault();
    const r = renaming;
    if (r && (await act(() => trpc.views.rename.mutate(r)))) setRenaming(null);
  };
  const remove = (v: View) => {
    if (window.confirm(`Delete the saved view "${v.name}" for everyone in the team?`)) {
      void act(() => trpc.views.delete.mutate({ id: v.id }));
    }
  };
  const copyLink = async (v: View) => {
    const url = `${window.location.origin}/views/${v.id}`;
    // the clipboard needs a secure context; elsewhere the link is shown to copy by hand
    const ok = await navigator.clipboard?.writeText(url).then(
      () => true,
      () => false,
    );
    setCopied(ok ? `Link copied: ${url}` : url);
  };

  if (!projectId) return null;
  return (
    <div className="views-menu" ref={box} data-testid="saved-views" data-ready={(ready && data) || undefined}>
      <button
        type="button"
        aria-haspopup="menu"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        data-testid="views-button"
        title={current ? `this is the saved view "${current.name}"` : 'saved views of this page'}
      >
        {current ? `View: ${current.name}` : 'Views'} ▾
      </button>
      {open ? (
        <div className="views-panel panel" role="menu" data-testid="views-panel">
          {data && data.items.length === 0 ? (
            <div className="muted">No saved views of this {kind === 'runs' ? 'table' : 'comparison'} yet.</div>
          ) : null}
          <ul>
            {data?.items.map((v) => (
              <li key={v.id} className={v.id === current?.id ? 'current' : undefined} data-testid="view-item">
                {renaming?.id === v.id ? (
                  <form onSubmit={(e) => void rename(e)} className="views-row">
                    <input
                      aria-label="new name"
                      value={renaming.name}
                      maxLength={SAVED_VIEW_LIMITS.nameChars}
                      onChange={(e) => setRenaming({ id: v.id, name: e.target.value })}
                      autoFocus
                      required
                    />
                    <button type="submit" className="primary" disabled={busy}>
                      Rename
                    </button>
                    <button type="button" onClick={() => setRenaming(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <div className="views-row">
                    <Link href={v.href} onClick={() => setOpen(false)} role="menuitem" className="name">
                      {v.id === current?.id ? '✓ ' : ''}
                      {v.name}
                    </Link>
                    <span className="muted by">{v.createdBy ?? 'a former member'}</span>
                    <button type="button" className="link" onClick={() => void copyLink(v)}>
                      Copy link
                    </button>
                    {v.canChange ? (
                      <>
                        <button type="button" className="link" onClick={() => setRenaming({ id: v.id, name: v.name })}>
                          Rename
                        </button>
                        <button type="button" className="link delete" onClick={() => remove(v)} disabled={busy}>
                          Delete
                        </button>
                      </>
                    ) : null}
                  </div>
                )}
              </li>
            ))}
          </ul>
          {copied ? (
            <div className="muted mono" data-testid="view-link">
              {copied}
            </div>
          ) : null}
          {data?.canSave ? (
            <form onSubmit={(e) => void save(e)} className="views-row views-save">
              <input
                aria-label="Save view as"
                placeholder="Save view as…"
                value={name}
                maxLength={SAVED_VIEW_LIMITS.nameChars}
                onChange={(e) => setName(e.target.value)}
                required
                data-testid="save-view-name"
              />
              <button type="submit" className="primary" disabled={busy} data-testid="save-view">
                Save
              </button>
            </form>
          ) : data ? (
            <div className="muted">Viewers open saved views; members save them.</div>
          ) : null}
          {error ? (
            <div className="field-error" role="alert" data-testid="views-error">
              {error}
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
