import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';

/**
 * AES-256-GCM under versioned keys. A sealed value is `enc1:<kid>:<iv>:<tag>:<ciphertext>` (base64url parts),
 * so any key in ENCRYPTION_KEYS can open it and `rotate-keys` can find what the first key did not seal.
 * The associated data binds a ciphertext to where it is stored (e.g. the credential id), so a value copied
 * into another record does not decrypt.
 */
export interface SecretBox {
  seal(plaintext: string, associatedData: string): string;
  open(sealed: string, associatedData: string): string;
  isSealedWithCurrentKey(sealed: string): boolean;
}

const FORMAT = 'enc1';

export function createSecretBox(keys: EncryptionKey[]): SecretBox {
  const current = keys[0];
  if (!current) throw new Error('at least one encryption key is required');
  const byKid = new Map(keys.map((k) => [k.kid, k.key]));

  return {
    seal(plaintext, associatedData) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv);
      cipher.setAAD(Buffer.from(associatedData));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const parts = [iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url'));
      return [FORMAT, current.kid, ...parts].join(':');
    },
    open(sealed, associatedData) {
      const [format, kid, iv, tag, ciphertext] = sealed.split(':');
      if (format !== FORMAT || !kid || !iv || !tag || ciphertext === undefined) throw new Error('not a sealed value');
      const key = byKid.get(kid);
      if (!key) throw new Error(`no encryption key "${kid}" is configured`);
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(associatedData));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    },
    isSealedWithCurrentKey(sealed) {
      return sealed.startsWith(`${FORMAT}:${current.kid}:`);
    },
  };
}
