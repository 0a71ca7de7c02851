// Owns every secret the service hands out or checks: manage and queue tokens, admissions, the
// admin token, and the sealing of a manage token inside an Idempotency-Key replay. Comparisons
// are constant-time.
// The sync crypto calls here hash a few dozen bytes (microseconds), so they stay on the loop;
// nothing slow (scrypt, bcrypt) runs on a request path.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_BYTES = 32;
/** Entropy for this many tokens is drawn at once: one call into the CSPRNG instead of one per
 * request (as crypto.randomUUID() caches its own). Bytes handed out are zeroed in the pool. */
const TOKENS_PER_DRAW = 128;
let entropy = Buffer.alloc(0);
let entropyOffset = 0;

/** 256 bits of randomness, URL-safe: the bearer secret of one registration. */
export function generateManageToken(): string {
  if (entropyOffset + TOKEN_BYTES > entropy.length) {
    entropy = randomBytes(TOKEN_BYTES * TOKENS_PER_DRAW);
    entropyOffset = 0;
  }
  const token = entropy.toString('base64url', entropyOffset, entropyOffset + TOKEN_BYTES);
  entropy.fill(0, entropyOffset, entropyOffset + TOKEN_BYTES);
  entropyOffset += TOKEN_BYTES;
  return token;
}

/**
 * The admission token of a queue place, derived from its queue token: only its hash is stored
 * (from the join on), so the database alone cannot produce it, and the place's holder gets it
 * from GET /queue/{id} once admitted. One-way: the admission does not reveal the queue token.
 */
export function admissionTokenFor(queueToken: string): string {
  return createHash('sha256').update('registrar admission\0').update(queueToken, 'utf8').digest('base64url');
}

/** 256 bits from the CSPRNG: the seed of a queue's random order. */
export function generateQueueSeed(): Buffer {
  return randomBytes(32);
}

export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Compares two secrets in constant time; hashing first makes the lengths equal. */
export function secretsMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(hashToken(presented), hashToken(expected));
}

/** What is stored for an Idempotency-Key: a hash that cannot be turned into the sealing key. */
export function hashIdempotencyKey(key: string): Buffer {
  return createHash('sha256').update('registrar idempotency-key\0').update(key, 'utf8').digest();
}

function sealingKey(idempotencyKey: string): Buffer {
  return createHmac('sha256', idempotencyKey).update('registrar manage-token seal').digest();
}

/** AES-256-GCM under a key only the holder of the Idempotency-Key can derive: iv | tag | data. */
export function sealToken(token: string, idempotencyKey: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(idempotencyKey), iv);
  const data = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), data]);
}

export function unsealToken(sealed: Buffer, idempotencyKey: string): string {
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(idempotencyKey), sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
}

/** A stable fingerprint of a request body, to tell a replay from a reused key. */
export function hashRequest(parts: readonly string[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part, 'utf8').update('\0');
  return hash.digest();
}
