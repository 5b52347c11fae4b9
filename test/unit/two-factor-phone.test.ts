import t from 'tap';
import { isE164, maskEmail, maskPhone } from '../../src/two-factor/phone.ts';

t.test('isE164', async (t) => {
  for (const number of ['+15551234567', '+447911123456', '+6834002', '+123456789012345']) {
    t.ok(isE164(number), number);
  }
  const invalid = ['15551234567', '+05551234567', '+1 555 123 4567', '+1-555-123-4567', '+1234567890123456', '+123456', '+', '', '+1555123456７', ' +15551234567'];
  for (const number of invalid) {
    t.notOk(isE164(number), JSON.stringify(number));
  }
});

t.test('maskPhone shows the first and last four digits only', async (t) => {
  t.equal(maskPhone('+15551234567'), '+1******4567');
  t.equal(maskPhone('+447911123456'), '+4*******3456');
  t.equal(maskPhone('+6834002'), '+6**4002', 'the shortest numbers still hide something');
  t.equal(maskPhone('555-1234'), '***', 'anything else is hidden entirely');
});

t.test('maskEmail keeps the first character and the domain', async (t) => {
  t.equal(maskEmail('alice@example.com'), 'a***@example.com');
  t.equal(maskEmail('a@example.com'), 'a***@example.com', 'the length of the local part is not revealed');
  t.equal(maskEmail('"odd@local"@example.com'), '"***@example.com');
  t.equal(maskEmail('@example.com'), '***');
  t.equal(maskEmail('not-an-email'), '***');
});
