/**
 * Two-factor authentication of dashboard users (SPEC §8): enrollment with an authenticator app or by text
 * message, recovery codes, and the second step of a dashboard login (a "login challenge").
 *
 * A user only ever changes their own settings: every function takes the user the caller authenticated as,
 * never an id from a request. Storage, all under the organization's hash tag (`keys.org(org).twoFactor(user)`):
 * - `record`: `{ version, isEnabled, method, … }`, changed only by `events.commit` with a version guard, so the
 *   settings, their secrets and the audit event land together;
 * - `secrets`: the TOTP secret and phone numbers, sealed (`ctx.secrets` layout);
 * - `recoveryCodes`: a set of SHA-256 hashes; removing a member is what "using" a code means;
 * - `lastTotpStep`: the time step of the last accepted app code; it only moves forward, so a code works once;
 * - `consecutiveFailures`: wrong codes at login since the last right one; at 100, two-factor login locks until
 *   the password is reset (`clearLockout`);
 * - `enrollment` (+ `enrollmentSecrets`): a method being set up, waiting for its first code.
 * Login challenges (`chl_…`) are hashes under the same tag; a key outside it maps a challenge id to its org.
 *
 * Every check that consumes something (a TOTP step, an SMS code, a recovery code, an enrollment) is decided
 * by one Lua call, so of any number of concurrent requests holding the same code exactly one succeeds.
 */
import { safeEqual, sha256Hex } from '../crypto/hashing.ts';
import { createKeyedDigest } from '../crypto/keyed-digest.ts';
import { errors } from '../errors.ts';
import { newId } from '../ids.ts';
import { SmsDeliveryError, type SmsGateway } from '../sms/gateway.ts';
import type { Mutation } from '../storage/event-log.ts';
import type { OrgKeys } from '../storage/keys.ts';
import type { RedisClient } from '../storage/redis.ts';
import { isE164, maskPhone } from '../two-factor/phone.ts';
import { generateRecoveryCodes, hashRecoveryCode, normaliseRecoveryCode } from '../two-factor/recovery-codes.ts';
import { generateSmsCode } from '../two-factor/sms-codes.ts';
import { generateTotpSecret, isWellFormedCode, otpauthUri, totpQrCodeSvg, verifyTotp } from '../two-factor/totp.ts';
import type { EventType } from '../webhooks/event-types.ts';
import type { ServiceContext } from './context.ts';
import { newEvent, type EventService } from './events.ts';
import type { OrganizationService, UserRecord } from './organizations.ts';

export const LOGIN_CHALLENGE_TTL_MS = 15 * 60_000;
export const SMS_CODE_TTL_MS = 10 * 60_000;
export const ENROLLMENT_TTL_MS = 15 * 60_000;
export const MAX_ATTEMPTS_PER_CHALLENGE = 5;
export const LOCK_AFTER_CONSECUTIVE_FAILURES = 100;
/** A text message at most every 30 s, and 10 an hour, per user: enough for typos, too few to run up a bill. */
export const SMS_RESEND_INTERVAL_MS = 30_000;
export const MAX_SMS_PER_HOUR = 10;
/** Redis forgets challenges and enrollments a little after they expire; `expiresAt` is what decides. */
const CLEANUP_MARGIN_MS = 60_000;
const MAX_COMMIT_RETRIES = 5;
const RECOVERY_CODE_LENGTH = 16;
const CROCKFORD_BASE32 = /^[0-9a-hjkmnp-tv-z]+$/;

export type TwoFactorMethod = 'APP' | 'SMS';

/** The user fields this service needs; `UserRecord` fits. */
export type TwoFactorUser = Pick<UserRecord, 'id' | 'organizationId' | 'email'>;

interface TwoFactorRecord {
  version: number;
  isEnabled: boolean;
  method: TwoFactorMethod | null;
  enabledAt: string | null;
  updatedAt: string;
}

/** What `POST /dashboard/me/two-factor/view` shows. Phone numbers are masked. */
export interface TwoFactorSettingsView {
  isEnabled: boolean;
  method: TwoFactorMethod | null;
  phoneNumber: string | null;
  backupPhoneNumber: string | null;
  recoveryCodesRemaining: number;
}

export interface LoginChallengeView {
  id: string;
  method: TwoFactorMethod;
  /** The masked phone number the last code went to (SMS only). */
  destination?: string;
  /**
   * SMS only: false when the per-user text limits held this login's code back (a code went out moments ago,
   * or the hourly budget is spent). The challenge stands: a recovery code answers it, and
   * `POST /dashboard/login/sms` sends the code from `nextCodeAt`.
   */
  isCodeSent?: boolean;
  nextCodeAt?: string;
  expiresAt: string;
}

export interface AppEnrollment {
  secret: string;
  otpauthUri: string;
  qrCodeSvg: string;
}

export interface SmsEnrollment {
  destination: string;
  expiresAt: string;
}

export type LoginProof = { code: string } | { recoveryCode: string };

export interface VerifiedLogin {
  userId: string;
  organizationId: string;
  /** True when a recovery code was used: the user's two-factor settings are now off. */
  usedRecoveryCode: boolean;
  /** What the login's password check saw, given to `startLoginChallenge`: see dashboard-sessions' `start`. */
  sessionsEndedBefore: string;
}

/** What a code is sent for and checked against: a login challenge or an enrollment, and its hash's key. */
interface Holder {
  key: string;
  what: 'login challenge' | 'enrollment';
}

/** The secrets a method keeps: field names in the `secrets` hash. */
type MethodSecrets = { totpSecret: string } | { phoneNumber: string; backupPhoneNumber?: string };

/** How a code is consumed atomically; see CLAIM_SCRIPT. */
type Claim =
  | { kind: 'totp'; step: number }
  | { kind: 'sms'; codeHash: string }
  | { kind: 'recovery'; codeHash: string }
  /** Nothing to compare: whoever deletes the holder first wins (app enrollment, already checked in JS). */
  | { kind: 'holder' };

// Consumes a one-time proof and its holder (a login challenge or an enrollment) in one step. The holder must
// still exist, so a challenge yields at most one session however many codes arrive for it.
// KEYS[1] holder hash; KEYS[2] the proof's key (last TOTP step, recovery-code set; the holder otherwise);
// KEYS[3] optional: a consecutive-failure counter to reset. ARGV[1] kind, ARGV[2] step or code hash.
const CLAIM_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'GONE' end
local kind, value = ARGV[1], ARGV[2]
if kind == 'totp' then
  local last = redis.call('GET', KEYS[2])
  if last and tonumber(last) >= tonumber(value) then return 'USED' end
  redis.call('SET', KEYS[2], value)
elseif kind == 'sms' then
  if redis.call('HGET', KEYS[2], 'smsCodeHash') ~= value then return 'USED' end
elseif kind == 'recovery' then
  if redis.call('SREM', KEYS[2], value) == 0 then return 'USED' end
elseif kind ~= 'holder' then
  return redis.error_reply('unknown claim kind ' .. kind)
end
redis.call('DEL', KEYS[1])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
return 'OK'
`;

// Books one attempt on a holder before its code is compared, so that concurrent guesses cannot outrun the limits:
// a holder has MAX_ATTEMPTS_PER_CHALLENGE comparisons in all, and a user's guesses stop at the lock. At login the
// attempt also counts as a failure until its code proves right (the claim then resets the counter).
// KEYS[1] holder hash; KEYS[2] optional consecutive-failure counter. ARGV[1] attempts per holder, ARGV[2] lock limit.
// Returns { 'OK' | 'GONE' (no holder, or its attempts are spent) | 'LOCKED', attempts left after this one, failures }.
const BOOK_ATTEMPT_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return { 'GONE', 0, 0 } end
local failures = 0
if KEYS[2] then
  failures = tonumber(redis.call('GET', KEYS[2]) or '0')
  if failures >= tonumber(ARGV[2]) then return { 'LOCKED', 0, failures } end
end
local left = tonumber(ARGV[1]) - redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if left < 0 then return { 'GONE', 0, failures } end
if KEYS[2] then failures = redis.call('INCR', KEYS[2]) end
return { 'OK', left, failures }
`;

// Ends a holder whose last attempt was wrong; one started since (a new enrollment under the same key) has
// attempts left and stays. KEYS[1] holder hash; KEYS[2] optional: what goes with it. ARGV[1] attempts per holder.
const END_SPENT_SCRIPT = `
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= tonumber(ARGV[1]) then return redis.call('DEL', unpack(KEYS)) end
return 0
`;

// Sets fields on a holder only while it exists. KEYS[1] holder hash; ARGV field, value, … Returns 1, or 0 when gone.
const SET_ON_HOLDER_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;

// Decides whether another text message may go out to a user, and if so counts it, for the user and for the
// whole organization (an admin adding users to text numbers of their choosing runs up the operator's bill).
// KEYS[1] when the user's last one went out (ms, by the service's clock); KEYS[2] the user's messages this hour;
// KEYS[3] the organization's messages this hour. ARGV[1] now ms, ARGV[2] minimum interval ms, ARGV[3] hourly
// maximum per user, ARGV[4] per organization. Returns { 'OK' | refusal, ms to wait }.
const RESERVE_SMS_SCRIPT = `
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = redis.call('GET', KEYS[1])
-- The hourly budgets first: a spent budget outlasts a cool-down, and the wait given must be the longer one.
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return { 'ORGANIZATION_LIMIT', redis.call('PTTL', KEYS[3]) } end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then return { 'HOURLY_LIMIT', redis.call('PTTL', KEYS[2]) } end
if last and now - tonumber(last) < interval then return { 'COOLDOWN', interval - (now - tonumber(last)) } end
redis.call('SET', KEYS[1], now, 'PX', interval)
for i = 2, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], 3600000) end
end
return { 'OK', 0 }
`;

type SmsRefusal = 'COOLDOWN' | 'HOURLY_LIMIT' | 'ORGANIZATION_LIMIT';
const SMS_REFUSAL_MESSAGES: Record<SmsRefusal, string> = {
  COOLDOWN: 'A code was sent moments ago; wait before asking for another',
  HOURLY_LIMIT: `At most ${MAX_SMS_PER_HOUR} codes are sent per hour`,
  ORGANIZATION_LIMIT: "The organization's text messages for this hour are spent (SMS_MAX_PER_HOUR_PER_ORGANIZATION); use a recovery code or try later",
};

type ClaimOutcome = 'OK' | 'USED' | 'GONE';
type WithScripts = RedisClient & {
  plugboardClaimCode(numKeys: number, ...args: (string | number)[]): Promise<ClaimOutcome>;
  plugboardBookCodeAttempt(numKeys: number, ...args: (string | number)[]): Promise<['OK' | 'GONE' | 'LOCKED', number, number]>;
  plugboardEndSpentHolder(numKeys: number, ...args: (string | number)[]): Promise<number>;
  plugboardSetOnHolder(numKeys: number, ...args: (string | number)[]): Promise<number>;
  plugboardReserveSms(numKeys: number, ...args: (string | number)[]): Promise<['OK' | SmsRefusal, number]>;
};

export function createTwoFactorService(ctx: ServiceContext, deps: { events: EventService; smsGateway: SmsGateway; organizations: OrganizationService }) {
  const { keys } = ctx;
  const redis = ctx.redis as WithScripts;
  redis.defineCommand('plugboardClaimCode', { lua: CLAIM_SCRIPT });
  redis.defineCommand('plugboardBookCodeAttempt', { lua: BOOK_ATTEMPT_SCRIPT });
  redis.defineCommand('plugboardEndSpentHolder', { lua: END_SPENT_SCRIPT });
  redis.defineCommand('plugboardSetOnHolder', { lua: SET_ON_HOLDER_SCRIPT });
  redis.defineCommand('plugboardReserveSms', { lua: RESERVE_SMS_SCRIPT });

  const keysOf = (user: TwoFactorUser) => keys.org(user.organizationId).twoFactor(user.id);
  const nowMs = () => ctx.now().getTime();
  const smsCodeDigests = createKeyedDigest(ctx.config.encryptionKeys, 'plugboard sms code');
  /** A code is only good for the challenge (or enrollment) it was sent for. */
  const smsCodeOf = (holderId: string, code: string) => `${holderId}:${code}`;

  async function claim(holderKey: string, proof: Claim, proofKey: string, failureCounterKey?: string): Promise<ClaimOutcome> {
    const value = proof.kind === 'totp' ? proof.step : proof.kind === 'holder' ? '' : proof.codeHash;
    const keyList = failureCounterKey ? [holderKey, proofKey, failureCounterKey] : [holderKey, proofKey];
    return redis.plugboardClaimCode(keyList.length, ...keyList, proof.kind, value);
  }

  async function bookAttempt(holderKey: string, failureCounterKey?: string) {
    const keyList = failureCounterKey ? [holderKey, failureCounterKey] : [holderKey];
    const [outcome, attemptsLeft, consecutiveFailures] = await redis.plugboardBookCodeAttempt(
      keyList.length,
      ...keyList,
      MAX_ATTEMPTS_PER_CHALLENGE,
      LOCK_AFTER_CONSECUTIVE_FAILURES,
    );
    return { outcome, attemptsLeft, consecutiveFailures };
  }

  /** After a wrong code: ends the holder (and what it keeps beside it) if that was its last attempt; the error to answer with. */
  async function wrongCodeOn(holder: Holder, attemptsLeft: number, besideKey?: string) {
    if (attemptsLeft === 0) {
      const keyList = besideKey ? [holder.key, besideKey] : [holder.key];
      await redis.plugboardEndSpentHolder(keyList.length, ...keyList, MAX_ATTEMPTS_PER_CHALLENGE);
    }
    return wrongCode(attemptsLeft, holder.what);
  }

  function wrongCode(attemptsLeft: number, what: Holder['what']) {
    const next = what === 'login challenge' ? 'log in again' : 'start the enrollment again';
    return (what === 'login challenge' ? errors.twoFactorCodeInvalid : errors.enrollmentCodeInvalid)({
      message:
        attemptsLeft > 0
          ? `The code is wrong, expired or already used; ${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left`
          : `The code is wrong, expired or already used; this ${what} has ended, ${next}`,
    });
  }

  async function loadRecord(user: TwoFactorUser): Promise<{ record: TwoFactorRecord; version: number | null }> {
    const raw = await redis.get(keysOf(user).record);
    if (!raw) {
      return { record: { version: 0, isEnabled: false, method: null, enabledAt: null, updatedAt: ctx.now().toISOString() }, version: null };
    }
    const record = JSON.parse(raw) as TwoFactorRecord;
    return { record, version: record.version };
  }

  async function requirePassword(user: TwoFactorUser, password: string): Promise<void> {
    if (!(await deps.organizations.isPasswordOf(user, password))) throw errors.passwordIncorrect({ param: 'password' });
  }

  function auditEvent(type: EventType, user: TwoFactorUser) {
    return newEvent(type, { user: { id: user.id, email: user.email } }, ctx.now());
  }

  function recoveryCodeMutations(k: ReturnType<typeof keysOf>, codes: string[]): Mutation[] {
    return [{ op: 'del', key: k.recoveryCodes }, ...codes.map((code): Mutation => ({ op: 'sadd', key: k.recoveryCodes, member: hashRecoveryCode(code) }))];
  }

  /**
   * Turns two-factor on with the secrets of a confirmed enrollment; returns the new recovery codes (shown once).
   * Refused while it is on: the check when the enrollment started may predate another enrollment's confirmation,
   * so it is made again here, on the record the commit is guarded by.
   */
  async function enable(user: TwoFactorUser, method: TwoFactorMethod, secrets: MethodSecrets, lastTotpStep?: number): Promise<string[]> {
    const k = keysOf(user);
    const recoveryCodes = generateRecoveryCodes();
    for (let attempt = 1; ; attempt++) {
      const { record: current, version } = await loadRecord(user);
      if (current.isEnabled) throw alreadyOn();
      const now = ctx.now().toISOString();
      const record: TwoFactorRecord = { version: (version ?? 0) + 1, isEnabled: true, method, enabledAt: now, updatedAt: now };
      const committed = await deps.events.commit({
        organizationId: user.organizationId,
        guard: { key: k.record, expectedVersion: version },
        mutations: [
          ctx.secrets.writeMutation(k.secrets, secrets as Record<string, string>),
          { op: 'del', key: k.enrollmentSecrets },
          ...recoveryCodeMutations(k, recoveryCodes),
          lastTotpStep === undefined ? { op: 'del', key: k.lastTotpStep } : { op: 'set', key: k.lastTotpStep, value: String(lastTotpStep) },
          { op: 'set', key: k.record, value: JSON.stringify(record) },
        ],
        events: [auditEvent('user.two_factor.enabled', user)],
      });
      if (committed) return recoveryCodes;
      if (attempt === MAX_COMMIT_RETRIES) throw errors.conflict({ message: 'Two-factor settings keep changing; try again' });
    }
  }

  /**
   * Turns two-factor off and forgets its secrets and recovery codes. After a recovery-code login the use of the
   * code is recorded too, even if the settings were already off by then.
   */
  async function turnOff(user: TwoFactorUser, reason: 'password' | 'recoveryCode'): Promise<void> {
    const k = keysOf(user);
    for (let attempt = 1; ; attempt++) {
      const { record, version } = await loadRecord(user);
      const events = reason === 'recoveryCode' ? [auditEvent('user.two_factor.recovery_code_used', user)] : [];
      if (record.isEnabled) events.push(auditEvent('user.two_factor.disabled', user));
      if (events.length === 0) return;
      const off: TwoFactorRecord = { version: record.version + 1, isEnabled: false, method: null, enabledAt: null, updatedAt: ctx.now().toISOString() };
      const mutations: Mutation[] = record.isEnabled
        ? [
            { op: 'set', key: k.record, value: JSON.stringify(off) },
            { op: 'del', key: k.secrets },
            { op: 'del', key: k.recoveryCodes },
            { op: 'del', key: k.lastTotpStep },
          ]
        : [];
      const committed = await deps.events.commit({ organizationId: user.organizationId, guard: { key: k.record, expectedVersion: version }, mutations, events });
      if (committed) return;
      if (attempt === MAX_COMMIT_RETRIES) throw errors.conflict({ message: 'Two-factor settings keep changing; try again' });
    }
  }

  async function assertNotLocked(user: TwoFactorUser): Promise<void> {
    const failures = Number((await redis.get(keysOf(user).consecutiveFailures)) ?? 0);
    if (failures >= LOCK_AFTER_CONSECUTIVE_FAILURES) throw errors.twoFactorLocked();
  }

  /**
   * Enforces the per-user SMS limits atomically (a cool-down between messages and an hourly budget): null when a
   * message may go now, and books it; else why not and for how long.
   */
  async function reserveSms(user: TwoFactorUser): Promise<{ reason: SmsRefusal; waitMs: number } | null> {
    const k = keysOf(user);
    const [refusal, waitMs] = await redis.plugboardReserveSms(
      3,
      k.smsLastSentAt,
      k.smsSendsThisHour,
      keys.org(user.organizationId).smsSendsThisHour,
      nowMs(),
      SMS_RESEND_INTERVAL_MS,
      MAX_SMS_PER_HOUR,
      ctx.config.smsMaxPerHourPerOrganization,
    );
    return refusal === 'OK' ? null : { reason: refusal, waitMs };
  }

  /** Books a text within the per-user limits, or refuses with a 429 that says when to ask again. */
  async function reserveSmsOrRefuse(user: TwoFactorUser): Promise<void> {
    const refusal = await reserveSms(user);
    if (refusal) {
      throw errors.tooManyRequests({
        message: SMS_REFUSAL_MESSAGES[refusal.reason],
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(refusal.waitMs / 1000))) },
      });
    }
  }

  /** Sends a fresh code within the per-user limits, or refuses with a 429 that says when to ask again. */
  async function sendCode(user: TwoFactorUser, holder: Holder, holderId: string, phoneNumber: string): Promise<void> {
    await reserveSmsOrRefuse(user);
    await sendReservedCode(user, holder, holderId, phoneNumber);
  }

  /**
   * Sends a fresh code to `phoneNumber` and stores its hash on the holder, bound to the holder's id. The hash is
   * stored before sending, so a code that arrives quickly is already valid; a resend replaces the previous code.
   */
  async function sendReservedCode(user: TwoFactorUser, holder: Holder, holderId: string, phoneNumber: string): Promise<void> {
    const code = generateSmsCode();
    const fields = { smsCodeHash: smsCodeDigests.digest(smsCodeOf(holderId, code)), smsCodeExpiresAt: nowMs() + SMS_CODE_TTL_MS, destination: maskPhone(phoneNumber) };
    // Only onto a holder that is still there: one that ended meanwhile would come back without its expiry.
    if ((await redis.plugboardSetOnHolder(1, holder.key, ...Object.entries(fields).flat())) === 0) {
      throw holder.what === 'login challenge' ? errors.loginChallengeInvalid() : errors.conflict({ message: 'The enrollment ended meanwhile; start it again' });
    }
    try {
      await deps.smsGateway.send({ to: phoneNumber, body: `Your Plugboard code is ${code}. It expires in ${SMS_CODE_TTL_MS / 60_000} minutes.` });
    } catch (error) {
      if (!(error instanceof SmsDeliveryError)) throw error;
      ctx.logger.warn({ err: error, userId: user.id }, 'two-factor code could not be sent');
      throw errors.unavailable({ message: 'The text message could not be sent; try again shortly' });
    }
  }

  function smsCodeMatches(holder: Record<string, string>, holderId: string, code: string): boolean {
    const stored = holder.smsCodeHash ?? '';
    const expiresAt = Number(holder.smsCodeExpiresAt ?? 0);
    // Compared even when expired, so the timing does not tell the two cases apart.
    const matches = smsCodeDigests.matches(smsCodeOf(holderId, code), stored);
    return matches && stored !== '' && expiresAt > nowMs();
  }

  async function matchesARecoveryCode(user: TwoFactorUser, codeHash: string): Promise<boolean> {
    const stored = await redis.smembers(keysOf(user).recoveryCodes);
    // Every stored hash is compared, so the time taken does not depend on which one matched.
    return stored.reduce((found, candidate) => safeEqual(candidate, codeHash) || found, false);
  }

  async function phoneNumbers(user: TwoFactorUser): Promise<{ phoneNumber?: string; backupPhoneNumber?: string }> {
    return ctx.secrets.readAll(keysOf(user).secrets);
  }

  async function writeEnrollment(user: TwoFactorUser, method: TwoFactorMethod, secrets: MethodSecrets) {
    const k = keysOf(user);
    const id = newId('chl');
    const expiresAt = nowMs() + ENROLLMENT_TTL_MS;
    const ttl = ENROLLMENT_TTL_MS + CLEANUP_MARGIN_MS;
    await redis
      .multi()
      .del(k.enrollment)
      .hset(k.enrollment, { id, method, expiresAt, attempts: 0 })
      .set(k.enrollmentSecrets, ctx.secrets.seal(k.enrollmentSecrets, secrets as Record<string, string>), 'PX', ttl)
      .pexpire(k.enrollment, ttl)
      .exec();
    return { id, expiresAt };
  }

  /** README: the method and phone numbers change by disabling two-factor and enrolling again. */
  function alreadyOn() {
    return errors.conflict({ message: 'Two-factor authentication is already on; disable it first to change the method' });
  }

  /** Refuses early an enrollment that could not be confirmed; `enable` checks again, on the record it commits against. */
  async function assertDisabled(user: TwoFactorUser): Promise<void> {
    const { record } = await loadRecord(user);
    if (record.isEnabled) throw alreadyOn();
  }

  async function confirmEnrollment(user: TwoFactorUser, method: TwoFactorMethod, code: string): Promise<{ recoveryCodes: string[] }> {
    if (!isWellFormedCode(code)) throw errors.invalidParameter({ param: 'code', message: 'code must be 6 digits' });
    const k = keysOf(user);
    const enrollment = await redis.hgetall(k.enrollment);
    if (enrollment.method !== method || Number(enrollment.expiresAt) <= nowMs()) {
      const start = method === 'APP' ? 'POST /dashboard/me/two-factor/app' : 'POST /dashboard/me/two-factor/sms';
      throw errors.conflict({ message: `No ${method === 'APP' ? 'app' : 'SMS'} enrollment is in progress; start one with ${start}` });
    }
    const pending = (await ctx.secrets.readAll(k.enrollmentSecrets)) as MethodSecrets & Record<string, string>;
    const booked = await bookAttempt(k.enrollment);
    if (booked.outcome !== 'OK') throw wrongCode(0, 'enrollment');
    let proof: Claim | null = null;
    let acceptedStep: number | undefined;
    if (method === 'APP') {
      const result = await verifyTotp({ secret: pending.totpSecret ?? '', code, now: ctx.now() });
      if (result.ok) {
        proof = { kind: 'holder' };
        acceptedStep = result.step;
      }
    } else if (smsCodeMatches(enrollment, enrollment.id ?? '', code)) {
      proof = { kind: 'sms', codeHash: enrollment.smsCodeHash ?? '' };
    }
    if (!proof) throw await wrongCodeOn({ key: k.enrollment, what: 'enrollment' }, booked.attemptsLeft, k.enrollmentSecrets);
    if ((await claim(k.enrollment, proof, k.enrollment)) !== 'OK') throw wrongCode(0, 'enrollment');
    return { recoveryCodes: await enable(user, method, pending, acceptedStep) };
  }

  async function loadChallenge(challengeId: string) {
    const organizationId = await redis.get(keys.loginChallengeOrganization(challengeId));
    const orgKeys: OrgKeys | null = organizationId ? keys.org(organizationId) : null;
    const fields = orgKeys ? await redis.hgetall(orgKeys.loginChallenge(challengeId)) : {};
    const { userId, method } = fields;
    if (!organizationId || !orgKeys || !userId || (method !== 'APP' && method !== 'SMS') || Number(fields.expiresAt) <= nowMs()) {
      throw errors.loginChallengeInvalid();
    }
    const user = await deps.organizations.getUser(organizationId, userId);
    if (!user) throw errors.loginChallengeInvalid();
    // The password changed since: see `startLoginChallenge`.
    if (!safeEqual(fields.passwordStamp ?? '', passwordStampOf(user.passwordHash))) throw errors.loginChallengeInvalid();
    const { record } = await loadRecord(user);
    // Settings turned off (or changed) since the challenge began: the challenge no longer means anything.
    if (!record.isEnabled || record.method !== method) throw errors.loginChallengeInvalid();
    return { id: challengeId, key: orgKeys.loginChallenge(challengeId), user, method: method as TwoFactorMethod, fields };
  }

  function challengeView(id: string, method: TwoFactorMethod, fields: Record<string, string | number>): LoginChallengeView {
    return {
      id,
      method,
      ...(method === 'SMS' && fields.destination ? { destination: String(fields.destination) } : {}),
      expiresAt: new Date(Number(fields.expiresAt)).toISOString(),
    };
  }

  /** A malformed proof is a 400 before it costs an attempt. */
  function assertWellFormed(proof: LoginProof): void {
    if ('recoveryCode' in proof) {
      const normalised = normaliseRecoveryCode(proof.recoveryCode);
      if (normalised.length !== RECOVERY_CODE_LENGTH || !CROCKFORD_BASE32.test(normalised)) {
        throw errors.invalidParameter({ param: 'recoveryCode', message: 'recoveryCode must look like xxxx-xxxx-xxxx-xxxx' });
      }
    } else if (!isWellFormedCode(proof.code)) {
      throw errors.invalidParameter({ param: 'code', message: 'code must be 6 digits' });
    }
  }

  /** Works out which claim a well-formed proof makes, or null when it is simply wrong. */
  async function proofFor(challenge: Awaited<ReturnType<typeof loadChallenge>>, proof: LoginProof): Promise<Claim | null> {
    const { user } = challenge;
    if ('recoveryCode' in proof) {
      const codeHash = hashRecoveryCode(normaliseRecoveryCode(proof.recoveryCode));
      return (await matchesARecoveryCode(user, codeHash)) ? { kind: 'recovery', codeHash } : null;
    }
    if (challenge.method === 'SMS') {
      return smsCodeMatches(challenge.fields, challenge.id, proof.code) ? { kind: 'sms', codeHash: challenge.fields.smsCodeHash ?? '' } : null;
    }
    const k = keysOf(user);
    const secret = await ctx.secrets.read(k.secrets, 'totpSecret');
    if (!secret) throw errors.loginChallengeInvalid();
    const lastStep = await redis.get(k.lastTotpStep);
    const result = await verifyTotp({ secret, code: proof.code, now: ctx.now(), lastAcceptedStep: lastStep === null ? undefined : Number(lastStep) });
    return result.ok ? { kind: 'totp', step: result.step } : null;
  }

  return {
    /** Whether the user signs in with a second factor; the v1 login refuses such users (SPEC §7). */
    async isEnabled(user: Pick<TwoFactorUser, 'id' | 'organizationId'>): Promise<boolean> {
      const raw = await redis.get(keys.org(user.organizationId).twoFactor(user.id).record);
      return raw !== null && (JSON.parse(raw) as TwoFactorRecord).isEnabled;
    },

    async view(user: TwoFactorUser, password: string): Promise<TwoFactorSettingsView> {
      await requirePassword(user, password);
      const { record } = await loadRecord(user);
      if (!record.isEnabled) return { isEnabled: false, method: null, phoneNumber: null, backupPhoneNumber: null, recoveryCodesRemaining: 0 };
      const phones = record.method === 'SMS' ? await phoneNumbers(user) : {};
      return {
        isEnabled: true,
        method: record.method,
        phoneNumber: phones.phoneNumber ? maskPhone(phones.phoneNumber) : null,
        backupPhoneNumber: phones.backupPhoneNumber ? maskPhone(phones.backupPhoneNumber) : null,
        recoveryCodesRemaining: await redis.scard(keysOf(user).recoveryCodes),
      };
    },

    /** Step 1 of app enrollment: a new secret for the authenticator app, confirmed by `confirmAppEnrollment`. */
    async startAppEnrollment(user: TwoFactorUser, password: string): Promise<AppEnrollment> {
      await requirePassword(user, password);
      await assertDisabled(user);
      const secret = generateTotpSecret();
      await writeEnrollment(user, 'APP', { totpSecret: secret });
      const uri = otpauthUri({ secret, email: user.email });
      return { secret, otpauthUri: uri, qrCodeSvg: await totpQrCodeSvg(uri) };
    },

    async confirmAppEnrollment(user: TwoFactorUser, code: string): Promise<{ recoveryCodes: string[] }> {
      return confirmEnrollment(user, 'APP', code);
    },

    /** Step 1 of SMS enrollment: sends a code to the primary number, confirmed by `confirmSmsEnrollment`. */
    async startSmsEnrollment(
      user: TwoFactorUser,
      input: { password: string; phoneNumber: string; backupPhoneNumber?: string },
    ): Promise<SmsEnrollment> {
      for (const param of ['phoneNumber', 'backupPhoneNumber'] as const) {
        const number = input[param];
        if (number !== undefined && !isE164(number)) {
          throw errors.invalidParameter({ param, message: `${param} must be in E.164 format, like +15551234567` });
        }
      }
      if (input.backupPhoneNumber === input.phoneNumber) {
        throw errors.invalidParameter({ param: 'backupPhoneNumber', message: 'backupPhoneNumber must differ from phoneNumber' });
      }
      await requirePassword(user, input.password);
      await assertDisabled(user);
      const secrets: MethodSecrets = { phoneNumber: input.phoneNumber, ...(input.backupPhoneNumber ? { backupPhoneNumber: input.backupPhoneNumber } : {}) };
      // The limits first: a refused resend must leave the enrollment, and the code already sent, as they are.
      await reserveSmsOrRefuse(user);
      const { id } = await writeEnrollment(user, 'SMS', secrets);
      await sendReservedCode(user, { key: keysOf(user).enrollment, what: 'enrollment' }, id, input.phoneNumber);
      return { destination: maskPhone(input.phoneNumber), expiresAt: new Date(nowMs() + SMS_CODE_TTL_MS).toISOString() };
    },

    async confirmSmsEnrollment(user: TwoFactorUser, code: string): Promise<{ recoveryCodes: string[] }> {
      return confirmEnrollment(user, 'SMS', code);
    },

    async disable(user: TwoFactorUser, password: string): Promise<void> {
      await requirePassword(user, password);
      await turnOff(user, 'password');
    },

    /** A new set of recovery codes; the old ones stop working in the same step. */
    async regenerateRecoveryCodes(user: TwoFactorUser, password: string): Promise<{ recoveryCodes: string[] }> {
      await requirePassword(user, password);
      const k = keysOf(user);
      const { record, version } = await loadRecord(user);
      if (!record.isEnabled) throw errors.conflict({ message: 'Two-factor authentication is off; there are no recovery codes to replace' });
      const recoveryCodes = generateRecoveryCodes();
      const next: TwoFactorRecord = { ...record, version: record.version + 1, updatedAt: ctx.now().toISOString() };
      const committed = await deps.events.commit({
        organizationId: user.organizationId,
        guard: { key: k.record, expectedVersion: version },
        mutations: [...recoveryCodeMutations(k, recoveryCodes), { op: 'set', key: k.record, value: JSON.stringify(next) }],
        events: [],
      });
      if (!committed) throw errors.conflict({ message: 'Two-factor settings changed meanwhile; reload them and try again' });
      return { recoveryCodes };
    },

    /**
     * After a right password: null when the user has no second factor, else a login challenge (for SMS, with the
     * code already sent to the primary phone). Refused while two-factor login is locked. The challenge holds a
     * stamp of the password it was opened with: once the password changes (the remedy for the lock), challenges
     * opened before are void, and do not give whoever held the old password a fresh set of guesses. It also
     * keeps `sessionsEndedBefore`, the password check's view of the user's sessions, for the session it ends in.
     */
    async startLoginChallenge(user: TwoFactorUser & Pick<UserRecord, 'passwordHash'>, sessionsEndedBefore: string): Promise<LoginChallengeView | null> {
      const { record } = await loadRecord(user);
      if (!record.isEnabled || !record.method) return null;
      await assertNotLocked(user);
      const id = newId('chl');
      const challengeKey = keys.org(user.organizationId).loginChallenge(id);
      const fields = {
        userId: user.id,
        method: record.method,
        expiresAt: nowMs() + LOGIN_CHALLENGE_TTL_MS,
        attempts: 0,
        passwordStamp: passwordStampOf(user.passwordHash),
        sessionsEndedBefore,
      };
      const ttl = LOGIN_CHALLENGE_TTL_MS + CLEANUP_MARGIN_MS;
      await redis.multi().hset(challengeKey, fields).pexpire(challengeKey, ttl).exec();
      await redis.set(keys.loginChallengeOrganization(id), user.organizationId, 'PX', ttl);
      if (record.method === 'SMS') {
        const { phoneNumber } = await phoneNumbers(user);
        if (!phoneNumber) throw new Error(`two-factor SMS settings of ${user.id} have no phone number`);
        const view = challengeView(id, record.method, { ...fields, destination: maskPhone(phoneNumber) });
        // A right password still gets its challenge when the text limits say no (the user logged in again
        // moments after a code, or someone spent the hourly budget): a recovery code can answer it, and the
        // code can be asked for once the limits allow, instead of a 429 in place of the challenge.
        const refusal = await reserveSms(user);
        if (refusal) return { ...view, isCodeSent: false, nextCodeAt: new Date(nowMs() + refusal.waitMs).toISOString() };
        await sendReservedCode(user, { key: challengeKey, what: 'login challenge' }, id, phoneNumber);
        return { ...view, isCodeSent: true };
      }
      return challengeView(id, record.method, fields);
    },

    /** Sends a new SMS code for a login challenge, to the primary phone or the backup one. */
    async resendLoginSms(challengeId: string, options: { useBackupPhone?: boolean } = {}): Promise<LoginChallengeView> {
      const challenge = await loadChallenge(challengeId);
      if (challenge.method !== 'SMS') {
        throw errors.conflict({ message: 'This account confirms logins with an authenticator app, not by text message' });
      }
      await assertNotLocked(challenge.user);
      const phones = await phoneNumbers(challenge.user);
      const to = options.useBackupPhone ? phones.backupPhoneNumber : phones.phoneNumber;
      if (!to) throw errors.invalidParameter({ param: 'useBackupPhone', message: 'No backup phone number is set for this account' });
      await sendCode(challenge.user, { key: challenge.key, what: 'login challenge' }, challenge.id, to);
      return { ...challengeView(challenge.id, challenge.method, { ...challenge.fields, destination: maskPhone(to) }), isCodeSent: true };
    },

    /**
     * Checks the second factor of a login. A right code ends the challenge and returns the user; a recovery code
     * also turns two-factor off. A wrong code costs one of the challenge's attempts and counts towards the lock.
     */
    async verifyLogin(challengeId: string, proof: LoginProof): Promise<VerifiedLogin> {
      const challenge = await loadChallenge(challengeId);
      const { user } = challenge;
      const k = keysOf(user);
      assertWellFormed(proof);
      // Booked before the code is compared: however many guesses arrive at once, only the booked ones are checked.
      const booked = await bookAttempt(challenge.key, k.consecutiveFailures);
      if (booked.outcome === 'LOCKED') throw errors.twoFactorLocked();
      if (booked.outcome === 'GONE') throw errors.loginChallengeInvalid();
      const claimed = await proofFor(challenge, proof);
      if (claimed) {
        const proofKey = claimed.kind === 'totp' ? k.lastTotpStep : claimed.kind === 'recovery' ? k.recoveryCodes : challenge.key;
        const outcome = await claim(challenge.key, claimed, proofKey, k.consecutiveFailures);
        // Another request with the same proof, or another proof for this challenge, got there first.
        if (outcome === 'GONE') throw errors.loginChallengeInvalid();
        if (outcome === 'OK') {
          const usedRecoveryCode = claimed.kind === 'recovery';
          if (usedRecoveryCode) await turnOff(user, 'recoveryCode');
          // A challenge from before this field was kept has no view to give: its session is refused, log in again.
          const sessionsEndedBefore = challenge.fields.sessionsEndedBefore ?? 'unknown';
          return { userId: user.id, organizationId: user.organizationId, usedRecoveryCode, sessionsEndedBefore };
        }
      }
      const wrong = await wrongCodeOn({ key: challenge.key, what: 'login challenge' }, booked.attemptsLeft);
      if (booked.consecutiveFailures === LOCK_AFTER_CONSECUTIVE_FAILURES) {
        await deps.events.commit({ organizationId: user.organizationId, mutations: [], events: [auditEvent('user.two_factor.locked', user)] });
      }
      if (booked.consecutiveFailures >= LOCK_AFTER_CONSECUTIVE_FAILURES) throw errors.twoFactorLocked();
      throw wrong;
    },

    /** For a password reset (SPEC §8): unlocks two-factor login after too many wrong codes. */
    async clearLockout(user: Pick<TwoFactorUser, 'id' | 'organizationId'>): Promise<void> {
      await redis.del(keys.org(user.organizationId).twoFactor(user.id).consecutiveFailures);
    },

    /** Deletes everything two-factor of a user that is being deleted. */
    async forgetUser(user: Pick<TwoFactorUser, 'id' | 'organizationId'>): Promise<void> {
      await redis.del(...Object.values(keys.org(user.organizationId).twoFactor(user.id)));
    },
  };
}

export type TwoFactorService = ReturnType<typeof createTwoFactorService>;

/** Tells passwords apart without holding anything that would help guess one (a hash of the salted hash). */
function passwordStampOf(passwordHash: string): string {
  return sha256Hex(`login-challenge:${passwordHash}`).slice(0, 16);
}
