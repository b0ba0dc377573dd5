import { api } from '../../server/api';
import { Crumbs } from '../../components/ui';
import { TeamAdmin } from '../../components/TeamAdmin';

export const dynamic = 'force-dynamic';

export default async function TeamPage() {
  const caller = await api();
  const me = await caller.teams.me();
  const members = await caller.teams.members();
  const owner = me.current?.role === 'owner';
  const [invitations, keys, audit] = owner
    ? await Promise.all([caller.invitations.list(), caller.keys.list(), caller.audit.list({ limit: 100 })])
    : [[], [], { items: [], nextCursor: null }];
  return (
    <>
      <Crumbs items={[{ label: 'Team' }]} />
      <h1>{me.current?.name ?? 'Team'}</h1>
      <div className="sub">
        You are {me.current?.role === 'owner' ? 'an owner' : `a ${me.current?.role}`} of this team. Viewers read;
        members also launch, log and annotate runs; owners also manage members, invitations and API keys.
      </div>
      <TeamAdmin
        me={{ id: me.user.id, role: me.current?.role ?? 'viewer' }}
        members={members.map((m) => ({ ...m, joinedAt: m.joinedAt.toISOString() }))}
        invitations={invitations.map((i) => ({
          ...i,
          createdAt: i.createdAt.toISOString(),
          expiresAt: i.expiresAt.toISOString(),
        }))}
        keys={keys.map((k) => ({
          ...k,
          createdAt: k.createdAt.toISOString(),
          lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
          revokedAt: k.revokedAt?.toISOString() ?? null,
        }))}
        audit={audit.items.map((a) => ({ ...a, createdAt: new Date(a.createdAt).toISOString() }))}
      />
    </>
  );
}
