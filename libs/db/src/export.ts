/**
 * Bulk export of a project or a sweep as a tar archive (the HTTP route gzips it) and its re-import.
 *
 *   aft-export/project.json        the project, the scope and the format version
 *   aft-export/sweeps.jsonl        sweeps
 *   aft-export/runs.jsonl          runs, every field
 *   aft-export/runs.csv            runs with their summaries, one column per summary key (for a spreadsheet)
 *   aft-export/metrics/part-N.jsonl   {"run","key","step","value","time"} per point
 *   aft-export/samples/part-N.jsonl   samples
 *   aft-export/events/part-N.jsonl    events
 *   aft-export/artifacts.jsonl     artifact records (the files themselves stay where their URIs point)
 *   aft-export/manifest.json       counts, written last
 *
 * Everything is read in keyset pages and written as parts of bounded size, so memory stays flat however large the
 * project is (`npm run bench:export` measures it). Non-finite numbers are written as the strings "NaN", "Infinity".
 */
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Pool } from 'pg';
import { csvCell } from './csv';
import { readPoints, STEP_MAX, STEP_MIN } from './metric-chunks';
import { insertMetricPoints } from './metrics';
import { withTransaction } from './touch';
import { insertSamples, type StoredSample } from './run-writes';
import {
  artifactLine,
  decodeWire,
  eventLine,
  ImportError,
  jsonFile,
  jsonLines,
  manifestFile,
  metricLine,
  projectFile,
  runLine,
  sampleLine,
  sweepLine,
} from './import-rows';
import { readTar, TAR_END, tarEntry, type TarLimits } from './tar';

export { ImportError } from './import-rows';

export const EXPORT_FORMAT = 'aft-export/1';
const ROOT = 'aft-export';
const PAGE = 5_000;

export type ExportScope = { projectId: string } | { sweepId: string };

export class ExportNotFoundError extends Error {}

export interface ExportCounts {
  runs: number;
  metrics: number;
  samples: number;
  events: number;
  artifacts: number;
  sweeps: number;
}

const num = (v: number | null) => (v === null || Number.isFinite(v) ? v : String(v));
const ms = (d: Date | null) => (d ? d.getTime() : null);

/** Lines collected into tar entries of at most `partBytes` each. */
class Parts {
  private lines: string[] = [];
  private bytes = 0;
  private n = 0;
  count = 0;
  constructor(
    private readonly dir: string,
    private readonly partBytes: number,
  ) {}
  *push(obj: unknown): Generator<Buffer> {
    const line = `${JSON.stringify(obj)}\n`;
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line);
    this.count++;
    if (this.bytes >= this.partBytes) yield* this.flush();
  }
  *flush(): Generator<Buffer> {
    if (!this.lines.length) return;
    const name = `${ROOT}/${this.dir}/part-${String(++this.n).padStart(5, '0')}.jsonl`;
    yield* tarEntry(name, Buffer.from(this.lines.join('')));
    this.lines = [];
    this.bytes = 0;
  }
}

interface RunRow {
  id: string;
  num: string;
  sweep_id: string | null;
  parent_run_id: string | null;
  name: string;
  method: string;
  constraint: string;
  config: Record<string, unknown>;
  config_hash: string;
  seed: number | null;
  dataset_hash: string | null;
  backend: string | null;
  status: string;
  summary: Record<string, unknown>;
  tags: string[];
  notes: string;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  heartbeat_at: Date | null;
}

/** The archive as tar chunks. Throws ExportNotFoundError when the project or sweep is not the team's. */
export async function* generateExportTar(
  pool: Pool,
  teamId: string,
  scope: ExportScope,
  opts: { partBytes?: number } = {},
): AsyncGenerator<Buffer> {
  const partBytes = opts.partBytes ?? 1024 * 1024;
  const sweepId = 'sweepId' in scope ? scope.sweepId : null;
  const proj = await pool.query<{ id: string; name: string; description: string; created_at: Date }>(
    sweepId
      ? `SELECT p.id, p.name, p.description, p.created_at FROM sweep s JOIN project p ON p.id = s.project_id WHERE s.id = $1 AND p.team_id = $2`
      : `SELECT id, name, description, created_at FROM project WHERE id = $1 AND team_id = $2`,
    [sweepId ?? (scope as { projectId: string }).projectId, teamId],
  );
  const project = proj.rows[0];
  if (!project)
    throw new ExportNotFoundError(
      sweepId ? `sweep ${sweepId} not found` : `project ${(scope as { projectId: string }).projectId} not found`,
    );

  yield* tarEntry(
    `${ROOT}/project.json`,
    Buffer.from(
      JSON.stringify(
        {
          format: EXPORT_FORMAT,
          exportedAt: new Date().toISOString(),
          scope: sweepId ? { sweepId } : { projectId: project.id },
          project: { ...project, created_at: ms(project.created_at) },
        },
        null,
        2,
      ),
    ),
  );

  const sweeps = await pool.query<{ id: string; name: string; spec: unknown; status: string; created_at: Date }>(
    `SELECT id, name, spec, status, created_at FROM sweep WHERE project_id = $1 ${sweepId ? 'AND id = $2' : ''} ORDER BY created_at, id`,
    sweepId ? [project.id, sweepId] : [project.id],
  );
  yield* tarEntry(
    `${ROOT}/sweeps.jsonl`,
    Buffer.from(sweeps.rows.map((s) => `${JSON.stringify({ ...s, created_at: ms(s.created_at) })}\n`).join('')),
  );

  const runs = (
    await pool.query<RunRow>(
      `SELECT id, num::text AS num, sweep_id, parent_run_id, name, method, "constraint", config, config_hash, seed, dataset_hash,
              backend, status, summary, tags, notes, error, created_at, updated_at, started_at, finished_at, heartbeat_at
       FROM run WHERE project_id = $1 ${sweepId ? 'AND sweep_id = $2' : ''} ORDER BY created_at, id`,
      sweepId ? [project.id, sweepId] : [project.id],
    )
  ).rows;
  const runJson = (r: RunRow) => {
    const { num: _num, ...rest } = r;
    return {
      ...rest,
      created_at: ms(r.created_at),
      updated_at: ms(r.updated_at),
      started_at: ms(r.started_at),
      finished_at: ms(r.finished_at),
      heartbeat_at: ms(r.heartbeat_at),
    };
  };
  // runs.jsonl is one file: the runs of a project are few next to their points
  yield* tarEntry(`${ROOT}/runs.jsonl`, Buffer.from(runs.map((r) => `${JSON.stringify(runJson(r))}\n`).join('')));

  const summaryKeys = [...new Set(runs.flatMap((r) => Object.keys(r.summary ?? {})))].sort();
  const head = [
    'id',
    'name',
    'method',
    'constraint',
    'status',
    'seed',
    'sweep_id',
    'parent_run_id',
    'config_hash',
    'tags',
    'created_at',
    'finished_at',
    ...summaryKeys,
  ];
  const csv = [head.map(csvCell).join(',')];
  for (const r of runs) {
    csv.push(
      [
        r.id,
        r.name,
        r.method,
        r.constraint,
        r.status,
        r.seed,
        r.sweep_id,
        r.parent_run_id,
        r.config_hash,
        r.tags.join(' '),
        r.created_at.toISOString(),
        r.finished_at?.toISOString() ?? null,
        ...summaryKeys.map((k) => r.summary?.[k]),
      ]
        .map(csvCell)
        .join(','),
    );
  }
  yield* tarEntry(`${ROOT}/runs.csv`, Buffer.from(`${csv.join('\n')}\n`));

  const metrics = new Parts('metrics', partBytes);
  for (const r of runs) {
    // each key's points from chunks and tail, merged (one key in memory at a time)
    const keys = await pool.query<{ key_id: number; key: string }>(
      `SELECT k.id AS key_id, k.name AS key FROM metric_key k
       WHERE k.id IN (SELECT key_id FROM metric_point WHERE run_num = $1 UNION SELECT key_id FROM metric_chunk WHERE run_num = $1)
       ORDER BY k.id`,
      [r.num],
    );
    for (const k of keys.rows) {
      const p = await readPoints(pool, r.num, k.key_id, STEP_MIN, STEP_MAX);
      for (let i = 0; i < p.steps.length; i++)
        yield* metrics.push({ run: r.id, key: k.key, step: p.steps[i]!, value: num(p.values[i]!), time: p.times[i]! });
    }
  }
  yield* metrics.flush();

  const samples = new Parts('samples', partBytes);
  const events = new Parts('events', partBytes);
  const artifacts: string[] = [];
  for (const r of runs) {
    let after = '0';
    for (;;) {
      const page = await pool.query<Record<string, unknown> & { id: string }>(
        `SELECT id::text AS id, step, split, question_id, sample_idx, prompt, completion, extracted_answer, gold, correct, score, rank
         FROM sample WHERE run_id = $1 AND id > $2::bigint ORDER BY id LIMIT ${PAGE / 4}`,
        [r.id, after],
      );
      for (const { id: _id, ...s } of page.rows)
        yield* samples.push({ run: r.id, ...s, score: num(s['score'] as number | null) });
      if (page.rows.length < PAGE / 4) break;
      after = page.rows[page.rows.length - 1]!.id;
    }
    const ev = await pool.query<{ kind: string; step: number | null; details: unknown; created_at: Date }>(
      'SELECT kind, step, details, created_at FROM event WHERE run_id = $1 ORDER BY id',
      [r.id],
    );
    for (const e of ev.rows) yield* events.push({ run: r.id, ...e, created_at: ms(e.created_at) });
    const art = await pool.query<Record<string, unknown>>(
      `SELECT kind, name, uri, sha256, bytes::float8 AS bytes, step, metadata FROM artifact WHERE run_id = $1 ORDER BY created_at, id`,
      [r.id],
    );
    for (const a of art.rows) artifacts.push(`${JSON.stringify({ run: r.id, ...a })}\n`);
  }
  yield* samples.flush();
  yield* events.flush();
  yield* tarEntry(`${ROOT}/artifacts.jsonl`, Buffer.from(artifacts.join('')));

  const counts: ExportCounts = {
    runs: runs.length,
    metrics: metrics.count,
    samples: samples.count,
    events: events.count,
    artifacts: artifacts.length,
    sweeps: sweeps.rows.length,
  };
  yield* tarEntry(`${ROOT}/manifest.json`, Buffer.from(JSON.stringify({ format: EXPORT_FORMAT, counts }, null, 2)));
  yield TAR_END;
}

const gzipAsync = promisify(gzip);

/**
 * The archive gzipped, as a series of gzip members of about `memberBytes` of tar each (a multi-member gzip file is
 * one valid .gz: gunzip, tar and browsers read it whole). Each member is compressed before the next tar bytes are
 * read, so memory stays at one member however slow the reader — a streaming gzip between two web streams let
 * uncompressed input pile up in front of the compressor when the network was the slow side.
 */
export async function* generateExportTarGz(
  pool: Pool,
  teamId: string,
  scope: ExportScope,
  opts: { partBytes?: number; memberBytes?: number } = {},
): AsyncGenerator<Buffer> {
  const memberBytes = opts.memberBytes ?? 512 * 1024;
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of generateExportTar(pool, teamId, scope, opts)) {
    pending.push(chunk);
    size += chunk.length;
    if (size >= memberBytes) {
      yield await gzipAsync(Buffer.concat(pending, size));
      pending = [];
      size = 0;
    }
  }
  if (size) yield await gzipAsync(Buffer.concat(pending, size));
}

const date = (v: number | null | undefined) => (v === null || v === undefined ? null : new Date(v));

/** Limits on an archive being imported: what reading it may cost, whatever the archive claims. */
export interface ImportLimits extends TarLimits {
  /** Longest line of a JSON-lines file. */
  maxLineBytes?: number;
}

/** An archive's files, by their path under its top folder; the parts are numbered. */
const ARCHIVE_FILE =
  /^[^/]+\/(project\.json|sweeps\.jsonl|runs\.jsonl|runs\.csv|artifacts\.jsonl|manifest\.json|(?:metrics|samples|events)\/part-\d{1,9}\.jsonl)$/;

/**
 * Imports an archive into a new project of `teamId` (named as exported, or `projectName`; a taken name gets a
 * suffix). Runs, sweeps and lineage get new ids. Every line is checked before it is written, reading is bounded by
 * `limits` (entry sizes, bytes and entries in all, line lengths), and on any error — ImportError (a TarError) for
 * a refused archive — everything imported so far is removed again.
 */
export async function importArchive(
  pool: Pool,
  chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  opts: { teamId: string; projectName?: string; limits?: ImportLimits },
): Promise<{ projectId: string; counts: ExportCounts; manifest: ExportCounts | null }> {
  const counts: ExportCounts = { runs: 0, metrics: 0, samples: 0, events: 0, artifacts: 0, sweeps: 0 };
  const maxLine = opts.limits?.maxLineBytes ?? 8 * 1024 * 1024;
  let manifest: ExportCounts | null = null;
  let projectId: string | null = null;
  const runIds = new Map<string, string>();
  const sweepIds = new Map<string, string>();
  const parents: [string, string][] = [];
  const seen = new Set<string>();
  const newId = (p: string) => `${p}${randomBytes(12).toString('hex')}`;
  const runOf = (old: string) => {
    const id = runIds.get(old);
    if (!id) throw new ImportError(`the archive refers to run ${old}, which is not in its runs.jsonl`);
    return id;
  };
  const keep = (name: string) => {
    const m = ARCHIVE_FILE.exec(name);
    if (!m) throw new ImportError(`unexpected file ${name} in the archive: this is not an AFT Lab export`);
    // one of each, except the numbered parts: a second runs.jsonl would import its runs again
    if (seen.has(m[1]!)) throw new ImportError(`${name} is in the archive twice`);
    seen.add(m[1]!);
    // runs.csv is for people; everything in it is in runs.jsonl, so it is skipped unread
    return m[1] !== 'runs.csv';
  };
  try {
    for await (const { name, content } of readTar(chunks, { ...opts.limits, keep })) {
      const file = name.replace(/^[^/]+\//, '');
      if (file === 'project.json') {
        const meta = jsonFile(projectFile, content, name);
        if (meta.format !== EXPORT_FORMAT)
          throw new ImportError(`unknown archive format ${String(meta.format)}; this server reads ${EXPORT_FORMAT}`);
        const base = opts.projectName ?? meta.project.name;
        const taken = await pool.query('SELECT 1 FROM project WHERE team_id = $1 AND name = $2', [opts.teamId, base]);
        const pname = taken.rowCount
          ? `${base} (imported ${new Date().toISOString().slice(0, 16).replace('T', ' ')})`
          : base;
        projectId = newId('p');
        await pool.query('INSERT INTO project (id, team_id, name, description) VALUES ($1, $2, $3, $4)', [
          projectId,
          opts.teamId,
          pname,
          meta.project.description ?? '',
        ]);
      } else if (!projectId) {
        throw new ImportError('not an AFT Lab export: project.json must come first');
      } else if (file === 'sweeps.jsonl') {
        for (const s of jsonLines(sweepLine, content, name, maxLine)) {
          const id = newId('s');
          sweepIds.set(s.id, id);
          await pool.query(
            'INSERT INTO sweep (id, project_id, name, spec, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
            [id, projectId, s.name, JSON.stringify(s.spec ?? {}), s.status, date(s.created_at) ?? new Date()],
          );
          counts.sweeps++;
        }
      } else if (file === 'runs.jsonl') {
        await withTransaction(pool, async (c) => {
          for (const r of jsonLines(runLine, content, name, maxLine)) {
            const id = newId('r');
            runIds.set(r.id, id);
            if (r.parent_run_id) parents.push([id, r.parent_run_id]);
            await c.query(
              `INSERT INTO run (id, project_id, sweep_id, name, method, "constraint", config, config_hash, seed, dataset_hash, backend,
                                status, summary, tags, notes, error, created_at, updated_at, started_at, finished_at, heartbeat_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
              [
                id,
                projectId,
                r.sweep_id ? (sweepIds.get(r.sweep_id) ?? null) : null,
                r.name,
                r.method,
                r.constraint,
                JSON.stringify(r.config ?? {}),
                r.config_hash ?? '',
                r.seed ?? null,
                r.dataset_hash ?? null,
                r.backend ?? null,
                r.status,
                JSON.stringify(r.summary ?? {}),
                r.tags ?? [],
                r.notes ?? '',
                r.error ?? null,
                date(r.created_at) ?? new Date(),
                date(r.updated_at) ?? new Date(),
                date(r.started_at),
                date(r.finished_at),
                date(r.heartbeat_at),
              ],
            );
            counts.runs++;
          }
          for (const [child, oldParent] of parents) {
            await c.query('UPDATE run SET parent_run_id = $2 WHERE id = $1', [child, runIds.get(oldParent) ?? null]);
          }
        });
      } else if (file.startsWith('metrics/')) {
        const byRun = new Map<
          string,
          {
            keys: string[];
            index: Map<string, number>;
            key: number[];
            step: number[];
            value: number[];
            time: (number | null)[];
          }
        >();
        for (const p of jsonLines(metricLine, content, name, maxLine)) {
          const run = runOf(p.run);
          let b = byRun.get(run);
          if (!b) byRun.set(run, (b = { keys: [], index: new Map(), key: [], step: [], value: [], time: [] }));
          let k = b.index.get(p.key);
          if (k === undefined) {
            b.index.set(p.key, (k = b.keys.length));
            b.keys.push(p.key);
          }
          b.key.push(k);
          b.step.push(p.step);
          b.value.push(decodeWire(p.value));
          b.time.push(p.time ?? null);
        }
        for (const [run, b] of byRun) {
          for (let i = 0; i < b.key.length; i += 10_000) {
            const r = await insertMetricPoints(pool, run, {
              keys: b.keys,
              key: b.key.slice(i, i + 10_000),
              step: b.step.slice(i, i + 10_000),
              value: b.value.slice(i, i + 10_000),
              time: b.time.slice(i, i + 10_000),
            });
            counts.metrics += r.inserted;
          }
        }
      } else if (file.startsWith('samples/')) {
        const byRun = new Map<string, StoredSample[]>();
        for (const s of jsonLines(sampleLine, content, name, maxLine)) {
          const run = runOf(s.run);
          const row: StoredSample = {
            step: s.step,
            split: s.split,
            questionId: s.question_id,
            sampleIdx: s.sample_idx,
            prompt: s.prompt,
            completion: s.completion,
            extractedAnswer: s.extracted_answer ?? null,
            gold: s.gold ?? null,
            correct: s.correct ?? null,
            score: s.score === null || s.score === undefined ? null : decodeWire(s.score),
            rank: s.rank ?? null,
          };
          (byRun.get(run) ?? byRun.set(run, []).get(run)!).push(row);
        }
        for (const [run, rows] of byRun) {
          for (let i = 0; i < rows.length; i += 2000)
            counts.samples += (await insertSamples(pool, run, opts.teamId, rows.slice(i, i + 2000))).inserted;
        }
      } else if (file.startsWith('events/')) {
        for (const e of jsonLines(eventLine, content, name, maxLine)) {
          await pool.query('INSERT INTO event (run_id, kind, step, details, created_at) VALUES ($1, $2, $3, $4, $5)', [
            runOf(e.run),
            e.kind,
            e.step ?? null,
            JSON.stringify(e.details ?? {}),
            date(e.created_at) ?? new Date(),
          ]);
          counts.events++;
        }
      } else if (file === 'artifacts.jsonl') {
        for (const a of jsonLines(artifactLine, content, name, maxLine)) {
          await pool.query(
            `INSERT INTO artifact (id, run_id, kind, name, uri, sha256, bytes, step, metadata) VALUES ($1, $2, $3::"ArtifactKind", $4, $5, $6, $7, $8, $9)`,
            [
              newId('a'),
              runOf(a.run),
              a.kind,
              a.name,
              a.uri,
              a.sha256 ?? null,
              a.bytes ?? null,
              a.step ?? null,
              JSON.stringify(a.metadata ?? {}),
            ],
          );
          counts.artifacts++;
        }
      } else if (file === 'manifest.json') {
        manifest = jsonFile(manifestFile, content, name).counts;
      }
    }
    if (!projectId) throw new ImportError('not an AFT Lab export: the archive holds no project.json');
    return { projectId, counts, manifest };
  } catch (e) {
    if (projectId) {
      // leave nothing half-imported, in one transaction: the runs locked first, so a background fold of their
      // points (which takes the run's lock) cannot write a chunk after the chunks are deleted
      const id = projectId;
      await withTransaction(pool, async (c) => {
        await c.query('SELECT 1 FROM run WHERE project_id = $1 FOR UPDATE', [id]);
        for (const table of ['metric_point', 'metric_rollup', 'metric_chunk'])
          await c.query(`DELETE FROM ${table} WHERE run_num IN (SELECT num FROM run WHERE project_id = $1)`, [id]);
        await c.query('DELETE FROM project WHERE id = $1', [id]);
      });
    }
    throw e;
  }
}
