import t from 'tap';
import { Value } from 'typebox/value';
import { CredentialSchema } from '../../src/schemas/credentials.ts';
import { eventTypeCatalog, isEventType } from '../../src/webhooks/event-types.ts';
import { connectWithMfa, eventsOf } from '../credentials-helper.ts';
import { buildStack } from '../helper.ts';
import { startReceiver } from '../fixtures/webhook-receiver.ts';
import { createEndpoint, verifies } from '../fixtures/webhook-stack.ts';

t.test('every delivery of a full pass_mfa flow verifies with the standardwebhooks package', async (t) => {
  const stack = await buildStack(t);
  let secret = '';
  const rejected: string[] = [];
  const receiver = await startReceiver(t, (request, res) => {
    const ok = verifies(secret, request);
    if (!ok) rejected.push(request.id);
    res.writeHead(ok ? 204 : 400).end();
  });
  secret = (await createEndpoint(stack, { url: receiver.url })).secret;

  const credential = await connectWithMfa(stack, 'pass_mfa');
  const logged = await eventsOf(stack, credential.id);
  const loggedIds = new Set(logged.map((event) => event.id));
  await receiver.waitFor((all) => [...loggedIds].every((id) => all.some((request) => request.id === id)));

  const types = logged.map((event) => event.type);
  for (const type of ['credential.created', 'credential.mfa.method_required', 'credential.mfa.code_required', 'credential.connected']) {
    t.ok(types.includes(type), `the flow has ${type}`);
  }
  t.same(rejected, [], 'no delivery failed verification');
  const bodies = receiver.received.filter((request) => loggedIds.has(request.id)).map((request) => JSON.parse(request.body) as { id: string; type: string });
  t.ok(bodies.every((body) => loggedIds.has(body.id) && body.type === logged.find((event) => event.id === body.id)?.type), 'each body is its logged event');
  for (const body of bodies) {
    const entry = isEventType(body.type) ? eventTypeCatalog[body.type] : undefined;
    t.ok(entry && Value.Check({ Credential: CredentialSchema }, entry.schema, body), `the ${body.type} body matches its published schema`);
  }
});
