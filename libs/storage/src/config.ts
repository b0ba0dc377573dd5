/**
 * Choosing a store from settings: `AFT_ARTIFACT_URL` names it (`s3://bucket/prefix`, or `file:///path` for a shared
 * mount), and the usual AWS variables say how to reach S3 — AWS_ENDPOINT_URL (MinIO, R2, Ceph; path-style then,
 * unless AWS_S3_FORCE_PATH_STYLE=false), AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 * (unset: the SDK's own chain, e.g. an instance role). Apps spread `storageEnv` into their env schema, so that their
 * env.ts stays the one place that reads process.env.
 */
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { FsStore } from './fs-store';
import type { RetryPolicy } from './retry';
import { S3Store, type S3StoreOptions } from './s3-store';
import type { ArtifactStore } from './store';

const unsetIfBlank = <T extends z.ZodType>(s: T) => z.preprocess((v) => (v === '' ? undefined : v), s.optional());

const S3_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

export const storageEnv = {
  /** The shared artifact store: s3://bucket[/prefix] or file:///path. Unset: each machine's own directory. */
  AFT_ARTIFACT_URL: unsetIfBlank(
    z
      .string()
      .refine(
        (u) => S3_URL.test(u) || u.startsWith('file:///'),
        'AFT_ARTIFACT_URL is s3://bucket[/prefix] (a bucket name of 3–63 lowercase letters, digits, dots and dashes) or file:///absolute/path',
      ),
  ),
  AWS_ENDPOINT_URL: unsetIfBlank(z.string().url()),
  AWS_ENDPOINT_URL_S3: unsetIfBlank(z.string().url()),
  AWS_REGION: unsetIfBlank(z.string()),
  AWS_DEFAULT_REGION: unsetIfBlank(z.string()),
  AWS_ACCESS_KEY_ID: unsetIfBlank(z.string()),
  AWS_SECRET_ACCESS_KEY: unsetIfBlank(z.string()),
  AWS_SESSION_TOKEN: unsetIfBlank(z.string()),
  AWS_S3_FORCE_PATH_STYLE: unsetIfBlank(z.enum(['true', 'false', '1', '0'])),
  /** Multipart part size in MiB (5–512, default 8). */
  AFT_ARTIFACT_PART_MB: unsetIfBlank(z.coerce.number().int().min(5).max(512)),
};
export type StorageEnv = Partial<z.infer<z.ZodObject<typeof storageEnv>>>;

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = S3_URL.exec(url);
  if (!m) throw new Error(`not an s3:// URL: ${url}`);
  const prefix = (m[2] ?? '').split('/').filter(Boolean).join('/');
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

/** An S3 client as the store wants it: its own retries are the only ones, checksums of its own (sha256). */
export function s3Client(e: StorageEnv): S3Client {
  const endpoint = e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL;
  const pathStyle = e.AWS_S3_FORCE_PATH_STYLE;
  return new S3Client({
    region: e.AWS_REGION ?? e.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint && { endpoint }),
    forcePathStyle: pathStyle ? pathStyle === 'true' || pathStyle === '1' : Boolean(endpoint),
    ...(e.AWS_ACCESS_KEY_ID &&
      e.AWS_SECRET_ACCESS_KEY && {
        credentials: {
          accessKeyId: e.AWS_ACCESS_KEY_ID,
          secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
          ...(e.AWS_SESSION_TOKEN && { sessionToken: e.AWS_SESSION_TOKEN }),
        },
      }),
    // one layer of retries (withRetry, with the store's policy), not the SDK's under ours
    maxAttempts: 1,
    // CRC trailers and aws-chunked bodies are not spoken by every S3 server; the store records its own sha256
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000, throwOnRequestTimeout: true },
  });
}

/** The store a URL names. */
export function openArtifactStore(
  url: string,
  e: StorageEnv = {},
  o: Partial<Pick<S3StoreOptions, 'concurrency' | 'onRetry' | 'onProgress' | 'requestTimeoutMs'>> & {
    retry?: RetryPolicy;
  } = {},
): ArtifactStore {
  if (url.startsWith('file:///')) return new FsStore(fileURLToPath(url));
  const { bucket, prefix } = parseS3Url(url);
  return new S3Store({
    client: s3Client(e),
    bucket,
    prefix,
    ...(e.AFT_ARTIFACT_PART_MB && { partBytes: e.AFT_ARTIFACT_PART_MB * 1024 * 1024 }),
    ...o,
  });
}

/** The shared store the settings name, or null when AFT_ARTIFACT_URL is unset. */
export function artifactStoreFromEnv(e: StorageEnv): ArtifactStore | null {
  return e.AFT_ARTIFACT_URL ? openArtifactStore(e.AFT_ARTIFACT_URL, e) : null;
}
