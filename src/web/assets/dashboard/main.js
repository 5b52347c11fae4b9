// The Dashboard: a signed-in shell with hash routes (`#/credentials`, `#/credentials/crd_…`,
// `#/account/security`, `#/developers`) and the sign-in screen for everyone else.
//
// The session lives in an HttpOnly cookie that scripts cannot read; `GET /dashboard/me` tells whether it is
// still good. Every view is a function `(main, context) => cleanup?`, re-run on navigation.

import { createClient } from '../lib/api.js';
import { focusHeading, h, show } from '../lib/dom.js';
import { renderCredential, renderCredentials } from './credentials.js';
import { renderDevelopers } from './developers.js';
import { renderSecurity } from './security.js';
import { renderSignIn } from './sign-in.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const banner = document.getElementById('banner');

const state = { me: null, notice: null };
let cleanup = null;

const api = createClient({
  onUnauthorized: (error) => {
    // The session ended (expired, signed out elsewhere, recovery code used on another device).
    if (state.me && error.errorId === 'PB_SESSION_INVALID') {
      state.me = null;
      state.notice = 'Your session has ended. Please sign in again.';
      route();
    }
  },
});

const ROUTES = [
  [/^\/credentials$/, (params, query) => renderCredentials(main, { api, query })],
  [/^\/credentials\/(crd_[a-z0-9-]+)$/, ([id]) => renderCredential(main, { api, id })],
  [/^\/account\/security$/, () => renderSecurity(main, { api, me: state.me })],
  [/^\/developers$/, () => renderDevelopers(main, { api, me: state.me })],
];

function currentPath() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/credentials';
  const [path, search = ''] = hash.split('?');
  return { path, query: new URLSearchParams(search) };
}

async function route() {
  cleanup?.();
  cleanup = null;
  if (!state.me) {
    nav.hidden = true;
    showNotice(takeNotice());
    cleanup = renderSignIn(main, { api, onSignedIn });
    focusHeading(main);
    return;
  }
  nav.hidden = false;
  const { path, query } = currentPath();
  const section = path.split('/')[1];
  for (const link of nav.querySelectorAll('a[data-section]')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const match = ROUTES.map(([pattern, view]) => [pattern.exec(path), view]).find(([found]) => found);
  if (!match) {
    location.replace('#/credentials');
    return;
  }
  const [found, view] = match;
  cleanup = view(found.slice(1), query) ?? null;
  showNotice(takeNotice());
  focusHeading(main);
}

/** A message that outlives the page it arrived with (signed out, recovery code used), until the next navigation. */
function showNotice(notice) {
  if (notice) show(banner, h('p', { class: 'notice info' }, notice));
  else show(banner);
}

function takeNotice() {
  const notice = state.notice;
  state.notice = null;
  return notice;
}

async function onSignedIn({ notice } = {}) {
  state.me = await api('GET', '/dashboard/me');
  state.notice = notice ?? null;
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/credentials');
  await route();
}

document.getElementById('sign-out').addEventListener('click', async () => {
  await api('POST', '/dashboard/logout').catch(() => undefined);
  state.me = null;
  state.notice = 'You have signed out.';
  // replaceState, not `location.hash =`: that would route a second time (hashchange) and drop the notice.
  history.replaceState(null, '', '#/credentials');
  await route();
});

// The skip link moves focus without touching the hash, which belongs to the router.
document.getElementById('skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/')) route();
});

async function start() {
  try {
    state.me = await api('GET', '/dashboard/me');
  } catch {
    state.me = null;
  }
  await route();
}

start();
