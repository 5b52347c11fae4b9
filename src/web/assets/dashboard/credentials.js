// Credentials: the list (with the "Action required" filter) and one credential's page, where a console user
// answers its MFA challenge or hands the customer a hosted link.

import { actionButton, copyable, h, show } from '../lib/dom.js';
import { dateTime, detailLabel, statusLabel, statusTone } from '../lib/format.js';
import { mountMfaPanel } from '../lib/mfa-panel.js';

const PAGE_SIZE = 20;

/** Provider names by id, fetched once per page load. */
let providerNames = null;
async function providerName(api, providerId) {
  providerNames ??= api('GET', '/dashboard/plug/providers')
    .then((page) => new Map(page.data.map((provider) => [provider.id, provider.name])))
    .catch(() => new Map());
  return (await providerNames).get(providerId) ?? providerId;
}

export function statusBadges(credential) {
  return h(
    'span',
    { class: 'badges' },
    h('span', { class: `badge ${statusTone(credential)}` }, statusLabel(credential.status)),
    credential.isCustomerActionRequired ? h('span', { class: 'badge warning' }, 'Action required') : null,
  );
}

export function renderCredentials(main, { api, query }) {
  const actionRequiredOnly = query.get('filter') === 'action-required';
  const page = Math.max(0, Number(query.get('page') ?? 0) || 0);
  const filterLink = (label, isCurrent, href) => h('a', { href, class: 'tab', 'aria-current': isCurrent ? 'page' : false }, label);
  const list = h('div', { class: 'list-region', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading credentials…'));
  show(
    main,
    h('h1', null, 'Credentials'),
    h(
      'nav',
      { class: 'tabs', 'aria-label': 'Filter credentials' },
      filterLink('All', !actionRequiredOnly, '#/credentials'),
      filterLink('Action required', actionRequiredOnly, '#/credentials?filter=action-required'),
    ),
    list,
  );

  (async () => {
    const params = new URLSearchParams({ page: String(page), size: String(PAGE_SIZE), sort: 'createdAt,desc' });
    if (actionRequiredOnly) params.set('isCustomerActionRequired', 'true');
    const result = await api('GET', `/dashboard/plug/credentials?${params}`);
    const names = await Promise.all(result.data.map((credential) => providerName(api, credential.providerId)));
    list.removeAttribute('aria-busy');
    if (result.data.length === 0) {
      show(list, h('p', { class: 'muted' }, actionRequiredOnly ? 'No credential needs action right now.' : 'No credentials yet. Submit one through the API.'));
      return;
    }
    const base = actionRequiredOnly ? '#/credentials?filter=action-required&' : '#/credentials?';
    show(
      list,
      h(
        'ul',
        { class: 'rows' },
        result.data.map((credential, index) =>
          h(
            'li',
            { class: 'row' },
            h('a', { href: `#/credentials/${credential.id}`, class: 'row-title' }, `${names[index]} · ${credential.username}`),
            statusBadges(credential),
            h('span', { class: 'row-detail' }, detailLabel(credential.statusDetail)),
            h('span', { class: 'row-meta muted' }, `Updated ${dateTime(credential.lastModifiedAt)}`),
          ),
        ),
      ),
      h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages' },
        page > 0 ? h('a', { href: `${base}page=${page - 1}` }, 'Previous page') : null,
        h('span', { class: 'muted' }, `Page ${result.page.number + 1} of ${Math.max(1, result.page.totalPages)} · ${result.page.totalElements} in all`),
        page + 1 < result.page.totalPages ? h('a', { href: `${base}page=${page + 1}` }, 'Next page') : null,
      ),
    );
  })().catch((error) => show(list, h('p', { class: 'notice danger', role: 'alert' }, error.message)));
}

export function renderCredential(main, { api, id }) {
  const base = `/dashboard/plug/credentials/${id}`;
  // Prefer: the MFA calls answer once the provider replied (or after 10 s), so the page rarely needs to poll.
  const wait = { prefer: 'wait=10' };
  const title = h('h1', null, 'Credential');
  const summary = h('div', { class: 'summary' });
  const panel = h('section', { class: 'card', 'aria-labelledby': 'mfa-heading' });
  const linkArea = h('div', { class: 'stack' });
  let name = '';

  function renderSummary(credential) {
    show(
      summary,
      statusBadges(credential),
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'Status'),
        h('dd', null, detailLabel(credential.statusDetail)),
        h('dt', null, 'Username'),
        h('dd', null, credential.username),
        h('dt', null, 'Correlation id'),
        h('dd', null, credential.correlationId ?? '—'),
        h('dt', null, 'Last synced'),
        h('dd', null, dateTime(credential.lastSyncedAt)),
        h('dt', null, 'Provider session ends'),
        h('dd', null, credential.mfaSession ? dateTime(credential.mfaSession.expiresAt) : '—'),
        h('dt', null, 'Id'),
        h('dd', { class: 'mono' }, credential.id),
      ),
    );
  }

  show(
    main,
    h('p', null, h('a', { href: '#/credentials' }, '← All credentials')),
    title,
    summary,
    panel,
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'link-heading' },
      h('h2', { id: 'link-heading' }, 'Let your customer answer'),
      h('p', null, 'A hosted page where your customer can answer this credential’s verification without a Dashboard account. The link works for 72 hours and for this credential only.'),
      h(
        'div',
        { class: 'actions' },
        actionButton('Create link', async () => {
          const link = await api('POST', `${base}/connectLink`);
          show(linkArea, copyable('Link for your customer', link.url), h('p', { class: 'muted' }, `Expires ${dateTime(link.expiresAt)}.`));
          linkArea.querySelector('input')?.focus();
        }),
        actionButton('Revoke all links', async () => {
          await api('DELETE', `${base}/connectLink`);
          show(linkArea, h('p', { class: 'notice info', role: 'status' }, 'Every link to this credential has stopped working.'));
        }, { class: 'secondary' }),
      ),
      linkArea,
    ),
  );
  panel.prepend(h('h2', { id: 'mfa-heading' }, 'Verification'));
  const panelBody = h('div');
  panel.append(panelBody);

  let mfa = null;
  let isLeft = false;
  (async () => {
    const credential = await api('GET', base);
    name = await providerName(api, credential.providerId);
    if (isLeft) return;
    title.textContent = `${name} · ${credential.username}`;
    mfa = mountMfaPanel(panelBody, {
      providerName: () => name,
      load: () => api('GET', base),
      chooseMethod: (body) => api('PUT', `${base}/verificationMethod`, body, wait),
      submitCode: (body) => api('PUT', `${base}/oneTimePasscode`, body, wait),
      restart: () => api('POST', `${base}/refresh`, undefined, wait),
      // Any failure can be retried from here (a new password goes through the API).
      canRestart: (current) => current.status === 'CONNECTION_FAILURE',
      onChange: renderSummary,
    });
  })().catch((error) => show(panelBody, h('p', { class: 'notice danger', role: 'alert' }, error.status === 404 ? 'This credential does not exist (or was deleted).' : error.message)));
  return () => {
    isLeft = true;
    mfa?.stop();
  };
}
