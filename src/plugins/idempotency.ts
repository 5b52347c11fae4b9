/**
 * `Idempotency-Key` (SPEC §1) as a route option. A route that creates or acts opts in with
 * `config: { idempotent: true }`; then a request carrying the header is answered once:
 *
 * - the first request claims the key atomically (SET NX) and runs; its response (status, body, content
 *   type, location) is stored for 24 h, sealed, because a response may hold a secret shown once;
 * - a repeat with the same method, URL and body gets the stored response and `Idempotent-Replayed: true`
 *   (the claim holds a keyed digest of them, never a plain hash: a body can hold a password);
 * - a repeat with anything different gets 409 `PB_IDEMPOTENCY_KEY_REUSED`;
 * - a repeat while the first is still running gets 409 `PB_IDEMPOTENCY_KEY_IN_FLIGHT`;
 * - a 5xx is not stored: the claim is released so the client can retry with the same key;
 * - nor is a 409: it says the resource was busy or in another state at that moment (a step in flight, a
 *   concurrent change), and replaying it for 24 h would refuse a retry that is now right (Stripe does the same).
 *
 * Keys are scoped to the caller's organization (its hash tag) or, on routes without one, to the caller's
 * IP address. Validation and authentication failures happen before the claim and are never stored.
 *
 * A process that dies between its change and storing the response leaves only its claim, which expires
 * (IN_FLIGHT_TTL_SECONDS), and a retry after that runs again. So that it cannot make a second resource, a
 * route that creates one names it with `idForCreation`: with a key, the id is derived from the key (keyed,
 * so it looks as random as any), and the retry finds the first one already made.
 */
import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import { randomToken, sha256Hex } from '../crypto/hashing.ts';
import { createKeyedDigest, deriveKey } from '../crypto/keyed-digest.ts';
import { errors } from '../errors.ts';
import { base32OfBytes, newId, type IdPrefix, type NewResourceId } from '../ids.ts';
import { errorResponses } from '../schemas/index.ts';

export interface IdempotencyOptions {
  /** The organization whose key space the key belongs to; the default is the access token's organization. */
  organizationOf?: (request: FastifyRequest) => string | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    idempotent?: boolean | IdempotencyOptions;
  }
  interface FastifyRequest {
    idempotencyClaim: IdempotencyClaim | null;
  }
}

interface IdempotencyClaim {
  claimKey: string;
  responseKey: string;
  /** The exact claim value we wrote; completing or releasing checks it so we never touch a newer claim. */
  claimValue: string;
  fingerprint: string;
  /** Bytes that ids of resources created under this key are made of (see `idForCreation`). */
  idSeed: Buffer;
}

interface ClaimRecord {
  state: 'in-flight' | 'done';
  fingerprint: string;
  owner?: string;
}

interface StoredResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const RESPONSE_TTL_SECONDS = 24 * 3600;
/** How long a claim protects a request that is still running; a process that dies frees its keys after this. */
const IN_FLIGHT_TTL_SECONDS = 120;
// Preference-Applied: a replay of an answer that waited (`Prefer: wait`) says so, as the first did.
const REPLAYED_RESPONSE_HEADERS = ['content-type', 'location', 'cache-control', 'preference-applied'];

const IdempotencyKeySchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7E]+$',
  description: 'Makes a retry of this request safe: the same key and body within 24 h return the first response.',
});

// Both scripts only act when the claim is still the one this request wrote.
const COMPLETE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
return 1`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The id for the resource this request creates: the same for every run of a request under the same
 * Idempotency-Key (in the same organization, on the same route), random without one. A service given such an
 * id treats finding it taken as a retry of its own creation.
 */
export function idForCreation(request: FastifyRequest, prefix: IdPrefix): NewResourceId {
  const claim = request.idempotencyClaim;
  return claim ? { id: `${prefix}_${base32OfBytes(claim.idSeed.subarray(0, 26))}`, isIdempotent: true } : { id: newId(prefix), isIdempotent: false };
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function optionsOf(config: boolean | IdempotencyOptions | undefined): IdempotencyOptions | null {
  if (!config) return null;
  return config === true ? {} : config;
}

/** Documents (and validates) the header, and documents the 409 it can cause, on every idempotent route. */
function withIdempotencyHeader(routeOptions: RouteOptions) {
  const schema = routeOptions.schema ?? {};
  const headers = (schema.headers ?? { type: 'object' }) as { properties?: Record<string, unknown> };
  const response = schema.response as Record<string, unknown> | undefined;
  routeOptions.schema = {
    ...schema,
    headers: { ...headers, properties: { ...headers.properties, [IDEMPOTENCY_HEADER]: IdempotencyKeySchema } },
    ...(response ? { response: { ...errorResponses(409), ...response } } : {}),
  };
}

async function idempotency(app: FastifyInstance) {
  const { redis, keys, secrets, config } = app.services.ctx;
  // Keyed: a body can hold a password, and the rest of it is often stored in the clear beside it.
  const fingerprints = createKeyedDigest(config.encryptionKeys, 'plugboard idempotency fingerprint');
  // The current key's: only a key rotation landing between a crash and its retry (minutes) names a second resource.
  const [currentKey] = config.encryptionKeys;
  if (!currentKey) throw new Error('idempotency needs an encryption key');
  const idKey = deriveKey(currentKey, 'plugboard idempotent resource ids');
  app.decorateRequest('idempotencyClaim', null);

  function keysFor(request: FastifyRequest, options: IdempotencyOptions, idempotencyKey: string) {
    const organizationId = options.organizationOf ? options.organizationOf(request) : (request.principal?.organizationId ?? null);
    if (organizationId) {
      const keyHash = sha256Hex(idempotencyKey);
      return { claimKey: keys.org(organizationId).idempotency(keyHash), responseKey: keys.org(organizationId).idempotencyResponse(keyHash) };
    }
    const scopedKeyHash = sha256Hex(`${request.ip}\n${idempotencyKey}`);
    return { claimKey: keys.idempotency(scopedKeyHash), responseKey: keys.idempotencyResponse(scopedKeyHash) };
  }

  async function replay(reply: FastifyReply, responseKey: string) {
    const sealed = await secrets.read(responseKey, 'response');
    // A claim marked done always has its response; if both just expired, the client may simply retry.
    if (!sealed) throw errors.idempotencyInFlight();
    const stored = JSON.parse(sealed) as StoredResponse;
    return reply.code(stored.statusCode).headers(stored.headers).header(REPLAYED_HEADER, 'true').send(stored.body);
  }

  async function claimOrReplay(request: FastifyRequest, reply: FastifyReply, options: IdempotencyOptions) {
    const header = request.headers[IDEMPOTENCY_HEADER];
    const idempotencyKey = Array.isArray(header) ? header[0] : header;
    if (idempotencyKey === undefined) return;

    const { claimKey, responseKey } = keysFor(request, options, idempotencyKey);
    const canonicalRequest = canonicalJson({ method: request.method, url: request.url, body: request.body ?? null });
    const fingerprint = fingerprints.digest(canonicalRequest);
    const claimValue = JSON.stringify({ state: 'in-flight', fingerprint, owner: randomToken(12) } satisfies ClaimRecord);

    // Two rounds: if the other claim expires between our SET and GET, the second SET wins it.
    for (let round = 0; round < 2; round += 1) {
      if ((await redis.set(claimKey, claimValue, 'EX', IN_FLIGHT_TTL_SECONDS, 'NX')) === 'OK') {
        const idSeed = createHmac('sha256', idKey).update(`${claimKey}\n${request.method} ${request.routeOptions.url}`).digest();
        request.idempotencyClaim = { claimKey, responseKey, claimValue, fingerprint, idSeed };
        return;
      }
      const existing = await redis.get(claimKey);
      if (existing === null) continue;
      const record = JSON.parse(existing) as ClaimRecord;
      if (!fingerprints.matches(canonicalRequest, record.fingerprint)) throw errors.idempotencyMismatch({ param: 'Idempotency-Key' });
      if (record.state === 'in-flight') throw errors.idempotencyInFlight({ param: 'Idempotency-Key' });
      return replay(reply, responseKey);
    }
    throw errors.idempotencyInFlight({ param: 'Idempotency-Key' });
  }

  async function completeOrRelease(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const claim = request.idempotencyClaim;
    if (!claim) return payload;
    request.idempotencyClaim = null;
    const isReplayable = typeof payload === 'string' || Buffer.isBuffer(payload);
    // The response goes out whatever Redis says now: failing it would hide a change that was made. A claim
    // that could not be completed or released stays in flight until it expires (IN_FLIGHT_TTL_SECONDS).
    const keepClaimAsItIs = (error: unknown) => request.log.warn({ err: error }, 'could not record the Idempotency-Key outcome');
    if (reply.statusCode >= 500 || reply.statusCode === 409 || !isReplayable) {
      await redis.eval(RELEASE_SCRIPT, 1, claim.claimKey, claim.claimValue).catch(keepClaimAsItIs);
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_RESPONSE_HEADERS) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    const response: StoredResponse = { statusCode: reply.statusCode, headers, body: String(payload) };
    const sealed = secrets.seal(claim.responseKey, { response: JSON.stringify(response) });
    const done = JSON.stringify({ state: 'done', fingerprint: claim.fingerprint } satisfies ClaimRecord);
    await redis.eval(COMPLETE_SCRIPT, 2, claim.claimKey, claim.responseKey, claim.claimValue, done, sealed, RESPONSE_TTL_SECONDS).catch(keepClaimAsItIs);
    return payload;
  }

  app.addHook('onRoute', (routeOptions) => {
    const options = optionsOf(routeOptions.config?.idempotent);
    if (!options) return;
    withIdempotencyHeader(routeOptions);
    // Route-level hooks run last in their phase: after authentication, body parsing and validation.
    routeOptions.preHandler = [
      ...[routeOptions.preHandler ?? []].flat(),
      (request: FastifyRequest, reply: FastifyReply) => claimOrReplay(request, reply, options),
    ] as RouteOptions['preHandler'];
    routeOptions.onSend = [...[routeOptions.onSend ?? []].flat(), completeOrRelease] as RouteOptions['onSend'];
  });
}

export default fp(idempotency, { name: 'idempotency', fastify: '5.x', dependencies: ['services', 'bearer-auth'] });
