/** What every v1 route shares: its OpenAPI tag and deprecation, its error shape, and page parameters. */
import { Type } from 'typebox';
import type { PlugError } from '../../errors.ts';
import { V1ErrorSchema } from '../../legacy/schemas.ts';
import { ref } from '../../schemas/index.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_NUMBER, MAX_PAGE_SIZE } from '../../services/pagination.ts';

export const v1Route = { tags: ['v1'], deprecated: true } as const;
export const v1Security = [{ bearerAuth: [] }];

/** SPEC §7's error body, rendered from the same catalog errors the current API sends in its envelope. */
export function toV1Error(error: PlugError) {
  return { status: error.statusCode, message: error.message };
}

export function v1Errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((status) => [status, ref(V1ErrorSchema)]));
}

export const PageQuery = {
  page: Type.Integer({ minimum: 0, maximum: MAX_PAGE_NUMBER, default: 0, description: 'Zero-based' }),
  size: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
};
