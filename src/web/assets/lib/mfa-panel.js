// The MFA walk-through shared by the Dashboard's credential page and the hosted page: choose where the code
// goes, enter it, see the attempts left and the deadline count down, start again after a time-out.
//
// It knows nothing about URLs: the page hands it `load`, `chooseMethod`, `submitCode` and `restart`, each
// resolving to the credential as it is afterwards (`{ status, statusDetail, statusMessage, mfa }`).

import { actionButton, announce, codeField, form, h, show, uid } from './dom.js';
import { clock, detailLabel, METHOD_LABELS, secondsUntil } from './format.js';

const POLL_MS = 1500;
const WORKING = new Set(['DATA_EXTRACTION_IN_PROGRESS', 'PROVIDER_WEBSITE_INACCESSIBLE', 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED']);

function methodText(method) {
  const label = METHOD_LABELS[method.type] ?? method.type;
  return method.destination ? `${label} to ${method.destination}` : label;
}

/** What changes the panel's content; polling that returns the same state leaves typed input alone. */
function stateKey(view) {
  const { mfa } = view;
  return [view.statusDetail, mfa?.challengeId, mfa?.stage, mfa?.selectedMethodId, mfa?.attemptsRemaining].join('|');
}

/**
 * Renders into `container` and keeps it current. `options.providerName` is used in sentences;
 * `options.canRestart(view)` says whether to offer "Start again"; `options.onChange(view)` sees every update.
 * Returns `{ stop }` to end polling and timers when the page goes away.
 */
export function mountMfaPanel(container, options) {
  const { load, chooseMethod, submitCode, restart, canRestart, onChange, providerName } = options;
  let current = null;
  let renderedKey = null;
  let pollTimer = null;
  let countdownTimer = null;
  let stopped = false;
  let rejectionNotice = '';
  let lastChallenge = null;

  const status = h('p', { class: 'panel-status', role: 'status' });
  const body = h('div', { class: 'panel-body' });
  show(container, status, body);

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!stopped) pollTimer = setTimeout(refresh, POLL_MS);
  }

  async function refresh() {
    try {
      update(await load());
    } catch (error) {
      status.textContent = error.message;
      schedulePoll();
    }
  }

  /** Called with every fresh view, whoever fetched it. */
  function update(view) {
    const isFirst = current === null;
    current = view;
    onChange?.(view);
    // A wrong code keeps the challenge open with one attempt fewer: say so where the person is looking.
    const { mfa } = view;
    if (mfa && lastChallenge?.challengeId === mfa.challengeId && mfa.attemptsRemaining < lastChallenge.attemptsRemaining) {
      rejectionNotice = `That code was not accepted. ${attemptsText(mfa.attemptsRemaining)}.`;
    } else if (view.statusDetail !== 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED' && !WORKING.has(view.statusDetail)) {
      rejectionNotice = '';
    }
    if (mfa) lastChallenge = { challengeId: mfa.challengeId, attemptsRemaining: mfa.attemptsRemaining };
    const key = stateKey(view);
    if (key !== renderedKey) {
      renderedKey = key;
      render(view, !isFirst);
    }
    const expired = view.mfa && secondsUntil(view.mfa.expiresAt) <= 0;
    if (WORKING.has(view.statusDetail) || expired) schedulePoll();
  }

  async function perform(action) {
    status.textContent = 'Working…';
    const view = await action();
    status.textContent = '';
    update(view);
  }

  function render(view, isUpdate) {
    clearInterval(countdownTimer);
    status.textContent = '';
    const { statusDetail, mfa } = view;
    if (statusDetail === 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' && mfa) show(body, methodStep(mfa));
    else if (statusDetail === 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED' && mfa) show(body, codeStep(mfa));
    else if (WORKING.has(statusDetail)) show(body, h('p', { class: 'working' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `${detailLabel(statusDetail)}…`));
    else if (statusDetail === 'LOGIN_AND_DATA_DISCOVERY_SUCCESS') show(body, h('p', { class: 'notice success' }, `Connected to ${providerName()}. You're all set.`));
    else show(body, endStep(view));
    // After the person acted, take them to what needs doing next.
    if (isUpdate) (body.querySelector('input, button') ?? body.querySelector('p'))?.focus?.();
    if (isUpdate) announce(detailLabel(statusDetail));
  }

  function methodStep(mfa) {
    const legendId = uid('methods');
    const choices = mfa.availableMethods.map((method, index) => {
      const id = uid('method');
      return h(
        'div',
        { class: 'choice' },
        h('input', { type: 'radio', id, name: 'methodId', value: method.id, required: true, checked: index === 0 }),
        h('label', { for: id }, methodText(method)),
      );
    });
    return form(
      { class: 'stack', 'aria-labelledby': legendId },
      [
        h('fieldset', null, h('legend', { id: legendId }, `How should ${providerName()} send your verification code?`), choices),
        deadline(mfa),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Send code')),
      ],
      ({ methodId }) => perform(() => chooseMethod({ challengeId: mfa.challengeId, methodId })),
    );
  }

  function codeStep(mfa) {
    const method = mfa.availableMethods.find((candidate) => candidate.id === mfa.selectedMethodId);
    const sentTo = method ? `We asked ${providerName()} to send a code by ${methodText(method).replace(/^./, (c) => c.toLowerCase())}.` : `Enter the code from ${providerName()}.`;
    const attemptsId = uid('attempts');
    const code = codeField('Verification code', { length: mfa.codeLength, hint: sentTo });
    code.input.setAttribute('aria-describedby', `${code.input.getAttribute('aria-describedby')} ${attemptsId}`);
    const resend = method
      ? actionButton('Send a new code', () => perform(() => chooseMethod({ challengeId: mfa.challengeId, methodId: method.id, isResubmission: true })), {
          class: 'secondary',
        })
      : null;
    return h(
      'div',
      { class: 'stack' },
      rejectionNotice ? h('p', { class: 'notice danger', role: 'alert' }, rejectionNotice) : null,
      form(
        { class: 'stack' },
        [
          code,
          h('p', { id: attemptsId, class: 'attempts' }, `${attemptsText(mfa.attemptsRemaining)}.`),
          deadline(mfa),
          h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Verify'), resend),
        ],
        ({ code: value }) => perform(() => submitCode({ challengeId: mfa.challengeId, code: String(value).trim() })),
      ),
    );
  }

  function endStep(view) {
    const message = view.statusMessage ?? detailLabel(view.statusDetail);
    return h(
      'div',
      { class: 'stack' },
      h('p', { class: 'notice danger' }, message),
      canRestart(view)
        ? h('div', { class: 'actions' }, actionButton('Start again', () => perform(restart)))
        : null,
    );
  }

  /** "Expires in 9:41", ticking; at zero it says so and polls until the server records the time-out. */
  function deadline(mfa) {
    const text = h('span', { 'aria-hidden': 'true' });
    // Screen readers get the deadline once, not sixty updates a minute.
    const spoken = h('span', { class: 'visually-hidden' }, `The code expires at ${new Date(mfa.expiresAt).toLocaleTimeString()}.`);
    const element = h('p', { class: 'deadline', role: 'timer', 'aria-live': 'off' }, spoken, text);
    const tick = () => {
      const left = secondsUntil(mfa.expiresAt);
      if (left > 0) {
        text.textContent = `Expires in ${clock(left)}`;
        return;
      }
      text.textContent = 'The time to answer has run out.';
      clearInterval(countdownTimer);
      schedulePoll();
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    return element;
  }

  refresh();
  return {
    stop() {
      stopped = true;
      clearTimeout(pollTimer);
      clearInterval(countdownTimer);
    },
    refresh,
  };
}

function attemptsText(count) {
  return count === 1 ? '1 attempt left' : `${count} attempts left`;
}
