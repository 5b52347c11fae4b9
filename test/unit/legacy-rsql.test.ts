import t from 'tap';
import { PlugError } from '../../src/errors.ts';
import { compileSearch, globMatcher, type Searchable } from '../../src/legacy/rsql.ts';

const item = (fields: Partial<Searchable>): Searchable => ({
  correlationId: null,
  providerName: 'Sandbox Electric',
  status: 'OK',
  username: 'alice',
  ...fields,
});

const ITEMS: Record<string, Searchable> = {
  abcOk: item({ correlationId: 'abc-1', status: 'OK' }),
  abcPending: item({ correlationId: 'abc-2', status: 'PENDING' }),
  xyzOk: item({ correlationId: 'xyz-abc', status: 'OK', providerName: 'Other Utility' }),
  gasActionRequired: item({ correlationId: null, status: 'ACTION_REQUIRED', providerName: 'Sandbox Gas' }),
  otherActionRequired: item({ correlationId: 'abc-3', status: 'ACTION_REQUIRED', providerName: 'Other Utility' }),
};

function matching(search: string): string[] {
  const predicate = compileSearch(search);
  return Object.entries(ITEMS)
    .filter(([, candidate]) => predicate(candidate))
    .map(([name]) => name);
}

t.test('the two SPEC examples', async (t) => {
  t.same(matching('correlationId==abc*;status==OK'), ['abcOk']);
  t.same(matching('providerName==Sandbox*,status!=OK'), ['abcOk', 'abcPending', 'gasActionRequired', 'otherActionRequired']);
});

t.test('";" binds tighter than ","', async (t) => {
  t.same(matching('status==PENDING,providerName==Other*;status==OK'), ['abcPending', 'xyzOk']);
  t.same(matching('providerName==Other*;status==OK,status==PENDING'), ['abcPending', 'xyzOk']);
});

t.test('!= is the negation of ==, including for a missing correlationId', async (t) => {
  t.same(matching('correlationId!=abc*'), ['xyzOk', 'gasActionRequired']);
  t.same(matching('correlationId==*'), ['abcOk', 'abcPending', 'xyzOk', 'otherActionRequired'], '* does not match a missing value');
});

t.test('quoted values hold spaces and reserved characters; whitespace between tokens is ignored', async (t) => {
  t.same(matching('providerName=="Sandbox Gas"'), ['gasActionRequired']);
  t.same(matching("providerName=='Other Utility' ; status == OK"), ['xyzOk']);
  const predicate = compileSearch('username=="a;b,\\"c\\""');
  t.ok(predicate(item({ username: 'a;b,"c"' })));
  t.notOk(predicate(item({ username: 'a;b,c' })));
});

t.test('matching is exact and case-sensitive', async (t) => {
  t.same(matching('correlationId==abc'), []);
  t.same(matching('providerName==sandbox*'), []);
  t.same(matching('username==alice'), Object.keys(ITEMS));
});

t.test('glob matching', async (t) => {
  const matches = (pattern: string, text: string) => globMatcher(pattern)(text);
  t.ok(matches('a*c', 'abbbc'));
  t.ok(matches('*', ''));
  t.ok(matches('**a**', 'xax'));
  t.ok(matches('a*b*c', 'a-b-b-c'));
  t.ok(matches('abc', 'abc'), 'no star: equality');
  t.notOk(matches('a*c', 'abcd'));
  t.notOk(matches('abc', 'ab'));
  t.notOk(matches('ab*ba', 'aba'), 'prefix and suffix may not share characters');
  t.notOk(matches('a*ba*a', 'aba'), 'nor may a middle piece reach into the suffix');
  t.ok(matches('a*b*a', 'aba'), 'stars may stand for nothing');
  t.ok(matches('a*b*a', 'abba'));
  t.ok(matches('*ab*ab', 'xabyab'), 'the first match of a middle piece leaves room for the rest');
  t.notOk(matches(`${'*a'.repeat(50)}b`, 'a'.repeat(5000)), 'many stars against a long miss');
  t.ok(matches(`${'*a'.repeat(50)}*`, 'a'.repeat(5000)));
});

const MALFORMED: [string, RegExp][] = [
  ['', /empty/],
  ['status', /expected == or !=/],
  ['status=OK', /expected == or !=/],
  ['status==', /expected a value/],
  ['status=in=(OK,PENDING)', /operator "=in=" is not supported/],
  ['status=gt=OK', /operator "=gt=" is not supported/],
  ['(status==OK)', /character 1: parentheses are not supported/],
  ['status==OK;(username==a)', /character 12: parentheses are not supported/],
  ['status==OK)', /parentheses are not supported/],
  ['entityId==crd_1', /"entityId" cannot be searched; use one of correlationId, providerName, status, username/],
  ['status==CONNECTION_SUCCESS', /status is one of OK, PENDING, ACTION_REQUIRED, NON_FUNCTIONAL/],
  ['status==OK;', /expected a field name/],
  ['status==OK,,username==a', /expected a field name/],
  ['username=="open', /never closed/],
  ['username==a b', /unexpected "b"/],
  ['username<a', /operator "<" is not supported/],
];

for (const [search, message] of MALFORMED) {
  t.test(`refuses ${JSON.stringify(search)}`, async (t) => {
    const error = catchError(() => compileSearch(search));
    t.ok(error instanceof PlugError, 'a catalog error');
    t.match(error, { statusCode: 400, param: 'search', value: search, message });
  });
}

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
