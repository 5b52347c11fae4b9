/**
 * `npm run admin -- <command>`: operator tasks against the configured Redis (same environment as `npm start`).
 *
 *   create-org --name N --email E --password P   one JSON line { organizationId, userId, keyId, clientId, clientSecret }
 *   reset-password --email E --password P        sets a dashboard user's password, ends their sessions and lifts a
 *                                                two-factor login lock (for a locked-out admin)
 *   rotate-keys                                  re-seals every stored secret with the first ENCRYPTION_KEYS key
 *   revoke-key --org O --key K                   revokes API key K, named by its key_ id or its cli_ client id
 *                                                (its tokens stop working at once)
 *   delete-org --org O --confirm O               deletes organization O and everything it holds (its id twice:
 *                                                there is no undo)
 *
 * `--password -` reads the password from stdin instead (out of the process list and the shell history).
 * Results go to stdout as one JSON line; logs and errors go to stderr; bad usage exits 2, failures exit 1.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, redactUrl, type Config } from '../config.ts';
import { createContainer, type Container } from '../container.ts';
import { PlugError } from '../errors.ts';
import { resolveConfig } from '../local/resolve-config.ts';
import { loggerOptions } from '../logger.ts';
import { checkEncryptionKeys } from '../storage/encryption-key-check.ts';
import { createRedisClient } from '../storage/redis.ts';

export const USAGE = `usage: npm run admin -- <command>
  create-org --name <name> --email <email> --password <password>
  reset-password --email <email> --password <new password>
  rotate-keys
  revoke-key --org <organizationId> --key <apiKeyId or clientId>
  delete-org --org <organizationId> --confirm <organizationId>`;

export class UsageError extends Error {
  override name = 'UsageError';
}

type Command = (container: Container, args: string[]) => Promise<unknown>;

/** Parses `--flag value` options, all required, rejecting anything else. */
function requiredOptions<const N extends string>(args: string[], names: readonly N[]): Record<N, string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])), strict: true }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const missing = names.filter((n) => typeof values[n] !== 'string' || (values[n] as string).trim() === '');
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(', ')}`);
  return values as Record<N, string>;
}

const COMMANDS: Record<string, Command> = {
  'create-org': async (container, args) => {
    const { name, email, password } = requiredOptions(args, ['name', 'email', 'password']);
    const created = await container.services.organizations.createOrganization({ name, email, password });
    const { organizationId, userId, keyId, clientId, clientSecret } = created;
    return { organizationId, userId, keyId, clientId, clientSecret };
  },
  'rotate-keys': async (container, args) => {
    requiredOptions(args, []);
    return container.services.ctx.secrets.rotateAll();
  },
  'reset-password': async (container, args) => {
    const { email, password } = requiredOptions(args, ['email', 'password']);
    const user = await container.services.organizations.findUserByEmail(email);
    if (!user) throw new Error(`no user has the email ${email}`);
    await container.services.dashboardSessions.resetPassword(user, password);
    return { organizationId: user.organizationId, userId: user.id };
  },
  'revoke-key': async (container, args) => {
    const { org, key } = requiredOptions(args, ['org', 'key']);
    const { apiKeys } = container.services;
    const keyId = key.startsWith('cli_') ? ((await apiKeys.keyIdOfClient(org, key)) ?? key) : key;
    await apiKeys.revoke(org, keyId);
    return { organizationId: org, revokedKeyId: keyId };
  },
  'delete-org': async (container, args) => {
    const { org, confirm } = requiredOptions(args, ['org', 'confirm']);
    if (confirm !== org) throw new UsageError('--confirm must repeat the --org id: deleting an organization cannot be undone');
    return container.services.organizationRemoval.remove(org);
  },
};

/** Runs one command with its own connection; a CLI should fail fast instead of waiting for Redis forever. */
export async function runAdminCommand(config: Config, argv: string[]): Promise<unknown> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(name ? `unknown command "${name}"` : 'no command given');
  const redis = createRedisClient(config, `${config.keyPrefix}:admin`, { failFast: true });
  let connectionError: Error | undefined;
  redis.once('error', (error: Error) => (connectionError = error));
  const container = createContainer(config, { redis, logger: pino(loggerOptions(config), pino.destination(2)) });
  try {
    // Failing fast, a command only learns that the connection "is closed"; the client's own error says why.
    await redis.ping().catch((error: unknown) => {
      const where = config.redisClusterNodes.length > 0 ? 'REDIS_CLUSTER_NODES' : `REDIS_URL (${redactUrl(config.redisUrl)})`;
      throw new Error(`cannot reach Redis at ${where}: ${(connectionError ?? (error as Error)).message}`, { cause: error });
    });
    await checkEncryptionKeys(redis, container.services.ctx.keys, config.encryptionKeys);
    return await command(container, args);
  } finally {
    await container.close();
    redis.disconnect();
  }
}

/** `--password -`: the password is stdin's content (one trailing newline dropped). */
async function withPasswordFromStdin(argv: string[]): Promise<string[]> {
  const spaced = argv.findIndex((arg, index) => arg === '--password' && argv[index + 1] === '-');
  const joined = argv.indexOf('--password=-');
  if (spaced === -1 && joined === -1) return argv;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  return spaced === -1 ? argv.with(joined, `--password=${password}`) : argv.with(spaced + 1, password);
}

async function main(): Promise<number> {
  try {
    const { config } = await resolveConfig(process.env);
    const result = await runAdminCommand(config, await withPasswordFromStdin(process.argv.slice(2)));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    const message = error instanceof ConfigError || error instanceof PlugError ? error.message : `admin command failed: ${(error as Error).message}`;
    process.stderr.write(`${message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
