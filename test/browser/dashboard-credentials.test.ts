import type { Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { createCredential, eventsOf, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { checkScreen, launchChromium, openPage, startWebStack, type WebStack } from './harness.ts';

async function signedInPage(t: Test, stack: WebStack, problems: string[]): Promise<Page> {
  const page = await openPage(await launchChromium(t), problems);
  await page.goto(stack.baseUrl);
  await page.getByLabel('Email').fill(stack.org.email);
  await page.getByLabel('Password').fill(stack.org.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  return page;
}

t.test('a console user finds a pass_mfa credential under "Action required" and completes its MFA on the credential page', async (t) => {
  // A short challenge lifetime lets the second credential time out while the test watches.
  const stack = await startWebStack(t, { MFA_CHALLENGE_TTL_SECONDS: '25' });
  const connected = await createCredential(stack, 'pass_good');
  const credential = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, connected.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  await waitForCredential(stack, credential.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const problems: string[] = [];
  const page = await signedInPage(t, stack, problems);

  await page.getByRole('link', { name: `Sandbox Electric · ${connected.username}` }).waitFor();
  t.equal(await page.locator('.row').count(), 2, 'All lists both');
  await checkScreen(t, page, 'credentials-all');
  await page.getByRole('link', { name: 'Action required' }).click();
  // The list re-renders after its fetch: until then the unfiltered one (which has this link too) is shown,
  // and in between there are no rows at all. The connected credential going away marks the filtered list.
  await page.getByRole('link', { name: `Sandbox Electric · ${connected.username}` }).waitFor({ state: 'detached' });
  await page.getByRole('link', { name: `Sandbox Electric · ${credential.username}` }).waitFor();
  t.equal(await page.locator('.row').count(), 1, 'the filter leaves the credential that needs action');
  t.equal(await page.locator('.row .badge.warning').textContent(), 'Action required');
  await checkScreen(t, page, 'credentials-action-required');

  await page.getByRole('link', { name: `Sandbox Electric · ${credential.username}` }).click();
  await page.getByRole('heading', { name: `Sandbox Electric · ${credential.username}` }).waitFor();
  await page.getByRole('radio', { name: /^Email to / }).check();
  await checkScreen(t, page, 'credential-choose-method');
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByLabel('Verification code').waitFor();
  await page.getByText(/by email to/).waitFor();
  await page.getByText('3 attempts left.').waitFor();
  await page.getByText(/Expires in 0:\d\d/).waitFor();
  await checkScreen(t, page, 'credential-enter-code');
  await page.getByLabel('Verification code').fill('123456');
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByText("Connected to Sandbox Electric. You're all set.").waitFor();
  await checkScreen(t, page, 'credential-connected');
  await waitForCredential(stack, credential.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const submitted = (await eventsOf(stack, credential.id)).find((event) => event.data.credential.statusDetail === 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  t.equal(submitted?.data.credential.lastModifiedBy, stack.org.userId, 'the audit fields name the dashboard user');

  await page.getByRole('button', { name: 'Create link' }).click();
  const link = await page.getByLabel('Link for your customer').inputValue();
  t.match(link, `${stack.baseUrl}/connect#`, 'a hosted link for the customer');

  // Retry after a time-out: let the next challenge expire unanswered, then start again from the page.
  const late = await createCredential(stack, 'pass_mfa');
  await page.goto(`${stack.baseUrl}/#/credentials/${late.id}`);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByLabel('Verification code').waitFor();
  await page.getByText('The time to answer has run out.').waitFor({ timeout: 40_000 });
  await page.getByText('No verification code arrived in time').waitFor({ timeout: 20_000 });
  await checkScreen(t, page, 'credential-timed-out');
  await page.getByRole('button', { name: 'Start again' }).click();
  await page.getByRole('button', { name: 'Send code' }).waitFor();
  t.equal((await waitForCredential(stack, late.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'))).statusDetail, 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', 'a new challenge');
  t.same(problems, [], 'no script errors or CSP violations');
});

t.test('API keys and webhook endpoints: secrets shown once, a test delivery and its attempts', async (t) => {
  const stack = await startWebStack(t, { WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8' });
  const { createServer } = await import('node:http');
  const receiver = createServer((_request, response) => response.writeHead(204).end());
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => receiver.close(resolve)));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
  const problems: string[] = [];
  const page = await signedInPage(t, stack, problems);

  await page.getByRole('link', { name: 'API keys & webhooks' }).click();
  await page.getByRole('heading', { name: 'API keys & webhooks' }).waitFor();
  await page.getByLabel('Key name').fill('Browser test key');
  await page.getByRole('button', { name: 'Create API key' }).click();
  const clientSecret = await page.getByLabel('Client secret').inputValue();
  t.match(clientSecret, /^pbs_/, 'the client secret is shown');
  await checkScreen(t, page, 'developers-key-created');
  await page.locator('.secret-once').getByRole('button', { name: 'Done' }).click();
  t.notOk((await page.content()).includes(clientSecret), 'and gone once done');
  await page.getByText('Browser test key').waitFor();

  await page.getByLabel('Endpoint URL').fill(receiverUrl);
  await page.getByLabel('Description (optional)').fill('Local receiver');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  t.match(await page.getByLabel('Signing secret').inputValue(), /^whsec_/, 'the signing secret is shown once');
  await page.locator('.secret-once').getByRole('button', { name: 'Done' }).click();
  await page.getByRole('button', { name: 'Send test' }).click();
  await page.getByRole('cell', { name: 'Delivered' }).waitFor({ timeout: 20_000 });
  t.equal(await page.getByRole('cell', { name: '204' }).count(), 1, 'the attempt shows the response status');
  await checkScreen(t, page, 'developers-test-delivered');
  t.same(problems, [], 'no script errors or CSP violations');
});
