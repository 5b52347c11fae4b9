import t from 'tap';
import { call, createCredential, describe, eventsOf, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { checkScreen, isFocused, launchChromium, openPage, startWebStack, tabTo } from './harness.ts';

t.test('a customer completes pass_mfa on the hosted page, keyboard only, in a browser without a Dashboard session', async (t) => {
  const stack = await startWebStack(t);
  const browser = await launchChromium(t);
  const credential = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, credential.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const link = await call<{ url: string; expiresAt: string }>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  t.equal(link.statusCode, 201);
  t.ok(link.body.url.startsWith(`${stack.baseUrl}/connect#`), 'the link points at the hosted page, token in the fragment');

  const problems: string[] = [];
  const page = await openPage(browser, problems);
  t.same(await page.context().cookies(), [], 'a fresh browser context: no session cookie');
  await page.goto(link.body.url);
  await page.getByRole('heading', { name: 'Verify your Sandbox Electric login' }).waitFor();
  t.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  t.notMatch(await page.content(), credential.username, 'the page never shows the username');
  await page.getByText(/Text message \(SMS\) to \*\*\*-\*\*\*-\d{4}/).waitFor();
  await checkScreen(t, page, 'hosted-choose-method');

  // Keyboard only: Tab to the checked radio, arrow to the second method (a phone call), Tab to the button.
  await tabTo(page, 'input[type="radio"]:checked');
  await page.keyboard.press('ArrowDown');
  await tabTo(page, 'button[type="submit"]');
  await page.keyboard.press('Enter');
  await page.getByLabel('Verification code').waitFor();
  await page.getByText(/by phone call to/).waitFor();
  t.ok(await isFocused(page, 'input[name="code"]'), 'focus moves to the code field');
  await page.getByText(/Expires in \d+:\d\d/).waitFor();
  await page.getByText('3 attempts left.').waitFor();
  await checkScreen(t, page, 'hosted-enter-code');

  await page.keyboard.type('000000');
  await page.keyboard.press('Enter');
  await page.getByText('That code was not accepted. 2 attempts left.').waitFor();
  await checkScreen(t, page, 'hosted-code-rejected');

  await page.getByLabel('Verification code').focus();
  await page.keyboard.type('123456');
  await page.keyboard.press('Enter');
  await page.getByText("Connected to Sandbox Electric. You're all set.").waitFor();
  await checkScreen(t, page, 'hosted-connected');

  await waitForCredential(stack, credential.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const events = await eventsOf(stack, credential.id);
  const submitted = events.filter((event) => event.data.credential.statusDetail === 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  t.equal(submitted.length, 2);
  for (const event of submitted) t.match(event.data.credential.lastModifiedBy, /^connect-link:/, 'the audit trail names the hosted link');
  t.same(
    describe(events),
    [
      'created',
      '→ MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
      'mfa.method_required',
      '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
      'mfa.code_required',
      '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
      '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
      'mfa.code_rejected',
      '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
      '→ LOGIN_AND_DATA_DISCOVERY_SUCCESS',
      'connected',
    ],
    'the page causes the same events as the API',
  );
  t.same(problems, [], 'no script errors or CSP violations');
});

t.test('a revoked link shows a clear page', async (t) => {
  const stack = await startWebStack(t);
  const browser = await launchChromium(t);
  const credential = await createCredential(stack, 'pass_mfa');
  const link = await call<{ url: string }>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  t.equal((await call(stack, 'DELETE', `/plug/credentials/${credential.id}/connectLink`)).statusCode, 204);

  const problems: string[] = [];
  const page = await openPage(browser, problems);
  await page.goto(link.body.url);
  await page.getByRole('heading', { name: 'This link no longer works' }).waitFor();
  await page.getByText('It has expired or was revoked').waitFor();
  await checkScreen(t, page, 'hosted-link-revoked');
  t.same(problems.filter((problem) => !problem.includes('401')), [], 'no script errors');
});
