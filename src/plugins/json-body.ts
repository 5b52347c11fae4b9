import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { errors } from '../errors.ts';

/** JSON is UTF-8 (RFC 8259 §8.1); a byte sequence that is not fails instead of becoming U+FFFD in our data. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Request bodies: JSON only (routes that take forms register their own parser), strictly UTF-8. Fastify's
 * own JSON parser decodes leniently and ignores `charset`, so a Latin-1 body would be stored with its
 * accented letters replaced; here a `charset` other than UTF-8 is a 415 and bytes that are not UTF-8 a 400.
 * A text/plain body is a 415 too, not a string handed to a route.
 */
async function jsonBody(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  // HAL clients of the v1 API send their bodies as what they read: `application/hal+json`, JSON all the same.
  app.addContentTypeParser(['application/json', 'application/hal+json'], { parseAs: 'buffer' }, (request, body, done) => {
    const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(errors.unsupportedMediaType({ message: `Unsupported charset "${charset}": send JSON as UTF-8` }), undefined);
      return;
    }
    let text: string;
    try {
      text = STRICT_UTF8.decode(body as Buffer);
    } catch {
      done(errors.malformedJson({ message: 'The request body is not valid UTF-8' }), undefined);
      return;
    }
    parseJson(request, text, (error, parsed) => {
      // Fastify's parser refuses prototype-poisoning keys with the same error as broken JSON; say which it is.
      if (error && isJson(text)) {
        done(errors.invalidParameter({ message: 'The request body may not use the keys "__proto__" or "constructor.prototype"' }), undefined);
        return;
      }
      done(error, parsed);
    });
  });
}

export default fp(jsonBody, { name: 'json-body', fastify: '5.x' });
