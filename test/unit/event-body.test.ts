import { createHash } from 'node:crypto';
import t from 'tap';
import { DICTIONARY_V1, packEnvelope, unpackEnvelope } from '../../src/storage/event-body.ts';

/** A credential event as the state machine writes it: the common case the dictionary is made for. */
const methodRequired = JSON.stringify({
  id: 'evt_ok42wf5lwdwctc2g5rbrf5cgnv',
  type: 'credential.mfa.method_required',
  timestamp: '2026-11-27T04:52:35.538Z',
  data: {
    credential: {
      id: 'crd_uxv25562rx7vcfcx46ull6d65s',
      providerId: 'prv_sandboxelectricxxxxxxxxxxx',
      username: 'customer-662',
      correlationId: null,
      status: 'CONNECTION_IN_PROGRESS',
      statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
      statusMessage: 'The provider asks where to send a verification code.',
      isCustomerActionRequired: true,
      isAccessible: false,
      isActive: true,
      mfa: {
        challengeId: 'mfa_3vwdrypiqnduo5z2e3l43fe2xs',
        stage: 'METHOD_SELECTION',
        availableMethods: [
          { id: 'mth_upbsymmvcwr4krjqprrkgvzkm3', type: 'SMS', destination: '***-***-9948' },
          { id: 'mth_66qyefjo2tug54hhc4wilqeanu', type: 'EMAIL', destination: 'b***@example.com' },
        ],
        selectedMethodId: null,
        codeLength: null,
        expiresAt: '2026-11-27T04:52:55.662Z',
        attemptsRemaining: 3,
      },
      mfaSession: null,
      lastSyncedAt: null,
      nextSyncAt: null,
      createdAt: '2026-11-27T04:52:32.907Z',
      createdBy: 'key_fd3qlyxjtyhj2b3hwhtqlq4qda',
      lastModifiedAt: '2026-11-27T04:52:35.538Z',
      lastModifiedBy: 'system',
    },
  },
});

t.test('a packed envelope unpacks to the very same text', async (t) => {
  for (const envelope of [
    methodRequired,
    JSON.stringify({ id: 'evt_x', type: 'webhook.test', timestamp: '2026-11-27T00:00:00.000Z', data: { message: 'Zoë 🔌 “quoted” \\ \u0000' } }),
    '{}',
  ]) {
    t.equal(unpackEnvelope(packEnvelope(envelope)), envelope);
  }
});

t.test('a credential event packs to a fraction of its JSON', async (t) => {
  const packed = packEnvelope(methodRequired);
  // 1,094 bytes of JSON, 652 deflated without the dictionary.
  t.ok(packed.length < methodRequired.length / 4, `${packed.length} bytes packed, of ${methodRequired.length}`);
});

t.test('bodies stored as plain JSON are read as they are; an unknown format is an error, not garbage', async (t) => {
  t.equal(unpackEnvelope(Buffer.from(methodRequired)), methodRequired);
  t.throws(() => unpackEnvelope(Buffer.from([0x09, 0x01, 0x02])), /unknown event body format 9/);
});

t.test("format 1's dictionary is frozen: events packed with it are read for the whole retention period", async (t) => {
  // Changing the dictionary makes every stored event of format 1 unreadable. Add a format instead.
  t.equal(createHash('sha256').update(DICTIONARY_V1).digest('hex'), 'a8619675a1c9899fbf3b8a4a5c43cf751ead82d1917a4498fcd8cafe97699cfa');
});
