import type { FastifyRequest } from 'fastify';
import t from 'tap';
import { MAX_WAIT_SECONDS, preferredWaitSeconds } from '../../src/routes/plug/credentials/prefer-wait.ts';

const waitOf = (prefer: string | string[] | undefined) => preferredWaitSeconds({ headers: { prefer } } as unknown as FastifyRequest);

t.test('Prefer: wait=N is read whole, clamped, and ignored when unreadable (RFC 7240)', async (t) => {
  t.equal(waitOf(undefined), null, 'no header');
  t.equal(waitOf('wait=5'), 5);
  t.equal(waitOf('respond-async, wait=10'), 10, 'among other preferences');
  t.equal(waitOf(['handling=lenient', 'wait="7"']), 7, 'quoted, in a second header');
  t.equal(waitOf('wait = 3 ; foo'), 3, 'with spaces and parameters after it');
  t.equal(waitOf('wait=0'), 0);
  t.equal(waitOf('wait=31'), MAX_WAIT_SECONDS, 'clamped');
  t.equal(waitOf(`wait=${'9'.repeat(40)}`), MAX_WAIT_SECONDS, 'however many digits');
  t.equal(waitOf('wait=1e309'), null, 'a number in another notation is unreadable, not a wait of 1 s');
  t.equal(waitOf('wait=5s'), null);
  t.equal(waitOf('wait=-1'), null);
  t.equal(waitOf('wait="5'), null, 'an unclosed quote');
  t.equal(waitOf('nowait=5'), null, 'another preference whose name ends in wait');
});
