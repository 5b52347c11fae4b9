// Sign in: email and password, then — for users with two-factor on — the app or SMS code, or a recovery code.

import { actionButton, codeField, field, focusHeading, form, h, passwordField, show } from '../lib/dom.js';

export function renderSignIn(main, { api, onSignedIn }) {
  let challenge = null;

  function passwordStep() {
    const email = field('Email', 'email', { type: 'email', autocomplete: 'username', required: true });
    show(
      main,
      h(
        'section',
        { class: 'card narrow' },
        h('h1', null, 'Sign in to Plugboard'),
        form({ class: 'stack', id: 'sign-in-form' }, [email, passwordField(), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in'))], async ({ email, password }) => {
          const result = await api('POST', '/dashboard/login', { email, password });
          if (result.twoFactorRequired) {
            challenge = result.challenge;
            codeStep();
          } else {
            await onSignedIn();
          }
        }),
      ),
    );
  }

  function codeStep() {
    const isSms = challenge.method === 'SMS';
    const hint = !isSms
      ? 'Open your authenticator app and enter the 6-digit code for Plugboard.'
      : challenge.isCodeSent === false
        ? `A code was texted to you moments ago, or too many this hour, so none was sent for this sign-in. Ask for one from ${new Date(challenge.nextCodeAt).toLocaleTimeString()}, or use a recovery code.`
        : `We sent a code to ${challenge.destination ?? 'your phone'}.`;
    const code = codeField(isSms ? 'Code from the text message' : 'Code from your authenticator app', { hint });
    show(
      main,
      h(
        'section',
        { class: 'card narrow' },
        h('h1', null, 'Two-factor authentication'),
        form({ class: 'stack' }, [code, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Verify'))], async ({ code: value }) => {
          await api('POST', '/dashboard/login/verify', { challengeId: challenge.id, code: String(value).trim() });
          await onSignedIn();
        }),
        isSms
          ? h(
              'div',
              { class: 'actions' },
              actionButton('Send a new code', async () => {
                challenge = (await api('POST', '/dashboard/login/sms', { challengeId: challenge.id })).challenge;
                codeStep();
              }, { class: 'secondary' }),
              actionButton('Send to my backup phone', async () => {
                challenge = (await api('POST', '/dashboard/login/sms', { challengeId: challenge.id, useBackupPhone: true })).challenge;
                codeStep();
              }, { class: 'secondary' }),
            )
          : null,
        h('p', null, h('button', { type: 'button', class: 'link-button', onclick: recoveryStep }, 'Use a recovery code instead')),
      ),
    );
    focusHeading(main);
  }

  function recoveryStep() {
    const recovery = field('Recovery code', 'recoveryCode', { autocomplete: 'off', spellcheck: 'false', required: true, class: 'mono' }, 'One of the codes you saved when you turned on two-factor, e.g. abcd-efgh-jkmn-pqrs. Signing in with it turns two-factor off.');
    show(
      main,
      h(
        'section',
        { class: 'card narrow' },
        h('h1', null, 'Sign in with a recovery code'),
        form({ class: 'stack' }, [recovery, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in'))], async ({ recoveryCode }) => {
          const result = await api('POST', '/dashboard/login/verify', { challengeId: challenge.id, recoveryCode: String(recoveryCode).trim() });
          await onSignedIn({ notice: result.message });
        }),
        h('p', null, h('button', { type: 'button', class: 'link-button', onclick: codeStep }, 'Use a code instead')),
      ),
    );
    focusHeading(main);
  }

  passwordStep();
}
