import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Headers every answer carries: the request id (what support asks for) and `no-store`, since every answer
 * is one tenant's live data and some carry secrets (webhook signing secrets, connect-link URLs, session
 * tokens): no cache may keep a copy unless a route says otherwise (the pages' assets do).
 */
export function setStandardHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', request.id);
  if (!reply.hasHeader('cache-control')) reply.header('Cache-Control', 'no-store');
}
