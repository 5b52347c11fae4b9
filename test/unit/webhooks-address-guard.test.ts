import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns';
import got from 'got';
import {
  WEBHOOK_TARGET_REFUSED,
  WebhookTargetRefusedError,
  checkAddress,
  checkEndpointUrl,
  guardedLookup,
  parseCidrList,
} from '../../src/webhooks/address-guard.ts';

const nothingAllowed = parseCidrList('');
const loopbackAllowed = parseCidrList('127.0.0.0/8,::1/128');

t.test('checkAddress refuses every non-public range and explains why', async (t) => {
  const refused: Array<[ip: string, reason: RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['10.0.0.1', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['100.64.0.1', /CGNAT/],
    ['169.254.169.254', /cloud metadata/],
    ['168.63.129.16', /cloud metadata/],
    ['169.254.1.1', /link-local/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['192.0.0.8', /IETF protocol assignment/],
    ['192.0.2.1', /documentation/],
    ['198.51.100.7', /documentation/],
    ['203.0.113.9', /documentation/],
    ['198.18.0.1', /benchmarking/],
    ['198.19.255.1', /benchmarking/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['240.0.0.1', /reserved/],
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['fd00:ec2::254', /cloud metadata/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['ff02::1', /multicast/],
    ['2001:db8::1', /documentation/],
    ['3fff::1', /documentation/],
    ['2001:2::1', /benchmarking/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['::ffff:127.0.0.1', /IPv4-mapped address of 127\.0\.0\.1, a loopback/],
    ['::ffff:7f00:1', /IPv4-mapped address of 127\.0\.0\.1/],
    ['::ffff:169.254.169.254', /IPv4-mapped address of 169\.254\.169\.254, the cloud metadata/],
    ['::ffff:10.1.2.3', /private/],
    ['64:ff9b::127.0.0.1', /NAT64 address of 127\.0\.0\.1/],
    ['64:ff9b::a9fe:a9fe', /NAT64 address of 169\.254\.169\.254/],
    ['64:ff9b:1::808:808', /local-use NAT64/],
    ['2002:7f00:1::', /6to4 address of 127\.0\.0\.1/],
    ['2002:a00:1:0:0:0:0:1', /6to4 address of 10\.0\.0\.1/],
    ['100::1', /not a global unicast/],
    ['fec0::1', /not a global unicast/],
    ['not-an-ip', /not an IP address/],
    ['127.1', /not an IP address/],
  ];
  for (const [ip, reason] of refused) {
    const verdict = checkAddress(ip, nothingAllowed);
    t.equal(verdict.allowed, false, `${ip} is refused`);
    if (!verdict.allowed) t.match(verdict.reason, reason, `${ip}: ${verdict.reason}`);
  }
});

t.test('checkAddress allows public unicast, including IPv6 forms of public IPv4', async (t) => {
  for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:93.184.216.34', '64:ff9b::8.8.8.8', '2002:808:808::1']) {
    t.same(checkAddress(ip, nothingAllowed), { allowed: true }, ip);
  }
});

t.test('the allow-list overrides refusal', async (t) => {
  t.same(checkAddress('127.0.0.1', loopbackAllowed), { allowed: true });
  t.same(checkAddress('::1', loopbackAllowed), { allowed: true });
  t.same(checkAddress('::ffff:127.0.0.1', loopbackAllowed), { allowed: true }, 'an IPv4 range covers its mapped form');
  t.equal(checkAddress('64:ff9b::127.0.0.1', loopbackAllowed).allowed, false, 'but not NAT64, which reaches another host');
  t.equal(checkAddress('10.0.0.1', loopbackAllowed).allowed, false, 'only the listed ranges');
  const docker = parseCidrList('172.16.0.0/12, fd00::/8');
  t.same(checkAddress('172.18.0.5', docker), { allowed: true });
  t.same(checkAddress('fd00::5', docker), { allowed: true });
  t.equal(checkAddress('fd00:ec2::254', parseCidrList('fd00:ec2::254')).allowed, true, 'even the metadata address, if listed');
});

t.test('parseCidrList', async (t) => {
  t.same(parseCidrList(' 127.0.0.0/8 , ::1/128, ').cidrs, ['127.0.0.0/8', '::1/128'], 'trims and skips empty entries');
  t.same(parseCidrList('').cidrs, []);
  const single = parseCidrList('10.1.2.3');
  t.ok(single.includes('10.1.2.3'), 'a bare address is a single host');
  t.notOk(single.includes('10.1.2.4'));
  t.notOk(single.includes('not-an-ip'));
  t.ok(parseCidrList('0.0.0.0/0').includes('10.9.9.9'), 'prefix 0 covers everything');
  for (const bad of ['127.0.0.0/33', '::1/129', '127.0.0.0/', '127.0.0.0/8/8', '127.0.0.0/-1', '127.0.0.0/0x8', 'localhost/8', '10.0.0/8', 'fe80::1%eth0/64']) {
    t.throws(() => parseCidrList(`::1/128,${bad}`), { message: new RegExp(`"${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is not a CIDR range`) }, bad);
  }
});

t.test('checkEndpointUrl', async (t) => {
  const table: Array<[url: string, allow: typeof nothingAllowed, expected: true | RegExp]> = [
    ['https://hooks.example.com/plugboard', nothingAllowed, true],
    ['https://93.184.216.34:8443/hook', nothingAllowed, true],
    ['http://hooks.example.com/plugboard', nothingAllowed, /use https/],
    ['http://hooks.example.com/plugboard', loopbackAllowed, /use https/],
    ['http://93.184.216.34/hook', nothingAllowed, /use https/],
    ['http://10.0.0.1', nothingAllowed, /10\.0\.0\.1 is a private address.*WEBHOOK_ALLOWED_TARGETS/],
    ['https://10.0.0.1', nothingAllowed, /private/],
    ['http://169.254.169.254/latest/meta-data', nothingAllowed, /cloud metadata/],
    ['http://169.254.169.254/latest/meta-data', loopbackAllowed, /cloud metadata/],
    ['http://[::ffff:127.0.0.1]/', nothingAllowed, /IPv4-mapped address of 127\.0\.0\.1/],
    ['http://[::ffff:127.0.0.1]/', loopbackAllowed, true],
    ['http://[::1]:9000/', nothingAllowed, /loopback/],
    ['http://[::1]:9000/', loopbackAllowed, true],
    ['http://2130706433/', nothingAllowed, /127\.0\.0\.1 is a loopback/],
    ['http://0x7f.1/', nothingAllowed, /127\.0\.0\.1 is a loopback/],
    ['http://017700000001/', nothingAllowed, /loopback/],
    ['http://0/', nothingAllowed, /unspecified/],
    ['http://127.0.0.1:4000/hook', loopbackAllowed, true],
    ['http://localhost:4000/hook', nothingAllowed, /localhost: 127\.0\.0\.1 is a loopback/],
    ['https://api.LOCALHOST./hook', nothingAllowed, /api\.localhost\.: 127\.0\.0\.1 is a loopback/],
    ['http://localhost:4000/hook', loopbackAllowed, true],
    ['https://user:pass@hooks.example.com/', nothingAllowed, /credentials/],
    ['https://token@hooks.example.com/', nothingAllowed, /credentials/],
    ['https://hooks.example.com:0/', nothingAllowed, /port 0/],
    ['ftp://hooks.example.com/', nothingAllowed, /only http and https/],
    ['file:///etc/passwd', nothingAllowed, /only http and https/],
    ['hooks.example.com/plugboard', nothingAllowed, /not a valid absolute URL/],
    ['https://[2001::a9fe:a9fe]/', nothingAllowed, /Teredo/],
    ['https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', nothingAllowed, /IETF protocol assignment/],
    ['https://[2001:2::1]/', nothingAllowed, /benchmarking/],
    ['https://[2001:4860:4860::8888]/', nothingAllowed, true],
  ];
  for (const [url, allow, expected] of table) {
    const verdict = checkEndpointUrl(url, allow);
    if (expected === true) t.same(verdict, { ok: true }, `${url} with [${allow.cidrs.join(',')}] is accepted`);
    else t.match(verdict, { ok: false, reason: expected }, `${url} with [${allow.cidrs.join(',')}] is refused`);
  }
});

type Answers = Record<string, LookupAddress[]>;
/** Stands in for dns.lookup: answers from a table, records what it was asked. */
function stubLookup(answers: Answers) {
  const calls: Array<{ hostname: string; options: LookupAllOptions }> = [];
  const lookup = (
    hostname: string,
    options: LookupAllOptions,
    callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ) => {
    calls.push({ hostname, options });
    const addresses = answers[hostname];
    if (addresses) queueMicrotask(() => callback(null, addresses));
    else queueMicrotask(() => callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []));
  };
  return { lookup, calls };
}

const answers: Answers = {
  'loopback.test': [{ address: '127.0.0.1', family: 4 }],
  'private.test': [{ address: '10.0.0.1', family: 4 }],
  'public.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
  ],
  'mapped-metadata.test': [{ address: '::ffff:169.254.169.254', family: 6 }],
  'rebinding.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '127.0.0.1', family: 4 },
  ],
  'empty.test': [],
};

function resolve(allow: typeof nothingAllowed, hostname: string, options: LookupOptions) {
  const stub = stubLookup(answers);
  return new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family: unknown; calls: typeof stub.calls }>(
    (done) => guardedLookup(allow, stub.lookup)(hostname, options, (error, address, family) => done({ error, address, family, calls: stub.calls })),
  );
}

t.test('guardedLookup refuses host names that resolve to refused addresses', async (t) => {
  for (const [hostname, reason] of [
    ['loopback.test', /127\.0\.0\.1 is a loopback/],
    ['private.test', /10\.0\.0\.1 is a private/],
    ['mapped-metadata.test', /::ffff:169\.254\.169\.254 is an IPv4-mapped address of 169\.254\.169\.254/],
    ['rebinding.test', /127\.0\.0\.1 is a loopback/],
  ] as const) {
    for (const all of [true, false]) {
      const { error } = await resolve(nothingAllowed, hostname, { all });
      t.type(error, WebhookTargetRefusedError, `${hostname} (all: ${all})`);
      t.match(error, { code: WEBHOOK_TARGET_REFUSED, hostname, reason, message: new RegExp(`^webhook target ${hostname} refused: `) });
      t.notMatch((error as Error).message, /\d+\.\d+\.\d+\.\d+|::/, 'the message, shown to the tenant, does not say what the name resolves to');
    }
  }
});

t.test('guardedLookup answers in the shape the caller asked for', async (t) => {
  const list = await resolve(nothingAllowed, 'public.test', { all: true, family: 0 });
  t.equal(list.error, null);
  t.same(list.address, answers['public.test']);
  t.same(list.calls, [{ hostname: 'public.test', options: { all: true, family: 0 } }]);

  const single = await resolve(nothingAllowed, 'public.test', { family: 4, hints: 0 });
  t.equal(single.error, null);
  t.equal(single.address, '93.184.216.34');
  t.equal(single.family, 4);
  t.same(single.calls[0]?.options, { family: 4, hints: 0, all: true }, 'always asks for every address, keeping the options');

  const allowed = await resolve(loopbackAllowed, 'loopback.test', {});
  t.equal(allowed.error, null, 'an allow-listed address passes');
  t.equal(allowed.address, '127.0.0.1');
});

t.test('guardedLookup passes resolver failures through', async (t) => {
  const missing = await resolve(nothingAllowed, 'missing.test', {});
  t.match(missing.error, { code: 'ENOTFOUND' });
  const empty = await resolve(nothingAllowed, 'empty.test', { all: true });
  t.match(empty.error, { code: 'ENOTFOUND', hostname: 'empty.test' }, 'an empty answer is not a success');
});

t.test('guardedLookup uses dns.lookup by default', async (t) => {
  // A literal address is answered by Node itself, without a DNS query.
  const error = await new Promise((done) => guardedLookup(nothingAllowed)('127.0.0.1', {}, done));
  t.match(error, { code: WEBHOOK_TARGET_REFUSED });
});

t.test('got with the guarded lookup never connects to a refused address', async (t) => {
  let requestsReceived = 0;
  const server = createServer((_request, response) => {
    requestsReceived += 1;
    response.end('ok');
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  t.teardown(() => new Promise<void>((closed) => server.close(() => closed())));
  const { port } = server.address() as AddressInfo;
  const { lookup } = stubLookup(answers);
  const post = (allow: typeof nothingAllowed) =>
    got.post(`http://loopback.test:${port}/hook`, {
      body: '{}',
      dnsLookup: guardedLookup(allow, lookup),
      timeout: { request: 5000 },
      retry: { limit: 0 },
      followRedirect: false,
    });

  await t.rejects(post(nothingAllowed), { code: WEBHOOK_TARGET_REFUSED });
  t.equal(requestsReceived, 0, 'nothing reached the server');

  const response = await post(loopbackAllowed);
  t.equal(response.body, 'ok');
  t.equal(requestsReceived, 1);
});
