import type { Metadata } from 'next';
import Link from 'next/link';
import type { ReactNode } from 'react';
import 'uplot/dist/uPlot.min.css';
import './globals.css';

export const metadata: Metadata = {
  title: 'AFT Lab',
  description: 'Experiment tracking for aligning language models for reasoning',
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <header className="top">
          <Link href="/" className="brand">
            AFT<span>Lab</span>
          </Link>
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}
