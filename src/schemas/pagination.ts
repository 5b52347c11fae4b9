import { Type, type TSchema } from 'typebox';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_NUMBER, MAX_PAGE_SIZE } from '../services/pagination.ts';

/**
 * SPEC §1 page-number query; `sort` is checked by `parseSort` against the fields a list allows, and defaults
 * to the first of them in `defaultDirection` (as the route's `parseSort` call says).
 */
export function pageQuery(sortFields: readonly string[], defaultDirection: 'asc' | 'desc' = 'desc') {
  return {
    page: Type.Integer({ minimum: 0, maximum: MAX_PAGE_NUMBER, default: 0 }),
    size: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
    sort: Type.Optional(
      Type.String({ maxLength: 64, description: `${sortFields.map((field) => `${field},asc|desc`).join(' or ')} (default ${sortFields[0]},${defaultDirection})` }),
    ),
  };
}

/** The response schema of a list: SPEC §1's `{ data, page }` around `item`. */
export function PageSchema<T extends TSchema>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    page: Type.Object({ number: Type.Integer(), size: Type.Integer(), totalElements: Type.Integer(), totalPages: Type.Integer() }),
  });
}
