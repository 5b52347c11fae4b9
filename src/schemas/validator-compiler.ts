import AjvCompiler from '@fastify/ajv-compiler';
import type { FastifyRequest } from 'fastify';
import { errors } from '../errors.ts';

const baseAjvOptions = { removeAdditional: false, useDefaults: true, allErrors: false } as const;

interface AjvLikeError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message: string;
}

type Validate = ((data: unknown, context?: unknown) => unknown) & { errors?: AjvLikeError[] | null; schemaEnv?: unknown };

/** Unpaired UTF-16 surrogates: with the `u` flag, a pair is one code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;

/** No request of ours nests this deep; a walk of a body nested thousands deep would overflow the stack. */
const MAX_NESTING = 64;

/**
 * What Ajv lets through that must not get in:
 * - a non-finite number in a coerced part: Ajv turns `?size=Infinity` into `Infinity` and then skips
 *   `minimum` and `maximum`, which check finite numbers only (a page of `Infinity` reached Redis as NaN);
 * - a string holding a lone surrogate (JSON's `"\ud800"`): valid JSON, but not Unicode text; Redis's Lua
 *   JSON decoder refuses it, so a record holding one could no longer be changed or deleted.
 * - values nested more than MAX_NESTING deep, in the routes whose schemas allow fields of any shape.
 * Returns the first such value's place (its keys, outermost first) and what is wrong with it.
 */
function firstUnacceptable(value: unknown, depth = 0): { keys: string[]; message: string } | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : { keys: [], message: 'must be a finite number' };
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? { keys: [], message: 'must be Unicode text (it holds half of a surrogate pair)' } : null;
  if (value === null || typeof value !== 'object') return null;
  if (depth >= MAX_NESTING) return { keys: [], message: `nests more than ${MAX_NESTING} levels deep` };
  for (const [key, item] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key)) return { keys: [key], message: 'is a field name that is not Unicode text' };
    const found = firstUnacceptable(item, depth + 1);
    if (found) {
      found.keys.unshift(key);
      return found;
    }
  }
  return null;
}

/** Ajv coerces text to a number as `Number()` reads it (`' '` as 0, `'0x10'` as 16): numbers come in decimal. */
const DECIMAL_NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** The properties of a query, params or headers schema that arrive as text and are coerced to numbers. */
function numericProperties(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  return Object.keys(properties).filter((name) => ['integer', 'number'].includes(String(properties[name]?.type)));
}

/** The first of `names` whose text (or one of whose repeated texts) is not a decimal number. */
function firstNotDecimal(data: unknown, names: string[]): string | undefined {
  if (names.length === 0 || data === null || typeof data !== 'object') return undefined;
  return names.find((name) => {
    const raw = (data as Record<string, unknown>)[name];
    return (Array.isArray(raw) ? raw : [raw]).some((text) => typeof text === 'string' && !DECIMAL_NUMBER.test(text));
  });
}

function refusingUnacceptable(validate: Validate, textNumbers: string[]): Validate {
  const checked: Validate = (data, context) => {
    const notDecimal = firstNotDecimal(data, textNumbers);
    if (notDecimal !== undefined) {
      checked.errors = [{ instancePath: `/${notDecimal}`, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a number in decimal digits' }];
      return false;
    }
    const valid = validate(data, context);
    if (valid !== true) {
      checked.errors = validate.errors;
      return valid;
    }
    const found = firstUnacceptable(data);
    const instancePath = found?.keys.map((key) => `/${key}`).join('') ?? '';
    checked.errors = found && [{ instancePath, schemaPath: '#', keyword: 'type', params: {}, message: found.message }];
    return found === null;
  };
  // Fastify hands Ajv's own validators the request as parent, so a coerced root value can be written back.
  checked.schemaEnv = validate.schemaEnv;
  return checked;
}

/**
 * Bodies are validated strictly (a number where a string belongs is a 400, not silently converted);
 * query strings, params and headers arrive as text and are coerced to their schema's types, numbers only
 * from decimal text. Either way, what `firstUnacceptable` finds is a 400 too.
 */
export function buildValidatorCompiler() {
  const factory = AjvCompiler();
  return (externalSchemas: unknown, ajvServerOptions: unknown) => {
    const options = ajvServerOptions as { customOptions?: object; plugins?: unknown[] };
    const strict = factory(externalSchemas as never, { ...options, customOptions: { ...baseAjvOptions, coerceTypes: false } } as never);
    const coercing = factory(externalSchemas as never, { ...options, customOptions: { ...baseAjvOptions, coerceTypes: 'array' } } as never);
    return (context: { httpPart?: string; schema?: unknown }) =>
      context.httpPart === 'body'
        ? refusingUnacceptable(strict(context as never) as Validate, [])
        : refusingUnacceptable(coercing(context as never) as Validate, numericProperties(context.schema));
  };
}

/**
 * A `preValidation` hook: a route that declares no body (an action such as `disable` or `resend`) takes
 * none, as strictly as the others take theirs: a field sent to it is unknown, not ignored. `{}` passes.
 */
export async function refuseBodyWhereNoneIsDeclared(request: FastifyRequest): Promise<void> {
  const { body } = request;
  // An unknown route is a 404 whatever its body.
  if (request.is404 || request.routeOptions.schema?.body !== undefined || body === undefined || body === null) return;
  const isObject = typeof body === 'object' && !Array.isArray(body);
  const [field] = isObject ? Object.keys(body) : [];
  if (isObject && field === undefined) return;
  throw field === undefined
    ? errors.invalidParameter({ message: 'This request takes no body' })
    : errors.invalidParameter({ message: `unknown field "${field}": this request takes no body`, param: field });
}
