import t from 'tap';
import { Webhook } from 'standardwebhooks';
import {
  DEFAULT_TOLERANCE_SECONDS,
  generateWebhookSecret,
  signPayload,
  verifySignature,
  webhookHeaders,
} from '../../src/webhooks/signing.ts';

// From the standard-webhooks reference libraries' tests (copied from the project's shared test vectors).
const vectors = [
  {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  },
  {
    secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
    msgId: 'msg_27UH4WbU6Z5A5EzD8u03UvzRbpk',
    timestamp: 1649367553,
    body: '{"email":"test@example.com","username":"test_user"}',
    signature: 'v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=',
  },
] as const;
const mustNotVerifyWithFirstVector = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=';

const nowSeconds = () => Math.floor(Date.now() / 1000);

t.test('reproduces the Standard Webhooks reference signatures', async (t) => {
  for (const v of vectors) {
    t.equal(signPayload({ secrets: [v.secret], msgId: v.msgId, timestamp: v.timestamp, body: v.body }), v.signature);
    const headers = { 'webhook-id': v.msgId, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.signature };
    t.same(verifySignature({ secrets: [v.secret], headers, body: v.body, nowSeconds: v.timestamp }), { valid: true });
  }
});

t.test('rejects a signature differing in one character from the reference one', async (t) => {
  const [v] = vectors;
  const headers = {
    'webhook-id': v.msgId,
    'webhook-timestamp': String(v.timestamp),
    'webhook-signature': mustNotVerifyWithFirstVector,
  };
  t.same(verifySignature({ secrets: [v.secret], headers, body: v.body, nowSeconds: v.timestamp }), {
    valid: false,
    reason: 'no signature matches',
  });
});

t.test('the standardwebhooks package verifies what we sign with two secrets, under either secret', async (t) => {
  const oldSecret = generateWebhookSecret();
  const newSecret = generateWebhookSecret();
  const body = JSON.stringify({ id: 'evt_1', type: 'webhook.test', data: { message: 'héllo' } });
  const headers = webhookHeaders({ secrets: [newSecret, oldSecret], msgId: 'evt_1', timestamp: nowSeconds(), body });

  t.equal(headers['webhook-id'], 'evt_1');
  t.equal(headers['webhook-signature'].split(' ').length, 2);
  t.same(new Webhook(oldSecret).verify(body, headers), JSON.parse(body));
  t.same(new Webhook(newSecret).verify(body, headers), JSON.parse(body));
  t.throws(() => new Webhook(generateWebhookSecret()).verify(body, headers), { message: 'No matching signature found' });
});

t.test('verifies what the standardwebhooks package signs', async (t) => {
  const secret = generateWebhookSecret();
  const timestamp = nowSeconds();
  const body = '{"ok":true}';
  const signature = new Webhook(secret).sign('evt_2', new Date(timestamp * 1000), body);
  const headers = { 'webhook-id': 'evt_2', 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
  t.same(verifySignature({ secrets: [secret], headers, body }), { valid: true });
});

t.test('verification', async (t) => {
  const secret = generateWebhookSecret();
  const timestamp = 1_700_000_000;
  const body = '{"a":1}';
  const headers = webhookHeaders({ secrets: [secret], msgId: 'evt_3', timestamp, body });
  const verify = (overrides: Partial<Parameters<typeof verifySignature>[0]>) =>
    verifySignature({ secrets: [secret], headers, body, nowSeconds: timestamp, ...overrides });

  t.same(verify({}), { valid: true });
  t.same(verify({ secrets: [generateWebhookSecret(), secret] }), { valid: true }, 'any of several secrets may match');
  t.equal(verify({ body: '{"a":2}' }).valid, false, 'a tampered body fails');
  t.equal(verify({ secrets: [generateWebhookSecret()] }).valid, false, 'another secret fails');
  t.equal(verify({ headers: { ...headers, 'webhook-id': 'evt_4' } }).valid, false, 'another message id fails');

  t.same(verify({ nowSeconds: timestamp + DEFAULT_TOLERANCE_SECONDS }), { valid: true }, 'edge of the window');
  t.same(verify({ nowSeconds: timestamp + DEFAULT_TOLERANCE_SECONDS + 1 }), {
    valid: false,
    reason: 'webhook-timestamp is outside the tolerance window',
  });
  t.equal(verify({ nowSeconds: timestamp - DEFAULT_TOLERANCE_SECONDS - 1 }).valid, false, 'too far in the future');
  t.same(verify({ nowSeconds: timestamp + 3600, toleranceSeconds: 3600 }), { valid: true }, 'custom tolerance');

  t.same(verify({ headers: { ...headers, 'webhook-timestamp': '1.7e9' } }), {
    valid: false,
    reason: 'webhook-timestamp is not whole seconds',
  });
  const { 'webhook-signature': _omitted, ...unsigned } = headers;
  t.equal(verify({ headers: unsigned }).valid, false, 'missing signature header');
  t.equal(verify({ headers: { ...headers, 'webhook-id': ['evt_3', 'evt_3'] } }).valid, false, 'repeated header');

  const [, signature] = headers['webhook-signature'].split(',');
  t.equal(verify({ headers: { ...headers, 'webhook-signature': `v2,${signature}` } }).valid, false, 'other versions are ignored');
  t.same(verify({ headers: { ...headers, 'webhook-signature': `v1a,xyz v1 v1,${signature}` } }), { valid: true }, 'junk entries are skipped');
});

t.test('generated secrets are whsec_ + base64 of 32 random bytes', async (t) => {
  const secret = generateWebhookSecret();
  t.match(secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
  t.equal(Buffer.from(secret.slice('whsec_'.length), 'base64').length, 32);
  t.not(generateWebhookSecret(), secret);
});

t.test('signing refuses inputs that would produce a useless signature', async (t) => {
  const input = { secrets: [generateWebhookSecret()], msgId: 'evt_5', timestamp: 1_700_000_000, body: '{}' };
  t.throws(() => signPayload({ ...input, secrets: [] }), /at least one secret/);
  t.throws(() => signPayload({ ...input, timestamp: 1.5 }), /whole seconds/);
  t.throws(() => signPayload({ ...input, secrets: ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'] }), /"whsec_" followed by base64/);
  t.throws(() => signPayload({ ...input, secrets: ['whsec_not base64!'] }), /"whsec_" followed by base64/);
});
