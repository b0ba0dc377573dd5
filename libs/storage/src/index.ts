/** The artifact store (docs/architecture.md, "The artifact store"): one interface, a filesystem and an S3 backend. */
export * from './store';
export { DEFAULT_RETRY, isTransient, StoreTimeoutError, withRetry, type RetryPolicy } from './retry';
export { FsStore } from './fs-store';
export { S3Store, type S3StoreOptions } from './s3-store';
export type { Traffic } from './s3-request';
export { artifactStoreFromEnv, openArtifactStore, parseS3Url, s3Client, storageEnv, type StorageEnv } from './config';
export { downloadFile, fileSha256, getTree, MANIFEST, putTree, readManifest, type TreeManifest } from './tree';
