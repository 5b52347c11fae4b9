// API keys and webhook endpoints (organization admins). A client secret or signing secret appears once, right
// after it is created, until "Done"; the server never returns it again.

import { actionButton, copyable, field, form, h, show } from '../lib/dom.js';
import { dateTime } from '../lib/format.js';

const ATTEMPT_POLLS = 8;
const ATTEMPT_POLL_MS = 1500;

export function renderDevelopers(main, { api }) {
  const keysList = h('div', { 'aria-live': 'polite' });
  const keySecret = h('div');
  const endpointsList = h('div', { 'aria-live': 'polite' });
  const endpointSecret = h('div');
  let isLeft = false;

  show(
    main,
    h('h1', null, 'API keys & webhooks'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'keys-heading' },
      h('h2', { id: 'keys-heading' }, 'API keys'),
      h('p', { class: 'muted' }, 'Exchange a client id and secret for an access token at POST /oauth2/token.'),
      keysList,
      form(
        { class: 'inline-form', id: 'create-api-key' },
        [field('Key name', 'name', { required: true, maxlength: 200, autocomplete: 'off', placeholder: 'Production' }), h('button', { type: 'submit' }, 'Create API key')],
        async ({ name }, element) => {
          const created = await api('POST', '/dashboard/apiKeys', { name: String(name).trim() });
          element.reset();
          secretOnce(keySecret, 'Copy the client secret now: it is shown only this once.', [
            copyable('Client id', created.clientId),
            copyable('Client secret', created.client_secret),
          ]);
          await loadKeys();
        },
      ),
      keySecret,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'endpoints-heading' },
      h('h2', { id: 'endpoints-heading' }, 'Webhook endpoints'),
      h('p', { class: 'muted' }, 'Plugboard signs every delivery (Standard Webhooks) with the endpoint’s secret.'),
      endpointsList,
      form(
        { class: 'stack', id: 'create-endpoint' },
        [
          field('Endpoint URL', 'url', { type: 'url', required: true, placeholder: 'https://example.com/webhooks/plugboard', autocomplete: 'url' }),
          field('Description (optional)', 'description', { maxlength: 500, autocomplete: 'off' }),
          h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add endpoint')),
        ],
        async ({ url, description }, element) => {
          const body = { url: String(url).trim() };
          if (String(description).trim()) body.description = String(description).trim();
          const created = await api('POST', '/dashboard/plug/webhooks/endpoints', body);
          element.reset();
          secretOnce(endpointSecret, 'Copy the signing secret now: it is shown only this once.', [copyable('Signing secret', created.secret)]);
          await loadEndpoints();
        },
      ),
      endpointSecret,
    ),
  );

  function secretOnce(container, message, content) {
    show(
      container,
      h(
        'div',
        { class: 'secret-once stack' },
        h('p', { class: 'notice warning', role: 'status' }, message),
        content,
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => show(container) }, 'Done')),
      ),
    );
    container.querySelector('input')?.focus();
  }

  function forbiddenOr(error, container, what) {
    show(container, h('p', { class: error.status === 403 ? 'notice info' : 'notice danger' }, error.status === 403 ? `Only organization admins can manage ${what}.` : error.message));
  }

  async function loadKeys() {
    try {
      const page = await api('GET', '/dashboard/apiKeys?size=100');
      if (isLeft) return;
      if (page.data.length === 0) return show(keysList, h('p', { class: 'muted' }, 'No API keys yet.'));
      show(
        keysList,
        h(
          'ul',
          { class: 'rows' },
          page.data.map((key) =>
            h(
              'li',
              { class: 'row' },
              h('span', { class: 'row-title' }, key.name),
              h('span', { class: 'mono' }, key.clientId),
              h('span', { class: 'row-meta muted' }, `Created ${dateTime(key.createdAt)} · last used ${dateTime(key.lastUsedAt)}`),
              actionButton(`Revoke`, async () => {
                if (!window.confirm(`Revoke "${key.name}"? Its access tokens stop working at once.`)) return;
                await api('DELETE', `/dashboard/apiKeys/${key.id}`);
                await loadKeys();
              }, { class: 'danger small' }),
            ),
          ),
        ),
      );
    } catch (error) {
      forbiddenOr(error, keysList, 'API keys');
    }
  }

  async function loadEndpoints() {
    try {
      const page = await api('GET', '/dashboard/plug/webhooks/endpoints?size=100');
      if (isLeft) return;
      if (page.data.length === 0) return show(endpointsList, h('p', { class: 'muted' }, 'No webhook endpoints yet.'));
      show(endpointsList, h('ul', { class: 'rows' }, page.data.map(endpointRow)));
    } catch (error) {
      forbiddenOr(error, endpointsList, 'webhook endpoints');
    }
  }

  function endpointRow(endpoint) {
    const attempts = h('div', { class: 'attempts-region', 'aria-live': 'polite' });
    return h(
      'li',
      { class: 'row' },
      h('span', { class: 'row-title mono' }, endpoint.url),
      h('span', { class: `badge ${endpoint.isEnabled ? 'success' : 'danger'}` }, endpoint.isEnabled ? 'Enabled' : 'Disabled'),
      endpoint.description ? h('span', null, endpoint.description) : null,
      h('span', { class: 'row-meta muted' }, endpoint.eventTypes ? `Events: ${endpoint.eventTypes.join(', ')}` : 'All events'),
      endpoint.disabledReason ? h('span', { class: 'notice danger' }, endpoint.disabledReason) : null,
      h('div', { class: 'actions' }, actionButton('Send test', () => sendTest(endpoint, attempts), { class: 'secondary small' })),
      attempts,
    );
  }

  /** Sends a webhook.test and shows its delivery attempts as they happen. */
  async function sendTest(endpoint, container) {
    const event = await api('POST', `/dashboard/plug/webhooks/endpoints/${endpoint.id}/test`);
    show(container, h('p', { class: 'muted' }, `Test event ${event.id} queued…`));
    for (let poll = 0; poll < ATTEMPT_POLLS && !isLeft; poll += 1) {
      await new Promise((resolve) => setTimeout(resolve, ATTEMPT_POLL_MS));
      const { data } = await api('GET', `/dashboard/plug/events/${event.id}/attempts`);
      if (data.length > 0) show(container, attemptsTable(data));
      if (data.some((attempt) => attempt.outcome === 'succeeded' || attempt.nextAttemptAt === null)) return;
    }
  }

  function attemptsTable(attempts) {
    return h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        null,
        h('caption', null, 'Recent delivery attempts'),
        h('thead', null, h('tr', null, ['When', 'Result', 'HTTP status', 'Time', 'Next try'].map((label) => h('th', { scope: 'col' }, label)))),
        h(
          'tbody',
          null,
          attempts
            .slice(-10)
            .reverse()
            .map((attempt) =>
              h(
                'tr',
                null,
                h('td', null, dateTime(attempt.attemptedAt)),
                h('td', null, attempt.outcome === 'succeeded' ? 'Delivered' : `Failed${attempt.error ? `: ${attempt.error}` : ''}`),
                h('td', null, attempt.responseStatus === null ? '—' : String(attempt.responseStatus)),
                h('td', null, `${attempt.latencyMs} ms`),
                h('td', null, attempt.nextAttemptAt ? dateTime(attempt.nextAttemptAt) : '—'),
              ),
            ),
        ),
      ),
    );
  }

  loadKeys();
  loadEndpoints();
  return () => {
    isLeft = true;
  };
}
