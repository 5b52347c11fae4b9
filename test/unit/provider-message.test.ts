import t from 'tap';
import { MAX_PROVIDER_MESSAGE_LENGTH, providerMessage } from '../../src/connectors/provider-message.ts';

t.test('providerMessage tidies a provider text and keeps secrets out of it', async (t) => {
  t.equal(providerMessage('  Account\r\nlocked\u200b  ', []), 'Account locked', 'one line, no invisible characters');
  t.equal(providerMessage('Bad password hunter2, hunter2!', ['hunter2']), 'Bad password [redacted], [redacted]!', 'every occurrence');
  t.equal(providerMessage('Try 123 again', ['123']), 'Try 123 again', 'values too short to be told from words are left');
  t.equal(providerMessage(' \n\t ', []), undefined, 'nothing left: no message');
  t.equal(providerMessage('Password "hunter2\tsecret" refused', ['hunter2\tsecret']), 'Password "[redacted]" refused', 'a secret with a tab in it');
  t.equal(providerMessage('Password "hunter2  secret" refused', ['hunter2\nsecret']), 'Password "[redacted]" refused', 'one the site wrote on one line');
  t.equal(providerMessage('<p>Bad password p&amp;ss&lt;word</p>', ['p&ss<word']), '<p>Bad password [redacted]</p>', 'one echoed HTML-escaped');
  const long = providerMessage(`${'x'.repeat(500)}secret-value`, ['secret-value']);
  t.equal(long?.length, MAX_PROVIDER_MESSAGE_LENGTH);
  t.notMatch(long, /secret/, 'redacted before it is cut, so no part of a secret survives the cut');
});
