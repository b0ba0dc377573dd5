import { SignInForm } from '../../components/SignInForm';
import { safeNextPath } from '../../lib/safe-next';

export const dynamic = 'force-dynamic';

export default async function SignInPage(props: { searchParams: Promise<{ next?: string; mode?: string }> }) {
  const { next, mode } = await props.searchParams;
  return <SignInForm next={safeNextPath(next)} initialMode={mode === 'sign-up' ? 'sign-up' : 'sign-in'} />;
}
