/**
 * Redis killed (SIGKILL) and later shut down cleanly, each time restarted from its AOF, while clients create
 * credentials and send test events: every request that got a 2xx must find its data afterwards. A request
 * may fail or hang while Redis is away; what it must never do is answer 2xx and lose the write.
 */
import type { Test } from 'tap';
import { sleep } from '../../bench/lib/system.ts';
import { SANDBOX_PROVIDER_ID } from '../../bench/benchmarks/fixtures.ts';
import { createPrivateRedis } from '../private-redis.ts';
import { setUpScenario } from './setup.ts';

const LANES = 8;
const LOAD_MS = 14_000;
const CHECK_CONCURRENCY = 16;

export default async function redisRestart(t: Test) {
  const redis = await createPrivateRedis();
  t.teardown(() => redis.destroy());
  const { client, endpointId } = await setUpScenario(t, { name: 'redis-restart', redisUrl: redis.url, roles: ['api', 'sandbox', 'workers'] });

  const credentialIds: string[] = [];
  const eventIds: string[] = [];
  let failedRequests = 0;
  const stopAt = Date.now() + LOAD_MS;
  const lane = async (lane: number) => {
    for (let i = 0; Date.now() < stopAt; i += 1) {
      try {
        if (i % 2 === 0) {
          const credential = await client.call<{ id: string }>('POST', '/plug/credentials', {
            providerId: SANDBOX_PROVIDER_ID,
            username: `resilience-${lane}-${i}`,
            password: 'pass_good',
          });
          credentialIds.push(credential.id);
        } else {
          eventIds.push((await client.call<{ id: string }>('POST', `/plug/webhooks/endpoints/${endpointId}/test`)).id);
        }
      } catch {
        failedRequests += 1;
      }
    }
  };
  const outages = (async () => {
    await sleep(LOAD_MS * 0.25);
    await redis.kill();
    await sleep(500);
    await redis.start();
    await sleep(LOAD_MS * 0.35);
    await redis.shutdown();
    await sleep(500);
    await redis.start();
  })();
  await Promise.all([outages, ...Array.from({ length: LANES }, (_, i) => lane(i))]);
  t.comment(`${credentialIds.length} credentials and ${eventIds.length} events acknowledged, ${failedRequests} requests failed during the outages`);
  t.ok(credentialIds.length > 50 && eventIds.length > 50, 'the load kept going around the restarts');

  const lost = { credentials: [] as string[], creationEvents: [] as string[], events: [] as string[] };
  await forEachConcurrently(credentialIds, async (id) => {
    if (!(await exists(() => client.call('GET', `/plug/credentials/${id}`)))) lost.credentials.push(id);
    const created = await client.call<{ data: unknown[] }>('GET', `/plug/events?credentialId=${id}&type=credential.created`);
    if (created.data.length !== 1) lost.creationEvents.push(id);
  });
  await forEachConcurrently(eventIds, async (id) => {
    if (!(await exists(() => client.call('GET', `/plug/events/${id}`)))) lost.events.push(id);
  });
  t.same(lost, { credentials: [], creationEvents: [], events: [] }, 'every acknowledged credential, its credential.created event and every acknowledged event survived');
}

async function exists(request: () => Promise<unknown>): Promise<boolean> {
  try {
    await request();
    return true;
  } catch {
    return false;
  }
}

async function forEachConcurrently(ids: string[], check: (id: string) => Promise<void>) {
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: CHECK_CONCURRENCY }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) await check(id);
    }),
  );
}
