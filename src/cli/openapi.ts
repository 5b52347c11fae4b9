/**
 * `npm run openapi` writes `openapi/openapi.yaml` from the route schemas; `npm run openapi -- --check`
 * exits 1 when the committed file is stale (CI runs it). Generation needs no Redis and reads no environment:
 * the document is the same on every machine.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pino from 'pino';
import { stringify } from 'yaml';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';

export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url));

/** Fixed settings, so that nothing of the local environment (ports, URLs) leaks into the document. */
const GENERATOR_ENV = {
  ENCRYPTION_KEYS: `openapi:${Buffer.alloc(32).toString('base64')}`,
  LOG_LEVEL: 'silent',
  BOOTSTRAP_DEMO: 'false',
};

/**
 * Builds the API (no workers) and asks it for its OpenAPI document. The Redis client never connects:
 * it is lazy and nothing runs a command while routes are registered (queues open on first use).
 */
export async function generateOpenApiDocument(redis = new Redis({ lazyConnect: true, enableOfflineQueue: false })) {
  const config = loadConfig(GENERATOR_ENV);
  const app = await buildApp(config, { redis, logger: pino({ level: 'silent' }) });
  try {
    await app.ready();
    return app.swagger() as Record<string, unknown>;
  } finally {
    await app.close();
    redis.disconnect();
  }
}

/** Sorted keys keep the file stable however routes are registered, and its diffs small. */
export function toYaml(document: Record<string, unknown>): string {
  return stringify(document, { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false });
}

async function main(argv: string[]): Promise<number> {
  const isCheck = argv.includes('--check');
  const generated = toYaml(await generateOpenApiDocument());
  if (!isCheck) {
    await writeFile(OPENAPI_FILE, generated);
    process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
    return 0;
  }
  const committed = await readFile(OPENAPI_FILE, 'utf8').catch(() => null);
  if (committed === generated) {
    process.stdout.write('openapi/openapi.yaml is current\n');
    return 0;
  }
  process.stderr.write(
    committed === null
      ? 'openapi/openapi.yaml is missing: run `npm run openapi` and commit it\n'
      : 'openapi/openapi.yaml is stale (the route schemas changed): run `npm run openapi` and commit the result\n',
  );
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
