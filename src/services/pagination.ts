/**
 * SPEC §1 page-number pagination: `?page=0&size=20&sort=createdAt,desc` → `{ data, page: { number, size,
 * totalElements, totalPages } }`. Lists are small per organization, so they are filtered and sorted in
 * memory; the sort field is always an ISO timestamp, with the id as tie-breaker so pages never overlap.
 */
import { errors } from '../errors.ts';

export interface PageRequest<Field extends string> {
  page: number;
  size: number;
  sort: { field: Field; direction: 'asc' | 'desc' };
}

export interface Page<T> {
  data: T[];
  page: { number: number; size: number; totalElements: number; totalPages: number };
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Reads `field,direction` (direction optional, default desc); anything else is the client's 400. */
export function parseSort<Field extends string>(text: string | undefined, fields: readonly Field[], fallback: Field): PageRequest<Field>['sort'] {
  if (text === undefined || text === '') return { field: fallback, direction: 'desc' };
  const [field, direction = 'desc', ...rest] = text.split(',').map((part) => part.trim());
  if (!fields.includes(field as Field) || (direction !== 'asc' && direction !== 'desc') || rest.length > 0) {
    throw errors.invalidParameter({
      message: `sort must be one of ${fields.map((f) => `${f},asc|desc`).join(', ')}`,
      param: 'sort',
      value: text,
    });
  }
  return { field: field as Field, direction };
}

export function paginate<T extends { id: string } & Record<Field, string | null>, Field extends string>(
  items: T[],
  request: PageRequest<Field>,
): Page<T> {
  const { field, direction } = request.sort;
  const sign = direction === 'asc' ? 1 : -1;
  const sorted = [...items].sort((a, b) => sign * ((a[field] ?? '').localeCompare(b[field] ?? '') || a.id.localeCompare(b.id)));
  const start = request.page * request.size;
  return {
    data: sorted.slice(start, start + request.size),
    page: {
      number: request.page,
      size: request.size,
      totalElements: items.length,
      totalPages: Math.ceil(items.length / request.size),
    },
  };
}
