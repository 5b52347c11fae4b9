import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { errors, PlugError } from '../errors.ts';

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

export function sendError(reply: FastifyReply, error: PlugError) {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(error.statusCode).send(toEnvelope(error));
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
  if (first.keyword === 'additionalProperties') return `unknown field "${String(params.additionalProperty)}"`;
  if (first.keyword === 'required') return `missing required field "${String(params.missingProperty)}"`;
  const where = validationParam(error);
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
  const status = fastifyError.statusCode ?? 500;
  if (status === 413) return errors.payloadTooLarge();
  if (status === 415) return errors.unsupportedMediaType();
  if (status === 404) return errors.routeNotFound();
  if (status === 429) return errors.tooManyRequests();
  // Other client errors from Fastify's own checks (bad headers, bad URL encoding) carry no secrets.
  if (status >= 400 && status < 500) return errors.invalidParameter({ message: fastifyError.message });
  return errors.internal();
}

async function errorEnvelope(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const plugError = toPlugError(error);
    if (plugError.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed');
    } else {
      request.log.info({ errorId: plugError.code, status: plugError.statusCode }, plugError.message);
    }
    return sendError(reply, plugError);
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, errors.routeNotFound({ message: `No route ${request.method} ${request.url.split('?')[0]}` })));
}

export default fp(errorEnvelope, { name: 'error-envelope', fastify: '5.x' });
