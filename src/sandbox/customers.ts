/**
 * The made-up customer behind every sandbox username. Everything is derived from the username alone, so
 * the same username shows the same phone number, authenticator secret and accounts on every run and on
 * every site instance, with nothing to store.
 */
import { createHash } from 'node:crypto';
import { ScureBase32Plugin } from 'otplib';

function digest(purpose: string, username: string): Buffer {
  return createHash('sha256').update(`plugboard-sandbox-${purpose}:${username}`).digest();
}

/**
 * The authenticator-app secret of a sandbox username, as an authenticator would be given it: the Base32
 * encoding (RFC 4648, no padding) of SHA-1("plugboard-sandbox:" + username), i.e. 20 bytes, 32 characters.
 * Codes are standard TOTP: SHA-1, 6 digits, 30-second steps.
 */
export function sandboxTotpSecret(username: string): string {
  const secret = createHash('sha1').update(`plugboard-sandbox:${username}`).digest();
  return new ScureBase32Plugin().encode(secret);
}

export function maskedPhone(username: string): string {
  const lastFour = String(digest('phone', username).readUInt16BE(0) % 10_000).padStart(4, '0');
  return `***-***-${lastFour}`;
}

export function maskedEmail(username: string): string {
  const initial = /[a-z0-9]/i.exec(username)?.[0]?.toLowerCase() ?? 'x';
  return `${initial}***@example.com`;
}

export interface SandboxAccount {
  accountId: string;
  accountNumber: string;
  nickname: string;
  serviceAddress: string;
  commodity: 'electricity' | 'gas';
}

/** Two accounts, electricity and gas, at one service address. */
export function accountsOf(username: string): SandboxAccount[] {
  const bytes = digest('accounts', username);
  const houseNumber = 1 + (bytes.readUInt16BE(0) % 999);
  const serviceAddress = `${houseNumber} Sandbox Lane, Springfield`;
  const accountNumber = (offset: number) => String(bytes.readUIntBE(offset, 5) % 10_000_000_000).padStart(10, '0');
  const accountId = (offset: number) => `sbx-${bytes.subarray(offset, offset + 6).toString('hex')}`;
  return [
    {
      accountId: accountId(8),
      accountNumber: accountNumber(2),
      nickname: 'Home electricity',
      serviceAddress,
      commodity: 'electricity',
    },
    {
      accountId: accountId(14),
      accountNumber: accountNumber(20),
      nickname: 'Home gas',
      serviceAddress,
      commodity: 'gas',
    },
  ];
}
