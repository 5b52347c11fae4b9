import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import { errors, PlugError, STORE_RETRY_AFTER_HEADERS } from '../errors.ts';
import { urlForLog } from '../logger.ts';
import { isRedisUnavailableError } from '../storage/redis.ts';
import { API_VERSIONS } from './api-version.ts';
import { setStandardHeaders } from './response-headers.ts';

/** SPEC §1's error body. */
export interface ErrorEnvelope {
  errors: { type: string; message: string; param?: string; details: { errorId: string; value?: unknown } }[];
}

export function toEnvelope(error: PlugError): ErrorEnvelope {
  return {
    errors: [
      {
        type: error.type,
        message: error.message,
        ...(error.param ? { param: error.param } : {}),
        details: { errorId: error.code, ...(error.value !== undefined ? { value: error.value } : {}) },
      },
    ],
  };
}

/** How an API version writes a catalog error as a response body: SPEC §1's envelope, or v1's `{ status, message }`. */
export type ErrorBody = (error: PlugError) => unknown;

export function sendError(reply: FastifyReply, error: PlugError, body: ErrorBody = toEnvelope) {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(error.statusCode).send(body(error));
}

/** Ajv reports where a value failed as a JSON pointer; integrators want the field name. */
function validationParam(error: FastifyError): string | undefined {
  const first = error.validation?.[0];
  if (!first) return undefined;
  const params = first.params as Record<string, unknown>;
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const child = (params.missingProperty ?? params.additionalProperty) as string | undefined;
  return [path, child].filter(Boolean).join('.') || undefined;
}

function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return error.message;
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') {
    const what = error.validationContext === 'querystring' ? 'query parameter' : 'field';
    return `unknown ${what} "${String(params.additionalProperty)}"`;
  }
  if (first.keyword === 'required') return `missing required field "${String(params.missingProperty)}"`;
  const where = validationParam(error);
  // Ajv's "must be equal to one of the allowed values" (or "to constant", for each literal of a union) leaves
  // the caller guessing which.
  if (first.keyword === 'enum' && Array.isArray(params.allowedValues)) return `${where ?? 'value'} must be one of: ${params.allowedValues.join(', ')}`;
  if (first.keyword === 'const') {
    const allowed = (error.validation ?? []).filter((other) => other.keyword === 'const' && other.instancePath === first.instancePath);
    return `${where ?? 'value'} must be ${allowed.length > 1 ? 'one of: ' : ''}${allowed.map((other) => String((other.params as { allowedValue?: unknown }).allowedValue)).join(', ')}`;
  }
  return where ? `${where} ${first.message ?? 'is invalid'}` : `${error.validationContext ?? 'request'} ${first.message ?? 'is invalid'}`;
}

/** Map anything thrown inside Fastify (our catalog errors, its own 4xx, or a bug) onto the catalog. */
export function toPlugError(error: FastifyError | PlugError | Error): PlugError {
  if (error instanceof PlugError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    return errors.invalidParameter({ message: validationMessage(fastifyError), param: validationParam(fastifyError) });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.malformedJson();
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.emptyJsonBody();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.payloadTooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return fastifyError.statusCode === 415 ? errors.unsupportedMediaType() : errors.invalidParameter({ message: 'invalid Content-Length' });
  }
  if (error instanceof SyntaxError) return errors.malformedJson();
  if (isRedisUnavailableError(error)) return errors.storeUnavailable({ headers: STORE_RETRY_AFTER_HEADERS, cause: error });
  const status = fastifyError.statusCode ?? 500;
  if (status === 413) return errors.payloadTooLarge();
  if (status === 415) return errors.unsupportedMediaType();
  if (status === 404) return errors.routeNotFound();
  if (status === 429) return errors.tooManyRequests();
  // Other client errors from Fastify's own checks (bad headers, bad URL encoding) carry no secrets.
  if (status >= 400 && status < 500) return errors.invalidParameter({ message: fastifyError.message });
  return errors.internal();
}

/**
 * Sets the error and not-found handlers of `app`'s context: the root gets SPEC §1's envelope; a route tree
 * that speaks another shape (legacy v1) calls this again for its own context with its own `body`.
 */
export function handleErrors(app: FastifyInstance, body: ErrorBody = toEnvelope) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const plugError = toPlugError(error);
    if (plugError.type === 'serviceUnavailable') {
      // Expected while Redis or the SMS gateway is away, which is logged once by whatever watches it: one
      // line per request, not a stack trace per request that pages someone for an outage already known.
      const cause = plugError.cause instanceof Error ? plugError.cause.message : undefined;
      request.log.warn({ errorId: plugError.code, status: plugError.statusCode, cause }, plugError.message);
    } else if (plugError.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed');
    } else {
      request.log.info({ errorId: plugError.code, status: plugError.statusCode }, plugError.message);
    }
    return sendError(reply, plugError, body);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, errors.routeNotFound({ message: `No route ${request.method} ${request.url.split('?')[0]}` }), body),
  );
}

/** A route tree that answers errors in its own shape (legacy v1), told by its URL prefix before routing. */
export interface ErrorShapeByPrefix {
  prefix: string;
  body: ErrorBody;
}

function shapeFor(url: string, shapesByPrefix: ErrorShapeByPrefix[]): ErrorBody | undefined {
  return shapesByPrefix.find(({ prefix }) => url.startsWith(prefix))?.body;
}

/**
 * Errors Fastify raises before routing (a URL that is not valid percent-encoding, a path parameter too
 * long); passed to Fastify as its `frameworkErrors` option so they get the envelope like everything else.
 */
export function frameworkErrorHandler(shapesByPrefix: ErrorShapeByPrefix[] = []) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const plugError = toPlugError(error);
    request.log.info({ errorId: plugError.code, status: plugError.statusCode }, plugError.message);
    // Fastify sends these without running the onRequest and onSend hooks, which stamp every other answer.
    setStandardHeaders(request, reply);
    reply.header('Plug-Version', API_VERSIONS[0]);
    return sendError(reply, plugError, shapeFor(request.url, shapesByPrefix));
  };
}

/** The path of the request line at the start of `packet`, if it starts with one. */
const REQUEST_LINE = /^[A-Z]+ (\/\S*) HTTP\//;

/**
 * The request each connection is serving until its answer is sent. A body that stalls is timed out by Node's
 * parser, which hands `clientErrorHandler` no bytes of the request line by then; its answer keeps the
 * request's id, under which the request was already logged.
 */
const requestsBeingServed = new WeakMap<Socket, { url: string; id: string }>();

/**
 * Requests Node's HTTP parser rejects (oversized headers, bytes that are not HTTP, a stalled client)
 * never become Fastify requests; passed as Fastify's `clientErrorHandler`, this answers them in the
 * envelope on the raw socket and closes it. The shape follows the path when the bytes Node hands over
 * (the chunk it was parsing) begin with the request line, as they do unless the headers came in pieces.
 */
export function clientErrorHandler(shapesByPrefix: ErrorShapeByPrefix[] = []) {
  return function answerOnSocket(this: FastifyInstance, error: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket) {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const plugError =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? errors.headersTooLarge()
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? errors.requestTimeout()
          : errors.invalidParameter({ message: 'The request is not valid HTTP' });
    if (socket.writable) {
      const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket.toString('latin1', 0, 2048) : '';
      const beingServed = requestsBeingServed.get(socket);
      const url = REQUEST_LINE.exec(packet)?.[1] ?? beingServed?.url ?? '';
      const body = JSON.stringify((shapeFor(url, shapesByPrefix) ?? toEnvelope)(plugError));
      // Like every other answer, one support can find in the logs.
      const reqId = beingServed?.id ?? randomUUID();
      this.log.info({ reqId, errorId: plugError.code, status: plugError.statusCode, url: urlForLog(url) }, plugError.message);
      socket.write(
        `HTTP/1.1 ${plugError.statusCode} ${STATUS_CODES[plugError.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Plug-Version: ${API_VERSIONS[0]}\r\nX-Request-Id: ${reqId}\r\nCache-Control: no-store\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

async function errorEnvelope(app: FastifyInstance) {
  handleErrors(app);
  // Node answers an HTTP/1.1 request without Host itself, with a bare 400, unless the server is created
  // with `requireHostHeader: false` (the API's is): then it is refused here, in the envelope.
  app.addHook('onRequest', async (request) => {
    requestsBeingServed.set(request.raw.socket, { url: request.url, id: request.id });
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw errors.invalidParameter({ message: 'An HTTP/1.1 request needs a Host header', param: 'Host' });
    }
  });
  // A callback, not an async hook: it runs for every answer, and needs no promise.
  app.addHook('onResponse', (request, _reply, done) => {
    requestsBeingServed.delete(request.raw.socket);
    done();
  });
}

export default fp(errorEnvelope, { name: 'error-envelope', fastify: '5.x' });
