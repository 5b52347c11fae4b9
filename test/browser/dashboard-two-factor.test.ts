import { generate } from 'otplib';
import type { Page } from 'playwright-core';
import t from 'tap';
import { checkScreen, launchChromium, openPage, startWebStack } from './harness.ts';

async function signIn(page: Page, email: string, password: string) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Plugboard' }).waitFor();
}

async function viewSettings(page: Page, password: string) {
  await page.getByRole('link', { name: 'My Account' }).click();
  await page.getByRole('heading', { name: 'Security' }).waitFor();
  await page.locator('#view-settings').getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'View settings' }).click();
  await page.locator('#two-factor-settings').waitFor();
}

t.test('enroll app two-factor from the QR screen, sign in with a code, then with a recovery code', async (t) => {
  const stack = await startWebStack(t);
  const browser = await launchChromium(t);
  const { email, password } = stack.org;
  const problems: string[] = [];
  const page = await openPage(browser, problems);

  await page.goto(stack.baseUrl);
  await page.getByRole('heading', { name: 'Sign in to Plugboard' }).waitFor();
  await checkScreen(t, page, 'sign-in');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText('Wrong email or password').waitFor();

  await signIn(page, email, password);
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  const cookie = (await page.context().cookies()).find((candidate) => candidate.name === 'plugboard_session');
  t.match(cookie, { httpOnly: true, sameSite: 'Strict' }, 'the session cookie is HttpOnly and SameSite=Strict');
  t.equal(await page.evaluate('document.cookie'), '', 'scripts cannot read the session');

  await viewSettings(page, password);
  t.equal(await page.getByTestId('two-factor-state').textContent(), 'Off');
  await checkScreen(t, page, 'security-off');

  await page.locator('#enroll-app').getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Set up app' }).click();
  await page.getByRole('img', { name: 'QR code to scan with your authenticator app' }).waitFor();
  const secret = (await page.locator('#totp-secret').textContent()) ?? '';
  t.match(secret, /^[A-Z2-7]{16,}$/, 'the manual key is shown');
  await checkScreen(t, page, 'security-enroll-app');

  await page.getByLabel('Code from the app').fill(await generate({ secret }));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.locator('#recovery-codes').waitFor();
  const recoveryCodes = await page.locator('#recovery-codes li').allTextContents();
  t.equal(recoveryCodes.length, 10, 'ten recovery codes');
  await checkScreen(t, page, 'security-recovery-codes');
  await page.getByRole('button', { name: 'I have saved my codes' }).click();
  await page.getByText('Two-factor authentication protects your account.').waitFor();
  const content = await page.content();
  t.notOk(content.includes(secret) || recoveryCodes.some((code) => content.includes(code)), 'secrets leave the page once done');

  await signOut(page);
  await page.getByText('You have signed out.').waitFor();
  await signIn(page, email, password);
  await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
  await checkScreen(t, page, 'sign-in-code');
  await page.getByLabel('Code from your authenticator app').fill('000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('alert').getByText('The code is wrong, expired or already used').waitFor();
  // The enrollment used this 30-second step's code; a code is never accepted twice, so take the next step's (±1 step is allowed).
  await page.getByLabel('Code from your authenticator app').fill(await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();

  await signOut(page);
  await signIn(page, email, password);
  await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
  await page.getByRole('heading', { name: 'Sign in with a recovery code' }).waitFor();
  await checkScreen(t, page, 'sign-in-recovery-code');
  await page.getByLabel('Recovery code').fill(recoveryCodes[3] ?? '');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  await page.getByText(/You signed in with a recovery code\. Two-factor authentication is now off/).waitFor();
  await checkScreen(t, page, 'signed-in-with-recovery-code');

  await viewSettings(page, password);
  t.equal(await page.getByTestId('two-factor-state').textContent(), 'Off', 'two-factor is off after a recovery code');

  const changePassword = page.locator('#change-password');
  await changePassword.getByLabel('Current password').fill('not my password');
  await changePassword.getByLabel('New password').fill('a brand new password');
  await changePassword.getByRole('button', { name: 'Change password' }).click();
  await changePassword.getByRole('alert').getByText('The password is incorrect').waitFor();
  await changePassword.getByLabel('Current password').fill(password);
  await changePassword.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed. You stay signed in here; your other sessions have ended.').waitFor();
  await signOut(page);
  await signIn(page, email, 'a brand new password');
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  t.same(problems, [], 'no script errors or CSP violations');
});
