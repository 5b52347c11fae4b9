import { sha256Hex } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import type { RedisClient } from '../storage/redis.ts';
import type { ServiceContext } from './context.ts';
import { normalizeEmail } from './organizations.ts';

/**
 * Online password guessing against one account is bounded, whatever addresses it comes from. The per-IP rate
 * limit on password routes stops one machine; a botnet spreads its guesses over many. So wrong passwords are
 * also counted per account (by email, known or not, so the refusal says nothing about which addresses have
 * accounts) in a fixed window:
 *
 * - from one address: `PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS` (10). Past it, that address gets a 429 for
 *   the account until the window ends; the account's owner, elsewhere, logs in as usual.
 * - from all addresses together: `PASSWORD_FAILURES_PER_ACCOUNT` (100). Past it, every password for the
 *   account is refused, the right one included (or the refusal would be the oracle), until the window ends.
 *   This is the trade every lockout makes: whoever knows an email can keep its owner out, and it takes them
 *   100 wrong guesses per window, from at least 10 addresses, to do it.
 *
 * An attempt is booked before its password is compared and given back when the password was right, so
 * concurrent guesses cannot slip past the limit while a hash is being computed, and a script that logs in
 * often (v1 clients do) never runs into it.
 */
export const PASSWORD_FAILURE_WINDOW_MS = 15 * 60 * 1000;

// KEYS: the account's counter, then (optionally) the account-and-address counter; ARGV: window ms, then each
// key's limit. Returns 0 when the attempt is booked, else how long (ms) until every full counter has emptied.
// A refused attempt books nothing: one address past its share must not spend the account's budget for all.
const BOOK_SCRIPT = `
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      ttl = tonumber(ARGV[1])
      redis.call('PEXPIRE', key, ttl)
    end
    wait = math.max(wait, ttl)
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 0
`;

// A right password gives its booking back. A counter that expired meanwhile is left absent, not made -1.
const RETURN_SCRIPT = `
for _, key in ipairs(KEYS) do
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
return 0
`;

type WithScripts = RedisClient & {
  plugboardBookPasswordAttempt(numKeys: number, ...args: (string | number)[]): Promise<number>;
  plugboardReturnPasswordAttempt(numKeys: number, ...keys: string[]): Promise<number>;
};

export function createPasswordAttemptGuard(ctx: ServiceContext) {
  const redis = ctx.redis as WithScripts;
  redis.defineCommand('plugboardBookPasswordAttempt', { lua: BOOK_SCRIPT });
  redis.defineCommand('plugboardReturnPasswordAttempt', { lua: RETURN_SCRIPT });
  const { passwordFailuresPerAccount, passwordFailuresPerAccountAndAddress } = ctx.config;

  return {
    /**
     * Whether `verifyPassword` found the password right, once the attempt on `email` from `address` is booked; a
     * 429 with Retry-After when the account's budget (or this address's share of it) is spent. Without an
     * address (a signed-in user re-entering their password) only the account's budget counts.
     */
    async compare(email: string, address: string | null, verifyPassword: () => Promise<boolean>): Promise<boolean> {
      const counters = ctx.keys.passwordFailures(sha256Hex(normalizeEmail(email)), address);
      const limits = address === null ? [passwordFailuresPerAccount] : [passwordFailuresPerAccount, passwordFailuresPerAccountAndAddress];
      const waitMs = await redis.plugboardBookPasswordAttempt(counters.length, ...counters, PASSWORD_FAILURE_WINDOW_MS, ...limits);
      if (waitMs > 0) {
        throw errors.passwordAttemptsExceeded({ headers: { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) } });
      }
      const isRight = await verifyPassword();
      if (isRight) await redis.plugboardReturnPasswordAttempt(counters.length, ...counters);
      return isRight;
    },
  };
}

export type PasswordAttemptGuard = ReturnType<typeof createPasswordAttemptGuard>;
