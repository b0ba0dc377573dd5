import { TRPCError } from '@trpc/server';
import Link from 'next/link';
import { api } from '../../../server/api';
import { ErrorBox } from '../../../components/ui';
import { AcceptInvitation } from '../../../components/AcceptInvitation';

export const dynamic = 'force-dynamic';

export default async function InvitePage(props: { params: Promise<{ token: string }> }) {
  const { token } = await props.params;
  const caller = await api();
  let inv;
  try {
    inv = await caller.invitations.preview({ token });
  } catch (e) {
    if (e instanceof TRPCError && (e.code === 'NOT_FOUND' || e.code === 'BAD_REQUEST')) {
      return (
        <ErrorBox title="This invitation cannot be used">
          {e.message}. <Link href="/">Your projects</Link>
        </ErrorBox>
      );
    }
    throw e;
  }
  return (
    <div className="auth-box panel">
      <h1>Join {inv.team.name}</h1>
      <p className="muted">
        You are invited as a <strong>{inv.role}</strong>.{' '}
        {inv.expired
          ? 'The invitation has expired: ask an owner of the team for a new link.'
          : `The link expires on ${inv.expiresAt.toLocaleDateString()}.`}
      </p>
      {inv.expired ? null : inv.forYou ? (
        <AcceptInvitation token={token} />
      ) : (
        <p className="field-error" role="alert">
          This invitation is for {inv.email}: sign out and sign in (or sign up) with that address to accept it.
        </p>
      )}
    </div>
  );
}
