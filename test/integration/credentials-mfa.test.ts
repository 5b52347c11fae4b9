import t from 'tap';
import { call, chooseFirstMethod, createCredential, describe, eventsOf, hasDetail, mfaOf, submitCode, SUCCESS, waitForCredential } from '../credentials-helper.ts';
import { buildStack, dumpKeys } from '../helper.ts';

t.test('pass_mfa: method, code, a wrong code, the right code, in the event log in order', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const mfa = mfaOf(asked);
  t.match(asked, { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: true });
  t.match(mfa, { challengeId: /^mfa_/, stage: 'METHOD_SELECTION', selectedMethodId: null, attemptsRemaining: 3 });
  t.same(mfa.availableMethods.map((method) => method.type), ['SMS', 'CALL', 'EMAIL']);
  t.match(mfa.availableMethods[0], { id: /^mth_/, destination: /^\*\*\*-\*\*\*-\d{4}$/ });

  t.equal((await submitCode(stack, asked, '123456')).statusCode, 409, 'no code before a method is chosen');
  const stale = await call(stack, 'PUT', `/plug/credentials/${asked.id}/verificationMethod`, {
    challengeId: 'mfa_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    methodId: mfa.availableMethods[0]?.id,
  });
  t.match(stale, { statusCode: 409, body: { errors: [{ type: 'conflict', param: 'challengeId' }] } });
  const unknownMethod = await call(stack, 'PUT', `/plug/credentials/${asked.id}/verificationMethod`, {
    challengeId: mfa.challengeId,
    methodId: 'mth_aaaaaaaaaaaaaaaaaaaaaaaaaa',
  });
  t.match(unknownMethod, { statusCode: 400, body: { errors: [{ param: 'methodId' }] } });

  const chosen = await chooseFirstMethod(stack, asked);
  t.equal(chosen.statusCode, 202);
  t.equal(chosen.headers['preference-applied'], 'wait=5');
  t.match(chosen.body, { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', mfa: { challengeId: mfa.challengeId, stage: 'CODE_ENTRY', codeLength: 6 } });
  t.equal(chosen.body.mfa?.selectedMethodId, mfa.availableMethods[0]?.id);

  const wrong = await submitCode(stack, chosen.body, '000000');
  t.match(wrong, { statusCode: 202, body: { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', mfa: { attemptsRemaining: 2 } } });
  const right = await submitCode(stack, wrong.body, '123456');
  t.match(right.body, { status: 'CONNECTION_SUCCESS', statusDetail: SUCCESS, mfa: null, isAccessible: true });
  t.ok(right.body.mfaSession?.obtainedAt && right.body.mfaSession.expiresAt, 'the provider session is recorded (not its content)');
  t.equal((await submitCode(stack, wrong.body, '123456')).statusCode, 409, 'the challenge is over');

  const events = await eventsOf(stack, created.id);
  t.same(describe(events), [
    'created',
    '→ MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
    'mfa.method_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'mfa.code_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'mfa.code_rejected',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
    `→ ${SUCCESS}`,
    'connected',
  ]);
  const byType = (type: string) => events.find((event) => event.type === type);
  t.equal(byType('credential.mfa.code_required')?.data.expiresAt, chosen.body.mfa?.expiresAt);
  t.equal(byType('credential.mfa.code_rejected')?.data.attemptsRemaining, 2);
  t.same(byType('credential.status_changed')?.data.previous, { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' });
});

t.test('the last wrong code fails the credential', async (t) => {
  const stack = await buildStack(t, { env: { MFA_MAX_ATTEMPTS: '2' } });
  const created = await createCredential(stack, 'pass_mfa_code');
  let credential = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  t.equal(credential.mfa?.attemptsRemaining, 2);
  credential = (await submitCode(stack, credential, '111111')).body;
  t.equal(credential.mfa?.attemptsRemaining, 1);
  credential = (await submitCode(stack, credential, '222222')).body;
  t.match(credential, { status: 'CONNECTION_FAILURE', statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID', mfa: null });
});

t.test('a code is sent without whitespace and with ASCII digits; one of the wrong length or with other characters is a 400 that costs no attempt', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa_code');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  for (const code of ['12345', '1234567', '12ab', ' \n ', '12345é']) {
    t.match(await submitCode(stack, asked, code), { statusCode: 400, body: { errors: [{ type: 'invalidParameter', param: 'code' }] } }, JSON.stringify(code));
  }
  const unchanged = (await call<{ mfa: { attemptsRemaining: number } }>(stack, 'GET', `/plug/credentials/${asked.id}`)).body;
  t.equal(unchanged.mfa.attemptsRemaining, 3, 'no attempt used');
  const right = await submitCode(stack, asked, ' ١٢٣ 456\n');
  t.match(right.body, { status: 'CONNECTION_SUCCESS' }, 'spaces, a newline and Arabic-Indic digits in the right code');
});

t.test('20 concurrent right codes: one is accepted, 19 get 409, one credential.connected', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa_code');
  const credential = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  const answers = await Promise.all(Array.from({ length: 20 }, () => submitCode(stack, credential, '123456', {})));
  const statuses = answers.map((answer) => answer.statusCode).sort();
  t.same(statuses, [202, ...Array<number>(19).fill(409)]);
  await waitForCredential(stack, created.id, hasDetail(SUCCESS));
  const types = (await eventsOf(stack, created.id)).map((event) => event.type);
  t.equal(types.filter((type) => type === 'credential.connected').length, 1);
  t.equal(types.filter((type) => type === 'credential.status_changed').length, 3, 'CODE_REQUIRED, SUBMITTED, SUCCESS: once each');
});

t.test('Redis holds no provider password, code or session in clear text', async (t) => {
  const stack = await buildStack(t);
  // Six characters, the challenge's codeLength, and none likely to turn up in the dump by chance.
  const wrongCode = '9qZx7W';
  const created = await createCredential(stack, 'pass_mfa_code');
  const codeRequired = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  const rejected = await submitCode(stack, codeRequired, wrongCode);
  const pending = await submitCode(stack, rejected.body, '123456', {});
  t.equal(pending.statusCode, 202);
  await waitForCredential(stack, created.id, hasDetail(SUCCESS));
  const inFlight = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, inFlight.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));

  const { redis, keys, secrets } = stack.app.services.ctx;
  const sessionJar = await secrets.read(keys.org(stack.org.organizationId).credentialSecrets(created.id), 'session');
  const loginJar = await secrets.read(keys.org(stack.org.organizationId).credentialSecrets(inFlight.id), 'loginState');
  const cookieValues = [sessionJar, loginJar].flatMap((jar) => [...(jar ?? '').matchAll(/"value":"([^"]{16,})"/g)].map((match) => match[1] ?? ''));
  t.equal(cookieValues.length, 2, 'the sealed session and login state hold the provider cookies');
  t.same(
    Object.keys(await secrets.readAll(keys.org(stack.org.organizationId).credentialSecrets(created.id))).sort(),
    ['password', 'session'],
    'once connected, the login state and the submitted codes are gone from the sealed secrets (and no extra fields were sealed: there are none)',
  );

  const dump = await dumpKeys(redis, [`${keys.prefix}:*`, `${keys.queuePrefix}*`]);
  t.ok(dump.includes(created.id), 'the dump holds the data (sanity check)');
  t.notMatch(dump, /unhandled type/);
  t.notOk(dump.includes('pass_mfa'), 'no provider password');
  t.notOk(dump.includes(wrongCode), 'no submitted code');
  t.notOk(dump.includes('"123456"'), 'not the right code either');
  for (const cookie of cookieValues) t.notOk(dump.includes(cookie), 'no provider cookie');
});

t.test('the login state a rejected code comes back with is the one the next code is sent with', async (t) => {
  const cookiesSeen: string[] = [];
  let rejections = 0;
  const stack = await buildStack(t, {
    // A provider that rotates a cookie with every wrong code (as CSRF-protected forms do).
    site: (site) => {
      site.addHook('preHandler', async (request) => {
        if (request.url === '/mfa/code') cookiesSeen.push(request.headers.cookie ?? '');
      });
      site.addHook('onSend', async (request, reply) => {
        if (request.url === '/mfa/code' && reply.statusCode === 422) {
          rejections += 1;
          const current = reply.getHeader('set-cookie');
          const extra = `sbx_attempt=${rejections}; Path=/`;
          reply.header('set-cookie', current === undefined ? extra : [...[current].flat().map(String), extra]);
        }
      });
    },
  });
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const codeRequired = (await chooseFirstMethod(stack, asked)).body;
  const rejected = await submitCode(stack, codeRequired, '000000');
  t.equal(rejected.body.mfa?.attemptsRemaining, 2);
  const done = await submitCode(stack, rejected.body, '123456');
  t.equal(done.body.statusDetail, SUCCESS);
  t.equal(cookiesSeen.length, 2);
  t.match(cookiesSeen[1], /sbx_attempt=1/, 'the second code carried the cookie the first rejection set');
});
