/**
 * The ceiling of benchmark 1: a bare Fastify route on this machine that takes the same JSON request and
 * answers a JSON body of the same size as POST /plug/credentials does, with nothing behind it.
 * Prints `{ "port" }` once listening.
 */
import Fastify from 'fastify';

const responseBytes = Number(process.env.RESPONSE_BYTES ?? '1024');
const filler = 'x'.repeat(Math.max(0, responseBytes - '{"filler":""}'.length));
const body = JSON.stringify({ filler });

const app = Fastify({ logger: false });
app.post('/ceiling', async (_request, reply) => reply.status(201).header('content-type', 'application/json; charset=utf-8').send(body));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
