import t from 'tap';
import { halPage, legacyUrls, prefersHal } from '../../src/legacy/hal.ts';

const urls = legacyUrls('https://api.example.com/base');
const page = (number: number, size: number, totalElements: number) => ({
  data: [],
  page: { number, size, totalElements, totalPages: Math.ceil(totalElements / size) },
});
const href = (number: number, size = 2) => `https://api.example.com/base/v1/utility/credentials?search=status%3D%3DOK&page=${number}&size=${size}`;
const request = { collectionUrl: urls.credentials, query: { search: 'status==OK' } };

t.test('links keep the query, sit under the public URL (path included) and stop at the ends', async (t) => {
  t.same(halPage('credentials', page(1, 2, 5), request)._links, { self: { href: href(1) }, next: { href: href(2) }, prev: { href: href(0) }, last: { href: href(2) } });
  t.same(halPage('credentials', page(0, 2, 5), request)._links, { self: { href: href(0) }, next: { href: href(1) }, last: { href: href(2) } });
  t.same(halPage('credentials', page(2, 2, 5), request)._links, { self: { href: href(2) }, prev: { href: href(1) }, last: { href: href(2) } });
});

t.test('an empty list is one empty page; a page past the end points back to the last one', async (t) => {
  const empty = halPage('credentials', page(0, 20, 0), request);
  t.same(empty, {
    _embedded: { credentials: [] },
    _links: { self: { href: href(0, 20) }, last: { href: href(0, 20) } },
    page: { size: 20, totalElements: 0, totalPages: 0, number: 0 },
  });
  t.same(halPage('credentials', page(7, 2, 5), request)._links.prev, { href: href(2) });
});

t.test('HAL is chosen when Accept names it at least as much as plain JSON, never at q=0', async (t) => {
  for (const accept of ['application/hal+json', 'Application/HAL+JSON', 'application/hal+json, application/json;q=0.5', 'application/json, application/hal+json', 'application/hal+json;q=0.8, application/json;q=0.8']) {
    t.ok(prefersHal(accept), accept);
  }
  for (const accept of [undefined, '', '*/*', 'application/json', 'application/hal+json;q=0, application/json', 'application/hal+json;q=0.5, application/json', 'application/hal+json;q=0', 'application/hal+json;q=abc, application/json']) {
    t.notOk(prefersHal(accept), String(accept));
  }
});
