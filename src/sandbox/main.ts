/**
 * Runs the sandbox utility site on its own: `npx tsx src/sandbox/main.ts`.
 * SANDBOX_PORT (default 3001; 0 turns the site off, as for `npm start`) and SANDBOX_SHORT_SESSION_SECONDS
 * (default 60) mean what SPEC §9 says. It listens on loopback only.
 */
import { buildSandboxSite } from './site.ts';

function readInteger(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be an integer from ${min} to ${max}`);
    process.exit(1);
  }
  return value;
}

const port = readInteger('SANDBOX_PORT', 3001, 0, 65535);
const shortSessionSeconds = readInteger('SANDBOX_SHORT_SESSION_SECONDS', 60, 1, 86400);

if (port === 0) {
  console.log('SANDBOX_PORT=0: the sandbox site is turned off');
} else {
  const site = buildSandboxSite({ shortSessionSeconds, logger: true });
  await site.listen({ port, host: '127.0.0.1' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void site.close());
  }
}
