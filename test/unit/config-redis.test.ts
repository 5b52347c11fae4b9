import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, loadConfig, parseRedisClusterNodes } from '../../src/config.ts';
import { createRedisClient, isCluster } from '../../src/storage/redis.ts';

const required = { ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };

t.test('REDIS_CLUSTER_NODES lists host:port seeds, IPv6 in brackets', async (t) => {
  t.same(parseRedisClusterNodes('10.0.0.1:7001, redis-2.internal:7002,[::1]:7003'), [
    { host: '10.0.0.1', port: 7001 },
    { host: 'redis-2.internal', port: 7002 },
    { host: '::1', port: 7003 },
  ]);
  for (const bad of ['10.0.0.1', 'host:0', 'host:65536', 'redis://host:7001', 'host:7001,', '::1:7001']) {
    t.throws(() => parseRedisClusterNodes(bad), `"${bad}" is refused`);
  }
});

t.test('one Redis by default, a cluster when REDIS_CLUSTER_NODES is set', async (t) => {
  t.same(loadConfig(required).redisClusterNodes, []);
  const clustered = loadConfig({ ...required, REDIS_CLUSTER_NODES: '127.0.0.1:7001,127.0.0.1:7002' });
  t.same(clustered.redisClusterNodes, [
    { host: '127.0.0.1', port: 7001 },
    { host: '127.0.0.1', port: 7002 },
  ]);
  t.equal(clustered.isRedisUrlExplicit, false);
});

t.test('a bad node list or both settings at once stop start-up, naming the variable', async (t) => {
  t.throws(() => loadConfig({ ...required, REDIS_CLUSTER_NODES: 'nodes-here' }), { name: 'ConfigError', message: /REDIS_CLUSTER_NODES/ });
  try {
    loadConfig({ ...required, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7001' });
    t.fail('expected a ConfigError');
  } catch (error) {
    t.type(error, ConfigError);
    t.match((error as ConfigError).problems, [/either REDIS_URL .* or REDIS_CLUSTER_NODES/]);
  }
});

t.test('the client is a Cluster exactly when cluster nodes are configured', async (t) => {
  const unreachable = { redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: [] };
  const single = createRedisClient(unreachable, 'unit', { failFast: true });
  const cluster = createRedisClient({ ...unreachable, redisClusterNodes: [{ host: '127.0.0.1', port: 1 }] }, 'unit', { failFast: true });
  for (const client of [single, cluster]) {
    client.on('error', () => {});
    t.teardown(() => client.disconnect());
  }
  t.equal(isCluster(single), false);
  t.equal(isCluster(cluster), true);
  await t.rejects(cluster.get('k'), 'fail-fast: a cluster nobody answers for fails the command instead of queueing it');
});

t.test('a bad URL is named without the password it holds', async (t) => {
  for (const [name, value] of [
    ['REDIS_URL', 'http://:hunter2@redis.internal:6379'],
    ['SMS_WEBHOOK_URL', 'ftp://user:hunter2@sms.internal/hook'],
    ['REDIS_URL', 'http://:hun/ter2@redis.internal:6379'],
    ['REDIS_URL', 'redis:hunter2@127.0.0.1:1'],
    ['SMS_WEBHOOK_URL', 'http:hunter2@sms.internal/hook'],
  ] as const) {
    try {
      loadConfig({ ...required, SMS_GATEWAY: 'webhook', SMS_WEBHOOK_URL: 'https://sms.example/hook', [name]: value });
      t.fail('expected a ConfigError');
    } catch (error) {
      const problems = (error as ConfigError).problems.join('\n');
      t.match(problems, new RegExp(`${name} must be`), name);
      t.notMatch(problems, /hunter2|ter2/, `${name}: no password`);
      t.match(problems, /:(\/\/)?\*\*\*@/, `${name}: where it was is shown`);
    }
  }
});
