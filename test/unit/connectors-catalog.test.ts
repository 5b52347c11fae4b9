import t from 'tap';
import { connectorFor, findProvider, listProviders, type LoginField, type Provider } from '../../src/connectors/catalog.ts';
import { isId } from '../../src/ids.ts';

t.test('every provider carries SPEC §3 fields with a well-formed, unique id', async (t) => {
  const providers = listProviders();
  t.ok(providers.length >= 2);
  t.equal(new Set(providers.map((provider) => provider.id)).size, providers.length, 'ids are unique');
  for (const provider of providers) {
    t.ok(isId('prv', provider.id), `${provider.id} is prv_ + 26 base32 characters`);
    t.match(provider, { name: /\S/, country: /^[A-Z]{2}$/, isSandbox: true });
    t.same(provider.mfaMethods, ['SMS', 'CALL', 'EMAIL', 'APP']);
    t.same(provider.loginFields.map((field) => field.name), ['username', 'password']);
    t.ok(provider.loginFields.find((field) => field.name === 'password')?.isSecret, 'the password is secret');
    t.type(provider.sessionLifetimeSeconds, 'number');
  }
});

t.test('findProvider finds by id and nothing else', async (t) => {
  const [first] = listProviders();
  t.same(findProvider(first?.id ?? ''), first);
  t.equal(findProvider('prv_doesnotexistxxxxxxxxxxxxxx'), undefined);
  t.equal(findProvider('toString'), undefined);
});

t.test('callers cannot change the catalog through the objects they get', async (t) => {
  const [first] = listProviders();
  if (!first) throw new Error('empty catalog');
  t.throws(() => {
    first.name = 'Renamed';
  }, TypeError);
  t.throws(() => first.mfaMethods.pop(), TypeError);
  t.throws(() => {
    (first.loginFields[0] as LoginField).label = 'Renamed';
  }, TypeError);
  t.match(findProvider(first.id), { name: /^Sandbox/, mfaMethods: ['SMS', 'CALL', 'EMAIL', 'APP'], loginFields: [{ label: 'Username' }] });
});

t.test('connectorFor serves catalog providers and refuses strangers', async (t) => {
  const [first] = listProviders();
  if (!first) throw new Error('empty catalog');
  const connector = connectorFor(first, { sandboxBaseUrl: 'http://127.0.0.1:9' });
  t.type(connector.login, 'function');
  const stranger: Provider = { ...first, id: 'prv_strangerxxxxxxxxxxxxxxxxxx' };
  t.throws(() => connectorFor(stranger, { sandboxBaseUrl: 'http://127.0.0.1:9' }), /not in the catalog/);
});
