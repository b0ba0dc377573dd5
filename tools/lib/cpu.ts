/** Where a benchmark's CPU time went: its processes' and the database's, read from /proc (Linux). */
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** CPU seconds (user + sys) of a process and its waited-for children so far; 0 where /proc cannot tell. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of the Postgres backends connected to `c`'s database now (the app's pool keeps its connections). */
export async function postgresCpu(c: Pick<pg.Client, 'query'>): Promise<number> {
  const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  return r.rows.reduce((a, x) => a + cpuSeconds(x.pid), 0);
}
