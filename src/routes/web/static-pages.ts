/**
 * The Dashboard (`/`) and the hosted MFA page (`/connect`): plain HTML, CSS and ES modules from `src/web`,
 * served as they are (no build step) and read into memory once, since they are small and never change
 * while the process runs. An ETag lets browsers revalidate instead of downloading again.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../errors.ts';

const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
const PAGES: Record<string, string> = { '/': 'index.html', '/connect': 'connect.html' };

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface StaticFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

function load(relativePath: string): StaticFile {
  const body = readFileSync(join(WEB_ROOT, relativePath));
  const contentType = CONTENT_TYPES[extname(relativePath)];
  if (!contentType) throw new Error(`src/web/${relativePath}: no content type for this extension`);
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** Every file under `assets/`, keyed by its path below it (`views/security.js`). */
function loadAssets(directory = 'assets', assets = new Map<string, StaticFile>()): Map<string, StaticFile> {
  for (const entry of readdirSync(join(WEB_ROOT, directory), { withFileTypes: true })) {
    const relativePath = `${directory}/${entry.name}`;
    if (entry.isDirectory()) loadAssets(relativePath, assets);
    else if (entry.isFile()) assets.set(relativePath.slice('assets/'.length), load(relativePath));
  }
  return assets;
}

function send(file: StaticFile, request: FastifyRequest, reply: FastifyReply) {
  reply.header('Cache-Control', 'no-cache').header('ETag', file.etag);
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.type(file.contentType).send(file.body);
}

export default async function staticPages(app: FastifyInstance) {
  const routeOptions = { schema: { hide: true }, config: { rateLimit: false as const } };
  for (const [url, fileName] of Object.entries(PAGES)) {
    const page = load(fileName);
    app.get(url, routeOptions, async (request, reply) => send(page, request, reply));
  }
  const assets = loadAssets();
  app.get<{ Params: { '*': string } }>('/assets/*', routeOptions, async (request, reply) => {
    const file = assets.get(request.params['*']);
    if (!file) throw errors.routeNotFound();
    return send(file, request, reply);
  });
}
