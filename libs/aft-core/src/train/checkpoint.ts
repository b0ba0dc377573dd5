/**
 * Checkpoints: a directory with `checkpoint.json` (configs, tokenizer, step, RNG state, optimizer step, tensor
 * index, sha256 of the weights) and `tensors.bin` (model weights and AdamW moments, float32, little-endian).
 * Everything needed to resume exactly as an uninterrupted run would continue.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RngState } from '../rng';
import type { TokenizerSpec } from '../tokenizer';
import type { GPTConfig } from '../model/config';

export const CHECKPOINT_FORMAT = 'aft-checkpoint/1';
const META_FILE = 'checkpoint.json';
const TENSORS_FILE = 'tensors.bin';

/** The folder a run writing to `outDir` keeps its resumable checkpoint in. */
export const checkpointDirIn = (outDir: string): string => join(outDir, 'checkpoint');

/** Whether `dir` holds a complete checkpoint (its metadata is renamed into place last). */
export const hasCheckpoint = (dir: string): boolean => existsSync(join(dir, META_FILE));

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  step: number;
  model: GPTConfig;
  tokenizer: TokenizerSpec;
  /** The resolved run config (training, data, optimizer), saved beside the weights. */
  config: Record<string, unknown>;
  rng: RngState;
  optimizerStep: number;
  /** Free-form: dataset hash, backend, last evaluation. */
  extra: Record<string, unknown>;
}

interface TensorIndex {
  name: string;
  offset: number;
  length: number;
}

export interface CheckpointData {
  meta: CheckpointMeta;
  weights: Record<string, Float32Array>;
  m: Record<string, Float32Array> | null;
  v: Record<string, Float32Array> | null;
}

export interface SavedCheckpoint {
  dir: string;
  sha256: string;
  bytes: number;
}

export async function saveCheckpoint(dir: string, data: CheckpointData): Promise<SavedCheckpoint> {
  await mkdir(dir, { recursive: true });
  const groups: [string, Record<string, Float32Array> | null][] = [
    ['w', data.weights],
    ['m', data.m],
    ['v', data.v],
  ];
  const index: TensorIndex[] = [];
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [prefix, g] of groups) {
    if (!g) continue;
    for (const [name, arr] of Object.entries(g)) {
      index.push({ name: `${prefix}:${name}`, offset, length: arr.length });
      parts.push(arr);
      offset += arr.length;
    }
  }
  const all = new Float32Array(offset);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const buf = Buffer.from(all.buffer, all.byteOffset, all.byteLength);
  const sha256 = createHash('sha256').update(buf).digest('hex');
  // write then rename: a crash mid-write never leaves a torn checkpoint behind
  await writeFile(join(dir, `${TENSORS_FILE}.tmp`), buf);
  await writeFile(join(dir, `${META_FILE}.tmp`), JSON.stringify({ ...data.meta, tensors: index, sha256 }, null, 1));
  await rename(join(dir, `${TENSORS_FILE}.tmp`), join(dir, TENSORS_FILE));
  await rename(join(dir, `${META_FILE}.tmp`), join(dir, META_FILE));
  return { dir, sha256, bytes: buf.byteLength };
}

type StoredMeta = CheckpointMeta & { tensors: TensorIndex[]; sha256: string };

async function readMeta(dir: string): Promise<StoredMeta> {
  const raw = JSON.parse(await readFile(join(dir, META_FILE), 'utf8')) as StoredMeta;
  if (raw.format !== CHECKPOINT_FORMAT) throw new Error(`${dir}: not an aft checkpoint (format ${String(raw.format)})`);
  return raw;
}

/**
 * A checkpoint's record without reading its tensors — where it is, its step and metadata, the sha256 and size of its
 * tensors (what an artifact record holds) — or null when `dir` holds none.
 */
export async function describeCheckpoint(dir: string): Promise<(SavedCheckpoint & { meta: CheckpointMeta }) | null> {
  if (!hasCheckpoint(dir)) return null;
  const { tensors: _t, sha256, ...meta } = await readMeta(dir);
  const { size } = await stat(join(dir, TENSORS_FILE));
  return { dir, sha256, bytes: size, meta };
}

export async function loadCheckpoint(dir: string): Promise<CheckpointData> {
  const raw = await readMeta(dir);
  const bin = await readFile(join(dir, TENSORS_FILE));
  const sha = createHash('sha256').update(bin).digest('hex');
  if (sha !== raw.sha256) throw new Error(`${dir}: ${TENSORS_FILE} does not match its sha256 (corrupt checkpoint)`);
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const groups: Record<string, Record<string, Float32Array>> = { w: {}, m: {}, v: {} };
  for (const t of raw.tensors) {
    const [g, name] = [t.name.slice(0, 1), t.name.slice(2)];
    groups[g]![name] = all.slice(t.offset, t.offset + t.length);
  }
  const { tensors: _t, sha256: _s, ...meta } = raw;
  return {
    meta,
    weights: groups['w']!,
    m: Object.keys(groups['m']!).length ? groups['m']! : null,
    v: Object.keys(groups['v']!).length ? groups['v']! : null,
  };
}
