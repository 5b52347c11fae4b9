import { readFileSync } from 'node:fs';
import * as OTPAuth from 'otpauth';
import { generate } from 'otplib';
import t from 'tap';
import {
  generateTotpSecret,
  isWellFormedCode,
  otpauthUri,
  totpQrCodeSvg,
  verifyTotp,
} from '../../src/two-factor/totp.ts';

type HashName = 'sha1' | 'sha256' | 'sha512';
const vectors = JSON.parse(readFileSync('/work/shared/test-vectors.json', 'utf8')) as {
  rfc6238: { secretsAscii: Record<HashName, string>; vectors: Array<{ time: number } & Record<HashName, string>> };
  rfc4226: { codes: string[] };
};

const rfcSha1Seed = vectors.rfc6238.secretsAscii.sha1;
const rfcSha1SecretBase32 = OTPAuth.Secret.fromLatin1(rfcSha1Seed).base32;
const atSeconds = (seconds: number) => new Date(seconds * 1000);

// A fixed secret and instant keep the window tests deterministic (no chance of neighbouring codes colliding).
const fixedSecret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const fixedNow = new Date('2026-03-01T12:00:10Z');
const fixedStep = Math.floor(fixedNow.getTime() / 1000 / 30);
function independentCodeAt(secret: string, instant: Date): string {
  return OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: instant.getTime() });
}
const stepsFromFixedNow = (steps: number) => new Date(fixedNow.getTime() + steps * 30_000);

t.test('RFC 6238 Appendix B: the library computes every vector (8 digits, all three hashes)', async (t) => {
  for (const hash of ['sha1', 'sha256', 'sha512'] as const) {
    const seed = new TextEncoder().encode(vectors.rfc6238.secretsAscii[hash]);
    for (const vector of vectors.rfc6238.vectors) {
      const code = await generate({ secret: seed, algorithm: hash, digits: 8, epoch: vector.time });
      t.equal(code, vector[hash], `${hash} at T=${vector.time}`);
    }
  }
});

t.test('RFC 6238 Appendix B: verifyTotp accepts the 6-digit truncation of each SHA-1 vector at its time', async (t) => {
  for (const vector of vectors.rfc6238.vectors) {
    const sixDigits = vector.sha1.slice(-6);
    const result = await verifyTotp({ secret: rfcSha1SecretBase32, code: sixDigits, now: atSeconds(vector.time) });
    t.same(result, { ok: true, step: Math.floor(vector.time / 30) }, `T=${vector.time}`);
  }
});

t.test('RFC 4226 Appendix D: TOTP step n is HOTP counter n', async (t) => {
  const seed = new TextEncoder().encode(rfcSha1Seed);
  for (const [counter, expected] of vectors.rfc4226.codes.entries()) {
    t.equal(await generate({ strategy: 'hotp', secret: seed, counter }), expected, `HOTP counter ${counter}`);
    const result = await verifyTotp({ secret: rfcSha1SecretBase32, code: expected, now: atSeconds(counter * 30 + 7) });
    t.same(result, { ok: true, step: counter }, `verifyTotp at step ${counter}`);
  }
});

t.test('otpauth URI', async (t) => {
  const secret = generateTotpSecret();
  const uri = otpauthUri({ secret, email: 'ops:lead@example.com' });
  t.match(uri, /^otpauth:\/\/totp\/Plugboard:opslead%40example\.com\?/);

  const parsed = OTPAuth.URI.parse(uri);
  if (!(parsed instanceof OTPAuth.TOTP)) throw new Error('expected a TOTP URI');
  t.equal(parsed.issuer, 'Plugboard');
  t.equal(parsed.label, 'opslead@example.com', 'the colon is stripped so it cannot split issuer from account');
  t.equal(parsed.algorithm, 'SHA1');
  t.equal(parsed.digits, 6);
  t.equal(parsed.period, 30);
  t.equal(parsed.secret.base32, secret);

  const now = new Date();
  const result = await verifyTotp({ secret, code: parsed.generate({ timestamp: now.getTime() }), now });
  t.same(result, { ok: true, step: Math.floor(now.getTime() / 30_000) }, 'a code from the parsed URI is accepted');
});

t.test('generateTotpSecret returns distinct 160-bit Base32 secrets', async (t) => {
  const first = generateTotpSecret();
  t.match(first, /^[A-Z2-7]{32}$/);
  t.equal(OTPAuth.Secret.fromBase32(first).bytes.length, 20);
  t.not(generateTotpSecret(), first);
});

t.test('one step of drift either way is accepted, two are not', async (t) => {
  for (const steps of [-1, 0, 1]) {
    const code = independentCodeAt(fixedSecret, stepsFromFixedNow(steps));
    t.same(await verifyTotp({ secret: fixedSecret, code, now: fixedNow }), { ok: true, step: fixedStep + steps });
  }
  for (const steps of [-2, 2]) {
    const code = independentCodeAt(fixedSecret, stepsFromFixedNow(steps));
    t.same(await verifyTotp({ secret: fixedSecret, code, now: fixedNow }), { ok: false }, `${steps} steps`);
  }
});

t.test('a code from an accepted step, or any earlier one, is refused', async (t) => {
  const current = independentCodeAt(fixedSecret, fixedNow);
  const first = await verifyTotp({ secret: fixedSecret, code: current, now: fixedNow });
  t.same(first, { ok: true, step: fixedStep });

  t.same(
    await verifyTotp({ secret: fixedSecret, code: current, now: fixedNow, lastAcceptedStep: fixedStep }),
    { ok: false },
    'the same code again',
  );
  const previous = independentCodeAt(fixedSecret, stepsFromFixedNow(-1));
  t.same(
    await verifyTotp({ secret: fixedSecret, code: previous, now: fixedNow, lastAcceptedStep: fixedStep }),
    { ok: false },
    'an older code still inside the drift window',
  );
  const next = independentCodeAt(fixedSecret, stepsFromFixedNow(1));
  t.same(
    await verifyTotp({ secret: fixedSecret, code: next, now: fixedNow, lastAcceptedStep: fixedStep }),
    { ok: true, step: fixedStep + 1 },
    'a later step is still fine',
  );
  t.same(
    await verifyTotp({ secret: fixedSecret, code: next, now: fixedNow, lastAcceptedStep: fixedStep + 1 }),
    { ok: false },
    'a last accepted step at the edge of the window refuses everything',
  );
  t.same(
    await verifyTotp({ secret: fixedSecret, code: current, now: fixedNow, lastAcceptedStep: fixedStep + 100 }),
    { ok: false },
    'a last accepted step beyond the window (clock went back) refuses instead of throwing',
  );
});

t.test('malformed codes are refused without throwing', async (t) => {
  const malformed: unknown[] = ['', '12345', '1234567', '12345a', ' 123456', '123 456', '١٢٣٤٥٦', 123456, null, undefined];
  for (const code of malformed) {
    t.notOk(isWellFormedCode(code), `isWellFormedCode(${JSON.stringify(code)})`);
    t.same(await verifyTotp({ secret: fixedSecret, code, now: fixedNow }), { ok: false }, JSON.stringify(code));
  }
  t.ok(isWellFormedCode('012345'), 'leading zeros are part of the code');
});

t.test('totpQrCodeSvg renders the URI as an SVG document', async (t) => {
  const uri = otpauthUri({ secret: fixedSecret, email: 'a@example.com' });
  const svg = await totpQrCodeSvg(uri);
  t.match(svg, /^<svg [^>]*viewBox="[^"]+"[^>]*>.*<path .*<\/svg>\s*$/s);
  t.notMatch(svg, /<script/i);
  t.not(await totpQrCodeSvg(otpauthUri({ secret: fixedSecret, email: 'b@example.com' })), svg, 'depends on the URI');
});
