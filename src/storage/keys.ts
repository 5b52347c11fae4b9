/**
 * Every Redis key Plugboard uses, in one place. All keys start with KEY_PREFIX. Keys that an atomic
 * operation (Lua or MULTI) touches together share a hash tag, so the same code runs on Redis Cluster:
 * everything of one organization lives under `{<orgId>}`, so a credential's state and the org's event
 * log change in one step. Lookups that must work without knowing the org (a token, a client id, an email)
 * are single keys outside any org tag.
 */
export function createKeys(prefix: string) {
  const org = (orgId: string) => {
    const base = `${prefix}:{${orgId}}`;
    return {
      record: `${base}:org`,
      apiKeys: `${base}:apikeys`,
      apiKey: (keyId: string) => `${base}:apikey:${keyId}`,
      users: `${base}:users`,
      user: (userId: string) => `${base}:user:${userId}`,
      credentials: `${base}:credentials`,
      credential: (credentialId: string) => `${base}:crd:${credentialId}`,
      credentialSecrets: (credentialId: string) => `${base}:crd:${credentialId}:secrets`,
      credentialAccounts: (credentialId: string) => `${base}:crd:${credentialId}:accounts`,
      accounts: `${base}:accounts`,
      account: (accountId: string) => `${base}:acc:${accountId}`,
      events: `${base}:events`,
      event: (eventId: string) => `${base}:event:${eventId}`,
      pendingFanout: `${base}:events:pending-fanout`,
      webhookEndpoints: `${base}:webhooks`,
      webhookEndpoint: (endpointId: string) => `${base}:whe:${endpointId}`,
      attempts: (eventId: string) => `${base}:attempts:${eventId}`,
      idempotency: (scope: string, key: string) => `${base}:idem:${scope}:${key}`,
    };
  };

  return {
    prefix,
    org,
    /** Set of every organization id, for reconcilers and the first-start check. */
    organizations: `${prefix}:organizations`,
    /** Claimed once by the first process that creates the demo organization. */
    bootstrapDemoClaim: `${prefix}:bootstrap-demo`,
    clientId: (clientId: string) => `${prefix}:client:${clientId}`,
    accessToken: (tokenHash: string) => `${prefix}:token:${tokenHash}`,
    userEmail: (email: string) => `${prefix}:email:${email.toLowerCase()}`,
    /** Idempotency records for callers that have no organization (e.g. `/oauth2/token`). */
    idempotency: (scope: string, key: string) => `${prefix}:idem:${scope}:${key}`,
    rateLimit: `${prefix}:ratelimit:`,
    /** BullMQ prefix: one hash tag for all queue keys, as BullMQ's Redis Cluster guide requires. */
    queuePrefix: `{${prefix}:q}`,
  };
}

export type Keys = ReturnType<typeof createKeys>;
export type OrgKeys = ReturnType<Keys['org']>;
