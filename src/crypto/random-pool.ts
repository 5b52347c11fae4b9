import { randomBytes } from 'node:crypto';

// A call into OpenSSL per id or IV (≈ 2 µs each, more under load) showed in the API's profile, so random
// bytes are drawn from a pool refilled 4 KiB at a time, as Node does for randomUUID. Each byte is handed out
// once, and a refill allocates a new buffer rather than overwriting the old one: a view handed out keeps
// its bytes.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** `length` cryptographically random bytes, as a view the caller may keep but must not write to. */
export function pooledRandomBytes(length: number): Buffer {
  if (poolOffset + length > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, length));
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + length);
  poolOffset += length;
  return bytes;
}
