import { randomToken, safeEqual, sha256Hex } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import { newId } from '../ids.ts';
import { execTransaction } from '../storage/redis.ts';
import type { ServiceContext } from './context.ts';

export interface ApiKeyRecord {
  id: string;
  organizationId: string;
  name: string;
  clientId: string;
  secretHash: string;
  createdAt: string;
  createdBy: string;
  /** When the key last got an access token (tokens, not each request: a write per request would cost every call). */
  lastUsedAt: string | null;
}

export type ApiKeyView = Omit<ApiKeyRecord, 'secretHash'>;

export interface Principal {
  organizationId: string;
  /** The key's id; a Dashboard user's id when the Dashboard acts through /dashboard/plug (kept in stored tokens, so not renamed). */
  apiKeyId: string;
  clientId: string;
}

const CLIENT_SECRET_PREFIX = 'pbs_';

function toView({ secretHash: _hidden, ...view }: ApiKeyRecord): ApiKeyView {
  return view;
}

/**
 * API keys and the access tokens they mint. Client secrets and tokens are random 256-bit values, so a
 * SHA-256 of them is safe to store; the clear values exist only in the response that created them.
 */
export function createApiKeyService(ctx: ServiceContext) {
  const { redis, keys, config } = ctx;

  async function load(organizationId: string, keyId: string): Promise<ApiKeyRecord | null> {
    const raw = await redis.get(keys.org(organizationId).apiKey(keyId));
    return raw ? (JSON.parse(raw) as ApiKeyRecord) : null;
  }

  /** Which organization's key a client id belongs to (stored as `orgId:keyId`), or null for an unknown one. */
  async function keyOfClient(clientId: string): Promise<{ organizationId: string; keyId: string } | null> {
    const ref = await redis.get(keys.clientId(clientId));
    if (!ref) return null;
    const [organizationId = '', keyId = ''] = ref.split(':');
    return { organizationId, keyId };
  }

  return {
    async create(organizationId: string, input: { name: string; createdBy: string }) {
      const clientSecret = `${CLIENT_SECRET_PREFIX}${randomToken(32)}`;
      const record: ApiKeyRecord = {
        id: newId('key'),
        organizationId,
        name: input.name,
        clientId: `cli_${randomToken(18)}`,
        secretHash: sha256Hex(clientSecret),
        createdAt: ctx.now().toISOString(),
        createdBy: input.createdBy,
        lastUsedAt: null,
      };
      const orgKeys = keys.org(organizationId);
      await redis.multi().set(orgKeys.apiKey(record.id), JSON.stringify(record)).sadd(orgKeys.apiKeys, record.id).exec();
      await redis.set(keys.clientId(record.clientId), `${organizationId}:${record.id}`);
      return { ...toView(record), clientSecret };
    },

    async list(organizationId: string): Promise<ApiKeyView[]> {
      const ids = await redis.smembers(keys.org(organizationId).apiKeys);
      const records = await Promise.all(ids.map((id) => load(organizationId, id)));
      return records
        .filter((r): r is ApiKeyRecord => r !== null)
        .map(toView)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    /** The id of the organization's key with this client id: the name an operator knows a leaked key by. */
    async keyIdOfClient(organizationId: string, clientId: string): Promise<string | null> {
      const key = await keyOfClient(clientId);
      return key?.organizationId === organizationId ? key.keyId : null;
    },

    /**
     * Revoking a key ends every token it issued: tokens are checked against their key on each use. Of revokes
     * at once, one removes the key and the others get the 404 of a revoke after it.
     */
    async revoke(organizationId: string, keyId: string): Promise<void> {
      const record = await load(organizationId, keyId);
      if (!record) throw keyNotFound();
      const orgKeys = keys.org(organizationId);
      const [removed] = (await execTransaction(redis.multi().del(orgKeys.apiKey(keyId)).srem(orgKeys.apiKeys, keyId), 'revoke')) as [number, number];
      if (removed === 0) throw keyNotFound();
      await redis.del(keys.clientId(record.clientId));
    },

    async issueToken(clientId: string, clientSecret: string) {
      const key = await keyOfClient(clientId);
      const record = key ? await load(key.organizationId, key.keyId) : null;
      // Hash even when the client is unknown, so timing does not reveal which client ids exist.
      const presentedHash = sha256Hex(clientSecret);
      if (!record || !safeEqual(presentedHash, record.secretHash)) throw errors.invalidClient();

      const accessToken = randomToken(32);
      const principal: Principal = { organizationId: record.organizationId, apiKeyId: record.id, clientId };
      await redis.set(keys.accessToken(sha256Hex(accessToken)), JSON.stringify(principal), 'EX', config.accessTokenTtlSeconds);
      // XX: a key revoked meanwhile stays revoked (its token fails its first use, as every token of a revoked key).
      const used: ApiKeyRecord = { ...record, lastUsedAt: ctx.now().toISOString() };
      await redis.set(keys.org(record.organizationId).apiKey(record.id), JSON.stringify(used), 'XX');
      return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: config.accessTokenTtlSeconds };
    },

    async authenticate(accessToken: string): Promise<Principal> {
      const raw = await redis.get(keys.accessToken(sha256Hex(accessToken)));
      if (!raw) throw errors.tokenExpired();
      const principal = JSON.parse(raw) as Principal;
      const keyStillExists = await redis.exists(keys.org(principal.organizationId).apiKey(principal.apiKeyId));
      if (!keyStillExists) throw errors.tokenExpired();
      return principal;
    },

    async revokeToken(accessToken: string): Promise<void> {
      await redis.del(keys.accessToken(sha256Hex(accessToken)));
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

function keyNotFound() {
  return errors.notFound({ message: 'API key not found' });
}
