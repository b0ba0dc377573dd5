import Link from 'next/link';
import { ErrorBox } from '../components/ui';

export default function NotFound() {
  return (
    <ErrorBox title="Not found">
      That page does not exist. <Link href="/">Back to projects</Link>
    </ErrorBox>
  );
}
