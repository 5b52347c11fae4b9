import { sha256Hex } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import type { RedisClient } from '../storage/redis.ts';
import type { ServiceContext } from './context.ts';
import { normalizeEmail } from './organizations.ts';

/**
 * Online password guessing against one account is bounded, whatever addresses it comes from. The per-IP rate
 * limit on password routes stops one machine; a botnet spreads its guesses over many. So wrong passwords are
 * also counted per account (by email, known or not, so the refusal says nothing about which addresses have
 * accounts) in a fixed window, and per source within it:
 *
 * - from one address: `PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS` (10). Past it, that address gets a 429 for
 *   the account until the window ends; the account's owner, elsewhere, logs in as usual.
 * - from all sources together: `PASSWORD_FAILURES_PER_ACCOUNT` (100). Past it, the account is locked until the
 *   window ends: every password is refused, the right one included (or the refusal would be the oracle), but
 *   for the owner's own addresses, those the right password came from in the last 30 days, and for the owner's
 *   signed-in sessions. A botnet can then lock out only newcomers' devices, not the owner's usual ones.
 * - from signed-in sessions re-entering the password (to change it, or two-factor): the per-address share, for
 *   all the account's sessions together, so a stolen session cannot go on guessing; the lock does not hold
 *   them back, so the owner can change the password during an attack.
 *
 * An attempt is booked before its password is compared and given back when the password was right, so
 * concurrent guesses cannot slip past the limit while a hash is being computed, and a script that logs in
 * often (v1 clients do) never runs into it on its own.
 */
export const PASSWORD_FAILURE_WINDOW_MS = 15 * 60 * 1000;
/** How long an address the right password came from is the owner's, from its latest right password. */
export const OWNER_ADDRESS_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** The most recent owner addresses kept per account. */
export const MAX_OWNER_ADDRESSES = 10;

/** Where an attempt comes from: an address (a login), or a signed-in session re-entering the password. */
export type PasswordAttemptSource = { address: string } | 'signed-in';

// KEYS: the account's counter, the source's counter, the account's owner addresses (member: address, score:
// until when). ARGV: window ms, account limit, source limit, address ('' when signed in), now ms.
// Returns 0 when the attempt is booked, else how long (ms) until the counters that refuse it have emptied.
// A refused attempt books nothing: one address past its share must not spend the account's budget for all.
const BOOK_SCRIPT = `
local function waitFor(key, limit)
  if tonumber(redis.call('GET', key) or '0') < tonumber(limit) then return 0 end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[1])
    redis.call('PEXPIRE', key, ttl)
  end
  return ttl
end
local wait = waitFor(KEYS[2], ARGV[3])
local isOwner = ARGV[4] == '' or tonumber(redis.call('ZSCORE', KEYS[3], ARGV[4]) or '0') > tonumber(ARGV[5])
if not isOwner then wait = math.max(wait, waitFor(KEYS[1], ARGV[2])) end
if wait > 0 then return wait end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
return 0
`;

// A right password gives its booking back (a counter that expired meanwhile is left absent, not made -1), and
// its address, if any, becomes (or stays) one of the owner's. KEYS as above; ARGV: address or '', now ms,
// owner address TTL ms, most owner addresses kept.
const RETURN_SCRIPT = `
for i = 1, 2 do
  if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end
end
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return 0
`;

type WithScripts = RedisClient & {
  plugboardBookPasswordAttempt(numKeys: number, ...args: (string | number)[]): Promise<number>;
  plugboardReturnPasswordAttempt(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

export function createPasswordAttemptGuard(ctx: ServiceContext) {
  const redis = ctx.redis as WithScripts;
  redis.defineCommand('plugboardBookPasswordAttempt', { lua: BOOK_SCRIPT });
  redis.defineCommand('plugboardReturnPasswordAttempt', { lua: RETURN_SCRIPT });
  const { passwordFailuresPerAccount, passwordFailuresPerAccountAndAddress } = ctx.config;

  return {
    /**
     * Whether `verifyPassword` found the password right, once the attempt on `email` from `source` is booked;
     * a 429 with Retry-After when the account's budget (or this source's share of it) is spent.
     */
    async compare(email: string, source: PasswordAttemptSource, verifyPassword: () => Promise<boolean>): Promise<boolean> {
      const address = source === 'signed-in' ? '' : source.address;
      const counters = ctx.keys.passwordAttempts(sha256Hex(normalizeEmail(email)), source === 'signed-in' ? source : `address:${address}`);
      const keyList = [counters.account, counters.source, counters.ownerAddresses];
      const nowMs = ctx.now().getTime();
      const waitMs = await redis.plugboardBookPasswordAttempt(3, ...keyList, PASSWORD_FAILURE_WINDOW_MS, passwordFailuresPerAccount, passwordFailuresPerAccountAndAddress, address, nowMs);
      if (waitMs > 0) {
        throw errors.passwordAttemptsExceeded({ headers: { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) } });
      }
      const isRight = await verifyPassword();
      if (isRight) await redis.plugboardReturnPasswordAttempt(3, ...keyList, address, nowMs, OWNER_ADDRESS_TTL_MS, MAX_OWNER_ADDRESSES);
      return isRight;
    },
  };
}

export type PasswordAttemptGuard = ReturnType<typeof createPasswordAttemptGuard>;
