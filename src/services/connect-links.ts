/**
 * Connect links: a URL an integrator hands to its own customer so that person can answer one credential's
 * MFA challenge on our hosted page, without a Dashboard account or an API key.
 *
 * The token names its organization, credential, link id and expiry, and carries an HMAC over them made with a
 * key derived (HKDF) from the current encryption key; so a token cannot be altered to point at another
 * credential, and a forged one is refused before it costs a Redis lookup. Revocation needs state: each
 * credential keeps a sorted set of its live link ids (score: expiry), and a token is honoured only while its
 * id is in that set and its credential still exists. The token travels in the URL fragment (`/connect#…`),
 * which browsers never send to a server, so it stays out of access logs and Referer headers.
 */
import { createHmac } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';
import { safeEqual } from '../crypto/hashing.ts';
import { deriveKey } from '../crypto/keyed-digest.ts';
import { errors, PlugError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import type { ServiceContext } from './context.ts';
import type { CredentialService } from './credentials.ts';

export const CONNECT_LINK_TTL_SECONDS = 72 * 3600;
/** Links minted per credential that stay valid at once; minting more retires the oldest (a client minting one per page view would otherwise pile them up). */
const MAX_LIVE_LINKS_PER_CREDENTIAL = 50;
const TOKEN_VERSION = 'cl1';
const HOSTED_PAGE_PATH = '/connect';

export interface ConnectLink {
  url: string;
  expiresAt: string;
}

/** What a valid token grants: MFA on exactly this credential, until `expiresAt`. */
export interface ConnectLinkGrant {
  organizationId: string;
  credentialId: string;
  linkId: string;
  expiresAt: string;
}

interface TokenPayload {
  o: string;
  c: string;
  l: string;
  /** Expiry, Unix seconds. */
  e: number;
}

const signingKey = (key: EncryptionKey) => deriveKey(key, 'plugboard connect-link signing');

export function createConnectLinkService(ctx: ServiceContext, deps: { credentials: CredentialService }) {
  const { redis, keys, config } = ctx;
  const signingKeys = new Map(config.encryptionKeys.map((key) => [key.kid, signingKey(key)]));
  const [currentKey] = config.encryptionKeys;
  if (!currentKey) throw new Error('connect links need an encryption key');
  const currentKid = currentKey.kid;
  const currentSigningKey = signingKey(currentKey);

  function sign(key: Buffer, kid: string, body: string): string {
    return createHmac('sha256', key).update(`${TOKEN_VERSION}.${kid}.${body}`).digest('base64url');
  }

  function encode(payload: TokenPayload): string {
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${TOKEN_VERSION}.${currentKid}.${body}.${sign(currentSigningKey, currentKid, body)}`;
  }

  /** The payload of an authentic, unexpired token, or null. */
  function decode(token: string): TokenPayload | null {
    const [version, kid = '', body, signature, ...rest] = token.split('.');
    const key = signingKeys.get(kid);
    if (version !== TOKEN_VERSION || !key || !body || !signature || rest.length > 0) return null;
    if (!safeEqual(signature, sign(key, kid, body))) return null;
    // Signed by us, so well-formed.
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenPayload;
    return payload.e * 1000 > ctx.now().getTime() ? payload : null;
  }

  return {
    /** A fresh link to the hosted MFA page for one credential (404 if the organization has no such credential). */
    async create(organizationId: string, credentialId: string): Promise<ConnectLink> {
      await deps.credentials.get(organizationId, credentialId);
      const now = ctx.now().getTime();
      const expiresAtMs = now + CONNECT_LINK_TTL_SECONDS * 1000;
      const payload: TokenPayload = { o: organizationId, c: credentialId, l: randomBase32(26), e: Math.floor(expiresAtMs / 1000) };
      const liveLinks = keys.org(organizationId).credentialConnectLinks(credentialId);
      // Scored by the expiry to the millisecond (the token's is in whole seconds), so that links minted in the
      // same second still retire oldest first rather than in the order of their random ids.
      await redis
        .multi()
        .zremrangebyscore(liveLinks, '-inf', now)
        .zadd(liveLinks, expiresAtMs, payload.l)
        .zremrangebyrank(liveLinks, 0, -(MAX_LIVE_LINKS_PER_CREDENTIAL + 1))
        .pexpireat(liveLinks, payload.e * 1000)
        .exec();
      return { url: `${config.publicUrl}${HOSTED_PAGE_PATH}#${encode(payload)}`, expiresAt: new Date(payload.e * 1000).toISOString() };
    },

    /** Every link of the credential stops working now. Revoking when there are none is fine. */
    async revokeAll(organizationId: string, credentialId: string): Promise<void> {
      await deps.credentials.get(organizationId, credentialId);
      await redis.del(keys.org(organizationId).credentialConnectLinks(credentialId));
    },

    /** What a token presented to the hosted page grants; 401 `PB_CONNECT_LINK_INVALID` if expired, revoked or forged. */
    async open(token: string): Promise<ConnectLinkGrant> {
      const payload = decode(token);
      if (!payload) throw errors.connectLinkInvalid();
      const expiry = await redis.zscore(keys.org(payload.o).credentialConnectLinks(payload.c), payload.l);
      if (expiry === null || Number(expiry) <= ctx.now().getTime()) throw errors.connectLinkInvalid();
      // A deleted credential takes its links with it.
      await deps.credentials.get(payload.o, payload.c).catch((error: unknown) => {
        throw error instanceof PlugError && error.type === 'notFound' ? errors.connectLinkInvalid() : error;
      });
      return { organizationId: payload.o, credentialId: payload.c, linkId: payload.l, expiresAt: new Date(payload.e * 1000).toISOString() };
    },
  };
}

export type ConnectLinkService = ReturnType<typeof createConnectLinkService>;
