/**
 * SPEC §1 page-number pagination: `?page=0&size=20&sort=createdAt,desc` → `{ data, page: { number, size,
 * totalElements, totalPages } }`. Ties on the sort field (an ISO timestamp, or a provider's name) are broken
 * by id, so pages never overlap. The default list (by creation, unfiltered) reads one page of the
 * organization's creation index (`pageOfCreationIndex`); filters and other sort fields are applied in memory
 * (`paginate`).
 */
import { errors } from '../errors.ts';
import type { RedisClient } from '../storage/redis.ts';

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
/**
 * Far beyond any list's last page, and small enough that a page's offset stays an integer that Redis
 * reads as one (`String(1e21)` is `"1e+21"`, which ZRANGE refuses).
 */
export const MAX_PAGE_NUMBER = 1_000_000_000;

/**
 * Reads `field,direction` (direction optional, default desc); anything else is the client's 400. Without
 * `sort`, a list is by `fallback` in `fallbackDirection`: newest first, unless a list has a more natural order.
 */
export function parseSort<Field extends string>(
  text: string | undefined,
  fields: readonly Field[],
  fallback: Field,
  fallbackDirection: 'asc' | 'desc' = 'desc',
): PageRequest<Field>['sort'] {
  if (text === undefined || text === '') return { field: fallback, direction: fallbackDirection };
  const [field, direction = 'desc', ...rest] = text.split(',').map((part) => part.trim());
  if (!fields.includes(field as Field) || (direction !== 'asc' && direction !== 'desc') || rest.length > 0) {
    throw errors.invalidParameter({
      message: `sort must be one of ${fields.map((f) => `${f}[,asc|desc]`).join(', ')} (desc when no direction is given)`,
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
  return pageOf(sorted.slice(start, start + request.size), request, items.length);
}

export function pageOf<T>(data: T[], request: PageRequest<string>, totalElements: number): Page<T> {
  return { data, page: { number: request.page, size: request.size, totalElements, totalPages: Math.ceil(totalElements / request.size) } };
}

/**
 * The ids on the requested page of a sorted set scored by creation time (ms), and its size, in the order
 * `paginate` gives by `createdAt` (equal scores order by member, the id). An organization with 100,000
 * credentials is listed a page at a time, not loaded whole for every request.
 */
export async function pageOfCreationIndex(redis: RedisClient, key: string, request: PageRequest<string>): Promise<{ ids: string[]; totalElements: number }> {
  const start = request.page * request.size;
  const stop = start + request.size - 1;
  const [ids, totalElements] = await Promise.all([
    request.sort.direction === 'asc' ? redis.zrange(key, start, stop) : redis.zrange(key, start, stop, 'REV'),
    redis.zcard(key),
  ]);
  return { ids, totalElements };
}
