import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';
import { pooledRandomBytes } from './random-pool.ts';

/**
 * AES-256-GCM under versioned keys. A sealed value is raw bytes, not text: Redis stores it as it is, and
 * base64 would add a third to every secret (see storage/sealed-secrets for what that costs in memory):
 *
 *   0x02 | kid length (1 byte) | kid | IV (12 bytes) | tag (16 bytes) | ciphertext
 *
 * The kid lets any key in ENCRYPTION_KEYS open a value and `rotate-keys` find what the first key did not
 * seal. The associated data binds a ciphertext to where it is stored (e.g. the credential's key), so a value
 * copied into another record does not decrypt.
 *
 * Values sealed by earlier versions are text, `enc1:<kid>:<iv>:<tag>:<ciphertext>` (base64url parts); they
 * still open until `rotate-keys` has re-sealed them. Their first byte, `e`, tells them apart.
 */
export interface SecretBox {
  seal(plaintext: string, associatedData: string): Buffer;
  open(sealed: Buffer, associatedData: string): string;
  isSealedWithCurrentKey(sealed: Buffer): boolean;
}

const FORMAT_BYTE = 0x02;
const LEGACY_FORMAT = 'enc1';
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

function header(kid: string): Buffer {
  const kidBytes = Buffer.from(kid, 'latin1');
  return Buffer.concat([Buffer.of(FORMAT_BYTE, kidBytes.length), kidBytes]);
}

function decrypt(key: Buffer, iv: Buffer, tag: Buffer, ciphertext: Buffer, associatedData: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(associatedData));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
}

export function createSecretBox(keys: EncryptionKey[]): SecretBox {
  const current = keys[0];
  if (!current) throw new Error('at least one encryption key is required');
  const byKid = new Map(keys.map((k) => [k.kid, k.key]));
  const currentHeader = header(current.kid);

  function keyOf(kid: string): Buffer {
    const key = byKid.get(kid);
    if (!key) throw new Error(`no encryption key "${kid}" is configured`);
    return key;
  }

  function openLegacy(sealed: string, associatedData: string): string {
    const [format, kid, iv, tag, ciphertext] = sealed.split(':');
    if (format !== LEGACY_FORMAT || !kid || !iv || !tag || ciphertext === undefined) throw new Error('not a sealed value');
    const [ivBytes, tagBytes, ciphertextBytes] = [iv, tag, ciphertext].map((part) => Buffer.from(part, 'base64url')) as [Buffer, Buffer, Buffer];
    return decrypt(keyOf(kid), ivBytes, tagBytes, ciphertextBytes, associatedData);
  }

  return {
    seal(plaintext, associatedData) {
      const iv = pooledRandomBytes(IV_LENGTH);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv);
      cipher.setAAD(Buffer.from(associatedData));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([currentHeader, iv, cipher.getAuthTag(), ciphertext]);
    },
    open(sealed, associatedData) {
      if (sealed[0] !== FORMAT_BYTE) return openLegacy(sealed.toString('latin1'), associatedData);
      const ivStart = 2 + (sealed[1] ?? 0);
      const tagStart = ivStart + IV_LENGTH;
      const ciphertextStart = tagStart + TAG_LENGTH;
      if (sealed.length < ciphertextStart) throw new Error('not a sealed value');
      return decrypt(
        keyOf(sealed.toString('latin1', 2, ivStart)),
        sealed.subarray(ivStart, tagStart),
        sealed.subarray(tagStart, ciphertextStart),
        sealed.subarray(ciphertextStart),
        associatedData,
      );
    },
    isSealedWithCurrentKey(sealed) {
      return sealed.subarray(0, currentHeader.length).equals(currentHeader);
    },
  };
}
