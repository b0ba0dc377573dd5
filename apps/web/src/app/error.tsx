'use client';
import { ErrorBox } from '../components/ui';

export default function Error({ error, reset }: { error: Error; reset: () => void }) {
  return (
    <ErrorBox title="Something went wrong">
      <p>{error.message}</p>
      <button onClick={reset}>Try again</button>
    </ErrorBox>
  );
}
