import { SignInForm } from '../../components/SignInForm';

export const dynamic = 'force-dynamic';

export default async function SignInPage(props: { searchParams: Promise<{ next?: string; mode?: string }> }) {
  const { next, mode } = await props.searchParams;
  // only paths of this site: an absolute URL in ?next= must not send a user elsewhere after signing in
  const safeNext = next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
  return <SignInForm next={safeNext} initialMode={mode === 'sign-up' ? 'sign-up' : 'sign-in'} />;
}
