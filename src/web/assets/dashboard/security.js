// My Account → Security: the signed-in user's password and own two-factor settings. Every step that reads or changes them
// asks for the password again (the API requires it). Secrets — the authenticator key, its QR code and the
// recovery codes — are on screen only until the step that shows them is done, and are never fetched twice.

import { codeField, field, form, h, passwordField, show } from '../lib/dom.js';

export function renderSecurity(main, { api, me }) {
  const area = h('div', { class: 'stack' });
  show(
    main,
    h('h1', null, 'Security'),
    h('p', { class: 'muted' }, `Signed in as ${me.user.email}.`),
    h('section', { class: 'card', 'aria-labelledby': 'two-factor-heading' }, h('h2', { id: 'two-factor-heading' }, 'Two-factor authentication'), area),
    h('section', { class: 'card', 'aria-labelledby': 'password-heading' }, h('h2', { id: 'password-heading' }, 'Password'), passwordChange()),
  );

  /** Your password, changed with the current one; the API ends your other sessions. */
  function passwordChange() {
    const status = h('div');
    const newPassword = field('New password', 'newPassword', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }, 'At least 8 characters.');
    return h(
      'div',
      { class: 'stack' },
      form({ class: 'stack', id: 'change-password' }, [passwordField('Current password'), newPassword, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Change password'))], async ({ password, newPassword: next }, element) => {
        await api('POST', '/dashboard/me/password', { currentPassword: password, newPassword: next });
        element.reset();
        show(status, h('p', { class: 'notice success', role: 'status' }, 'Password changed. You stay signed in here; your other sessions have ended.'));
      }),
      status,
    );
  }

  /** Moves focus into the new step so keyboard users continue where the content changed. */
  function step(...content) {
    show(area, ...content);
    const heading = area.querySelector('h3');
    heading?.setAttribute('tabindex', '-1');
    (heading ?? area.querySelector('input'))?.focus();
  }

  function locked() {
    step(
      h('p', null, 'Enter your password to see your two-factor settings.'),
      form({ class: 'stack', id: 'view-settings' }, [passwordField(), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'View settings'))], async ({ password }) => {
        settings(await api('POST', '/dashboard/me/two-factor/view', { password }));
      }),
    );
  }

  function settings(current) {
    const methodName = current.method === 'APP' ? 'Authenticator app' : current.method === 'SMS' ? 'Text message (SMS)' : '—';
    const facts = h(
      'dl',
      { class: 'facts', id: 'two-factor-settings' },
      h('dt', null, 'Two-factor'),
      h('dd', { 'data-testid': 'two-factor-state' }, current.isEnabled ? 'On' : 'Off'),
      current.isEnabled ? [h('dt', null, 'Method'), h('dd', null, methodName)] : null,
      current.phoneNumber ? [h('dt', null, 'Phone'), h('dd', null, current.phoneNumber)] : null,
      current.backupPhoneNumber ? [h('dt', null, 'Backup phone'), h('dd', null, current.backupPhoneNumber)] : null,
      current.isEnabled ? [h('dt', null, 'Recovery codes left'), h('dd', null, String(current.recoveryCodesRemaining))] : null,
    );
    step(h('h3', null, 'Your settings'), facts, current.isEnabled ? enabledActions() : enrollmentChoices());
  }

  function enabledActions() {
    return [
      h('h3', null, 'Turn off two-factor'),
      form({ class: 'stack', id: 'disable-two-factor' }, [passwordField(), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Turn off'))], async ({ password }) => {
        await api('POST', '/dashboard/me/two-factor/disable', { password });
        step(h('h3', null, 'Two-factor is off'), h('p', { class: 'notice info', role: 'status' }, 'Your account is protected by your password only.'), enrollmentChoices());
      }),
      h('h3', null, 'New recovery codes'),
      h('p', { class: 'muted' }, 'Replaces your recovery codes; the old ones stop working.'),
      form({ class: 'stack', id: 'regenerate-recovery-codes' }, [passwordField(), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Generate new codes'))], async ({ password }) => {
        recoveryCodes((await api('POST', '/dashboard/me/two-factor/recovery-codes', { password })).recoveryCodes, 'New recovery codes');
      }),
    ];
  }

  function enrollmentChoices() {
    const phone = field('Mobile phone number', 'phoneNumber', { type: 'tel', autocomplete: 'tel', required: true, placeholder: '+15551234567' }, 'International format, starting with + and the country code.');
    const backup = field('Backup phone number (optional)', 'backupPhoneNumber', { type: 'tel', autocomplete: 'off', placeholder: '+15557654321' });
    return [
      h('h3', null, 'Use an authenticator app'),
      h('p', { class: 'muted' }, 'Google Authenticator, 1Password, Authy or any app that shows 6-digit codes.'),
      form({ class: 'stack', id: 'enroll-app' }, [passwordField(), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Set up app'))], async ({ password }) => {
        appEnrollment(await api('POST', '/dashboard/me/two-factor/app', { password }));
      }),
      h('h3', null, 'Use text messages (SMS)'),
      form({ class: 'stack', id: 'enroll-sms' }, [passwordField(), phone, backup, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Send Code'))], async ({ password, phoneNumber, backupPhoneNumber }) => {
        const body = { password, phoneNumber: String(phoneNumber).trim() };
        if (String(backupPhoneNumber).trim()) body.backupPhoneNumber = String(backupPhoneNumber).trim();
        smsEnrollment(await api('POST', '/dashboard/me/two-factor/sms', body));
      }),
    ];
  }

  function appEnrollment({ secret, qrCodeSvg }) {
    // As an <img>, the SVG is a picture: it cannot run script or reach the page.
    const qr = h('img', { class: 'qr', src: `data:image/svg+xml,${encodeURIComponent(qrCodeSvg)}`, alt: 'QR code to scan with your authenticator app', width: 200, height: 200 });
    step(
      h('h3', null, 'Scan the QR code'),
      h('p', null, 'Scan it with your authenticator app, then enter the code the app shows.'),
      qr,
      h('p', null, 'Can’t scan it? Enter this key in the app instead:'),
      h('p', null, h('code', { class: 'secret', id: 'totp-secret' }, secret)),
      form({ class: 'stack', id: 'confirm-app' }, [codeField('Code from the app'), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Turn on'))], async ({ code }) => {
        recoveryCodes((await api('POST', '/dashboard/me/two-factor/app/confirm', { code: String(code).trim() })).recoveryCodes, 'Two-factor is on');
      }),
    );
  }

  function smsEnrollment({ destination, expiresAt }) {
    step(
      h('h3', null, 'Enter the code we sent'),
      h('p', null, `We sent a code to ${destination}. It works until ${new Date(expiresAt).toLocaleTimeString()}.`),
      form({ class: 'stack', id: 'confirm-sms' }, [codeField('Code from the text message'), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Turn on'))], async ({ code }) => {
        recoveryCodes((await api('POST', '/dashboard/me/two-factor/sms/confirm', { code: String(code).trim() })).recoveryCodes, 'Two-factor is on');
      }),
    );
  }

  function recoveryCodes(codes, heading) {
    step(
      h('h3', null, heading),
      h('p', null, 'Save these recovery codes somewhere safe. Each one signs you in once if you lose your phone — and turns two-factor off. They are shown only now.'),
      h('ol', { class: 'recovery-codes mono', id: 'recovery-codes' }, codes.map((code) => h('li', null, code))),
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: done }, 'I have saved my codes')),
    );
  }

  function done() {
    step(h('h3', null, 'Two-factor is on'), h('p', { class: 'notice success', role: 'status' }, 'Two-factor authentication protects your account.'), enabledActions());
  }

  locked();
}
