import { BoundedCache } from '../bounded-cache.ts';

// Hot paths build an organization's keys for every Redis call; they are built once per organization
// instead, for up to this many organizations at a time.
const MAX_CACHED_ORGANIZATIONS = 10_000;

/**
 * Every Redis key Plugboard uses, in one place. All keys start with KEY_PREFIX. Keys that an atomic
 * operation (Lua or MULTI) touches together share a hash tag, so the same code runs on Redis Cluster:
 * everything of one organization lives under `{<orgId>}`, so a credential's state and the org's event
 * log change in one step. Lookups that must work without knowing the org (a token, a client id, an email)
 * are single keys outside any org tag.
 */
export function createKeys(prefix: string) {
  const orgKeysFor = (orgId: string) => {
    const base = `${prefix}:{${orgId}}`;
    return Object.freeze({
      record: `${base}:org`,
      /** Text messages the organization's users were sent this hour (two-factor codes), against SMS pumping. */
      smsSendsThisHour: `${base}:sms-sends`,
      /** A SCAN pattern of every key of the organization (all share its hash tag, so one cluster slot). */
      everyKey: `${base}:*`,
      apiKeys: `${base}:apikeys`,
      apiKey: (keyId: string) => `${base}:apikey:${keyId}`,
      users: `${base}:users`,
      user: (userId: string) => `${base}:user:${userId}`,
      /** Sorted set of a dashboard user's session token hashes (score: expiry in ms), so all can be ended. */
      userSessions: (userId: string) => `${base}:user:${userId}:sessions`,
      /** Moves forward each time all of a user's sessions are ended: a login checked before an end cannot start one after it. */
      userSessionsEnded: (userId: string) => `${base}:user:${userId}:sessions-ended`,
      /** A dashboard user's two-factor settings, sealed secrets and the counters its code checks update atomically. */
      twoFactor: (userId: string) => {
        const twoFactorBase = `${base}:user:${userId}:2fa`;
        return {
          record: twoFactorBase,
          secrets: `${twoFactorBase}:secrets`,
          recoveryCodes: `${twoFactorBase}:recovery-codes`,
          lastTotpStep: `${twoFactorBase}:totp-step`,
          consecutiveFailures: `${twoFactorBase}:failures`,
          smsSendsThisHour: `${twoFactorBase}:sms-sends`,
          smsLastSentAt: `${twoFactorBase}:sms-last-sent`,
          enrollment: `${twoFactorBase}:enrollment`,
          enrollmentSecrets: `${twoFactorBase}:enrollment:secrets`,
        };
      },
      loginChallenge: (challengeId: string) => `${base}:login-challenge:${challengeId}`,
      /** Sorted set of the org's credential ids by creation time (ms). */
      credentials: `${base}:credentials`,
      /** Sorted set of the org's pending credential timers (member: timer id, score: due ms); see timer-index. */
      timers: `${base}:timers`,
      /** Set of credential ids with a step in flight: what the reconciler's every pass checks. */
      credentialsStepping: `${base}:credentials:stepping`,
      /**
       * Obsolete: earlier versions kept here the ids of credentials with a step or timers, for the reconciler's
       * full pass, which now reads the creation index. Only that pass uses the name, to delete the set.
       */
      obsoleteCredentialsScheduled: `${base}:credentials:scheduled`,
      credential: (credentialId: string) => `${base}:crd:${credentialId}`,
      credentialSecrets: (credentialId: string) => `${base}:crd:${credentialId}:secrets`,
      /** Sorted set of the credential's live connect-link ids (score: expiry in ms); deleting it revokes them all. */
      credentialConnectLinks: (credentialId: string) => `${base}:crd:${credentialId}:connect-links`,
      /** JSON map of the provider's account id to our `acc_` id, so ids stay stable across syncs. */
      credentialAccounts: (credentialId: string) => `${base}:crd:${credentialId}:accounts`,
      /** Sorted set of the org's account ids by creation time (ms). */
      accounts: `${base}:accounts`,
      account: (accountId: string) => `${base}:acc:${accountId}`,
      events: `${base}:events`,
      event: (eventId: string) => `${base}:event:${eventId}`,
      pendingFanout: `${base}:events:pending-fanout`,
      webhookEndpoints: `${base}:webhooks`,
      webhookEndpoint: (endpointId: string) => `${base}:whe:${endpointId}`,
      /** The endpoint's signing secrets: `current` and, during a rotation, `previous`. */
      webhookEndpointSecrets: (endpointId: string) => `${base}:whe:${endpointId}:secrets`,
      /** Circuit breaker and failure streak of an endpoint (hash: failures, trips, openUntil, failingSince). */
      webhookEndpointHealth: (endpointId: string) => `${base}:whe:${endpointId}:health`,
      /** Sorted set of the endpoint's requests in flight (member: lease id, score: start ms). */
      webhookEndpointInFlight: (endpointId: string) => `${base}:whe:${endpointId}:inflight`,
      /** Sorted set of events whose delivery to the endpoint gave up (score: when), for `recover`. */
      webhookEndpointFailed: (endpointId: string) => `${base}:whe:${endpointId}:failed`,
      /** List of delivery attempts of one event, to every endpoint, oldest first. */
      attempts: (eventId: string) => `${base}:attempts:${eventId}`,
      /** An Idempotency-Key's claim (fingerprint and state) and its stored response (sealed: it may hold secrets). */
      idempotency: (keyHash: string) => `${base}:idem:${keyHash}`,
      idempotencyResponse: (keyHash: string) => `${base}:idem:${keyHash}:secrets`,
    });
  };

  const orgKeysCache = new BoundedCache<string, ReturnType<typeof orgKeysFor>>(MAX_CACHED_ORGANIZATIONS);
  const org = (orgId: string) => orgKeysCache.get(orgId) ?? orgKeysCache.set(orgId, orgKeysFor(orgId));

  return {
    prefix,
    org,
    /** Set of every organization id, for reconcilers and the first-start check. */
    organizations: `${prefix}:organizations`,
    /** Sorted set of `<orgId>@<n>` (score: due ms): sweeps of removed organizations still to run (organization-removal). */
    organizationSweepsDue: `${prefix}:organization-sweeps`,
    /** Claimed once by the first process that creates the demo organization. */
    bootstrapDemoClaim: `${prefix}:bootstrap-demo`,
    /** Hash of kid → fingerprint of the encryption key first used under that kid (`encryption-key-check.ts`). */
    encryptionKeyFingerprints: `${prefix}:encryption-keys`,
    clientId: (clientId: string) => `${prefix}:client:${clientId}`,
    accessToken: (tokenHash: string) => `${prefix}:token:${tokenHash}`,
    /** By the email as `normalizeEmail` gives it. */
    userEmail: (email: string) => `${prefix}:email:${email}`,
    dashboardSession: (tokenHash: string) => `${prefix}:dashboard-session:${tokenHash}`,
    /**
     * Wrong-password counters of one account (by its email's hash), for all sources and for one (an address,
     * or signed-in sessions), and its owner's addresses; one hash tag, so one script reads them all (see
     * password-attempts).
     */
    passwordAttempts: (emailHash: string, source: string) => {
      const account = `${prefix}:{password-failures:${emailHash}}`;
      return { account, source: `${account}:${source}`, ownerAddresses: `${account}:owner-addresses` };
    },
    /** The organization of a login challenge: its id is all a client sends back. */
    loginChallengeOrganization: (challengeId: string) => `${prefix}:login-challenge:${challengeId}`,
    /** Idempotency records of callers without an organization; the tag keeps claim and response in one slot. */
    idempotency: (scopedKeyHash: string) => `${prefix}:idem:{${scopedKeyHash}}`,
    idempotencyResponse: (scopedKeyHash: string) => `${prefix}:idem:{${scopedKeyHash}}:secrets`,
    rateLimit: `${prefix}:ratelimit:`,
    /** BullMQ prefix: one hash tag for all queue keys, as BullMQ's Redis Cluster guide requires. */
    queuePrefix: `{${prefix}:q}`,
  };
}

export type Keys = ReturnType<typeof createKeys>;
export type OrgKeys = ReturnType<Keys['org']>;
