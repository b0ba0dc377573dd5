import type { Metadata } from 'next';
import Link from 'next/link';
import type { ReactNode } from 'react';
import 'uplot/dist/uPlot.min.css';
import './globals.css';
import { AccountMenu } from '../components/AccountMenu';
import { viewer } from '../server/api';

export const metadata: Metadata = {
  title: 'AFT Lab',
  description: 'Experiment tracking for aligning language models for reasoning',
};

export const dynamic = 'force-dynamic';

export default async function RootLayout({ children }: { children: ReactNode }) {
  const me = await viewer();
  return (
    <html lang="en">
      <body>
        <header className="top">
          <Link href="/" className="brand">
            AFT<span>Lab</span>
          </Link>
          {me ? <AccountMenu me={me} /> : null}
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}
