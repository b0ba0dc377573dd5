'use client';
import { useEffect, useState } from 'react';

/**
 * True once the component has hydrated; rendered as `data-ready` so tests (and people on slow links) act on a
 * form only when its handlers are attached.
 */
export function useReady(): boolean {
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);
  return ready;
}
