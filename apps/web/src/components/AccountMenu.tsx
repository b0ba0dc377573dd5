'use client';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import type { RouterOutputs } from '@aft/api';
import { useReady } from '../lib/use-ready';

/** Who is signed in, their teams and the one being worked in (teams.me). */
type Me = RouterOutputs['teams']['me'];

/** The header's account corner: the team being worked in (switching sets the `aft_team` cookie), team settings, sign-out. */
export function AccountMenu({ me }: { me: Me }) {
  const router = useRouter();
  const ready = useReady();
  const switchTeam = (slug: string) => {
    document.cookie = `aft_team=${encodeURIComponent(slug)}; path=/; max-age=31536000; samesite=lax`;
    router.push('/');
    router.refresh();
  };
  const signOut = async () => {
    await fetch('/api/auth/sign-out', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }).catch(() => undefined);
    window.location.assign('/sign-in');
  };
  return (
    <div className="account" data-ready={ready || undefined}>
      <label>
        <span className="sr-only">Team</span>
        <select
          aria-label="team"
          value={me.current?.slug ?? ''}
          onChange={(e) => switchTeam(e.target.value)}
          data-testid="team-switch"
        >
          {me.teams.map((t) => (
            <option key={t.slug} value={t.slug}>
              {t.name} ({t.role})
            </option>
          ))}
        </select>
      </label>
      <Link href="/workers">Workers</Link>
      <Link href="/team">Team</Link>
      <span title={me.user.email}>{me.user.name || me.user.email}</span>
      <button type="button" onClick={signOut}>
        Sign out
      </button>
    </div>
  );
}
