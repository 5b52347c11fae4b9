// The hosted MFA page: someone holding a connect link answers one credential's verification. The link's
// token is in the URL fragment, which the browser never sends anywhere; we keep it in memory, remove it from
// the address bar (so it is not left in a screenshot or a shared screen), and send it as a Bearer token.

import { createClient } from '../lib/api.js';
import { h, show } from '../lib/dom.js';
import { dateTime } from '../lib/format.js';
import { mountMfaPanel } from '../lib/mfa-panel.js';

const main = document.getElementById('main');
const token = location.hash.slice(1);
history.replaceState(null, '', location.pathname);

function invalidLink() {
  panel?.stop();
  show(
    main,
    h('h1', { tabindex: '-1' }, 'This link no longer works'),
    h('p', { class: 'notice danger' }, 'It has expired or was revoked. Please ask the company that sent it to you for a new link.'),
  );
  main.querySelector('h1').focus();
}

const api = createClient({
  authorization: `Bearer ${token}`,
  onUnauthorized: (error) => {
    if (error.errorId === 'PB_CONNECT_LINK_INVALID') invalidLink();
  },
});

let panel = null;

async function start() {
  if (!token) return invalidLink();
  let first;
  try {
    first = await api('GET', '/connect/api/credential');
  } catch (error) {
    if (error.status !== 401) show(main, h('h1', null, 'Something went wrong'), h('p', { class: 'notice danger', role: 'alert' }, error.message));
    return;
  }
  const heading = h('h1', { tabindex: '-1' }, `Verify your ${first.providerName} login`);
  const body = h('div');
  show(
    main,
    h(
      'section',
      { class: 'card narrow' },
      heading,
      h('p', { class: 'muted' }, `${first.providerName} asks for a one-time code to let us connect to your account. This page works until ${dateTime(first.linkExpiresAt)}.`),
      body,
    ),
  );
  heading.focus();
  panel = mountMfaPanel(body, {
    providerName: () => first.providerName,
    load: () => api('GET', '/connect/api/credential'),
    chooseMethod: (choice) => api('PUT', '/connect/api/verificationMethod', choice),
    submitCode: (code) => api('PUT', '/connect/api/oneTimePasscode', code),
    restart: () => api('POST', '/connect/api/restart'),
    canRestart: (view) => view.canRestart,
  });
}

start();
