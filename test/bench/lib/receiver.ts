/**
 * A webhook receiver on loopback: records every delivery (event id, type, body, arrival time) and answers
 * 200, at once or after a delay. `down()` closes the port (connection refused, like a crashed receiver)
 * and `up()` opens the same port again.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  /** The `webhook-id` header: the event id, stable across retries. */
  eventId: string;
  type: string;
  /** When the event was committed (the envelope's `timestamp`). */
  committedAt: number;
  data: Record<string, unknown>;
  /** The request path, so one receiver can stand in for many endpoints. */
  path: string;
  /** Epoch milliseconds with sub-millisecond precision. */
  receivedAt: number;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Distinct event ids received (a retry or a resend of the same event counts once). */
  eventIds(): Set<string>;
  setDelayMs(ms: number): void;
  onDelivery(listener: (delivery: Delivery) => void): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export const nowMs = () => performance.timeOrigin + performance.now();

export async function startReceiver(options: { delayMs?: number; port?: number } = {}): Promise<Receiver> {
  let delayMs = options.delayMs ?? 0;
  const deliveries: Delivery[] = [];
  const listeners: ((delivery: Delivery) => void)[] = [];

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const receivedAt = nowMs();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; timestamp: string; data: Record<string, unknown> };
        const delivery = {
          eventId: String(request.headers['webhook-id']),
          type: body.type,
          committedAt: Date.parse(body.timestamp),
          data: body.data,
          path: request.url ?? '/',
          receivedAt,
        };
        deliveries.push(delivery);
        for (const listener of listeners) listener(delivery);
      } catch {
        response.writeHead(400).end();
        return;
      }
      const answer = () => response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  };

  const server = createServer({ keepAlive: true }, handle);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(options.port ?? 0);
  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    eventIds: () => new Set(deliveries.map((delivery) => delivery.eventId)),
    setDelayMs: (ms) => {
      delayMs = ms;
    },
    onDelivery: (listener) => {
      listeners.push(listener);
    },
    down: closeServer,
    up: async () => {
      await listen(port);
    },
    close: async () => {
      if (server.listening) await closeServer();
    },
  };
}
