import Link from 'next/link';
import type { ReactNode } from 'react';

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge ${status}`}>{status}</span>;
}

export function Crumbs({ items }: { items: { href?: string; label: string }[] }) {
  return (
    <nav className="crumbs" aria-label="breadcrumbs" style={{ marginBottom: 12 }}>
      <Link href="/">Projects</Link>
      {items.map((it, i) => (
        <span key={i}>
          {' / '}
          {it.href ? <Link href={it.href}>{it.label}</Link> : <span>{it.label}</span>}
        </span>
      ))}
    </nav>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function ErrorBox({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="error" role="alert">
      <strong>{title}</strong>
      {children ? <div style={{ marginTop: 6 }}>{children}</div> : null}
    </div>
  );
}

/** What a page shows for an id that does not exist. */
export function Missing({ what }: { what: string }) {
  return (
    <ErrorBox title={`${what} does not exist`}>
      It may have been deleted, or the link is wrong. <Link href="/">All projects</Link>
    </ErrorBox>
  );
}

/** A secret the server shows once (an API key, a webhook's signing secret), with what to do with it. */
export function ShownOnce({ testId, value, children }: { testId: string; value: string; children: ReactNode }) {
  return (
    <div className="panel" data-testid={testId}>
      <div className="muted">{children}</div>
      <div className="secret">{value}</div>
    </div>
  );
}
