/**
 * Base64 for the binary columns (packed series, packed metric batches). Node's Buffer where there is one (the
 * server, the SDK: native, about a gigabyte a second), atob/btoa in a browser.
 */
interface NodeBuffer {
  from(s: string, encoding: 'base64'): Uint8Array;
  from(b: ArrayBufferLike, offset: number, length: number): { toString(encoding: 'base64'): string };
}
const NodeBuffer = (globalThis as { Buffer?: NodeBuffer }).Buffer;

/** Base64 text's bytes. The caller checks the text (isCanonicalBase64): characters outside the alphabet are skipped. */
export function base64Bytes(b64: string): Uint8Array {
  if (NodeBuffer) return NodeBuffer.from(b64, 'base64');
  const bin = atob(b64);
  const u8 = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
  return u8;
}

export function bytesBase64(u8: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64');
  let bin = '';
  for (let i = 0; i < u8.length; i += 0x8000) bin += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Base64's alphabet with at most two `=` at the end (anchored, one class and a bounded tail: linear). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// the last character before padding holds bits past the data, which must be zero: a multiple of 16 before `==`,
// of 4 before `=`
const BEFORE_TWO_PADS = 'AQgw';
const BEFORE_ONE_PAD = 'AEIMQUYcgkosw048';

/**
 * Whether `b64` is the one base64 spelling of its bytes: the standard alphabet, padded, with zero bits past the
 * data (Buffer skips characters outside the alphabet and ignores those bits, so `AAF=` would read as `AAE=`).
 */
export function isCanonicalBase64(b64: string): boolean {
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) return false;
  if (b64.endsWith('==')) return BEFORE_TWO_PADS.includes(b64[b64.length - 3]!);
  if (b64.endsWith('=')) return BEFORE_ONE_PAD.includes(b64[b64.length - 2]!);
  return true;
}

/** The length base64 of `bytes` bytes has, padded. */
export const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3);
