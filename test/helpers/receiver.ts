import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll } from "vitest";

/** One request a {@link Receiver} got. */
export interface ReceivedRequest {
  readonly path: string;
  readonly webhookId: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
  /** `Date.now()` when the request arrived. */
  readonly at: number;
}

/** How a receiver answers: a status, optional headers, and how long it waits first. */
export interface ReceiverAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly delayMs?: number;
  /** Answers only once this settles (and `delayMs` has passed): a request held open until the test says so. */
  readonly until?: Promise<unknown>;
  /** The response body; `{}` by default (with `content-type: application/json` unless `headers` say otherwise). */
  readonly body?: string;
}

/** A webhook receiver listening on 127.0.0.1 that records every request and answers as `answer` decides. */
export interface Receiver {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly requests: ReceivedRequest[];
  /** The most requests with one `webhook-id` that were ever in progress at the same time. */
  maxInFlightPerId(): number;
  /** Replaces how requests are answered. */
  answerWith(answer: (request: ReceivedRequest) => ReceiverAnswer): void;
  close(): Promise<void>;
}

const receivers = new Set<Receiver>();
afterAll(async () => {
  await Promise.all([...receivers].map((receiver) => receiver.close()));
});

/** Starts a {@link Receiver} on a free loopback port (closed after the test file). */
export async function startReceiver(answer: (request: ReceivedRequest) => ReceiverAnswer = () => ({ status: 200 })): Promise<Receiver> {
  let decide = answer;
  const requests: ReceivedRequest[] = [];
  const inFlight = new Map<string, number>();
  let maxInFlight = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk));
    req.on("end", () => {
      const request: ReceivedRequest = {
        path: req.url ?? "/",
        webhookId: String(req.headers["webhook-id"] ?? ""),
        headers: req.headers,
        body,
        at: Date.now(),
      };
      requests.push(request);
      const now = (inFlight.get(request.webhookId) ?? 0) + 1;
      inFlight.set(request.webhookId, now);
      maxInFlight = Math.max(maxInFlight, now);
      const reply = decide(request);
      const delayed = new Promise((resolve) => setTimeout(resolve, reply.delayMs ?? 0));
      void Promise.allSettled([delayed, reply.until]).then(() => {
        inFlight.set(request.webhookId, inFlight.get(request.webhookId)! - 1);
        if (!res.destroyed) res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(reply.body ?? "{}");
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: Receiver = {
    port,
    origin: `http://127.0.0.1:${port}`,
    requests,
    maxInFlightPerId: () => maxInFlight,
    answerWith: (next) => void (decide = next),
    close: () => {
      receivers.delete(receiver);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  receivers.add(receiver);
  return receiver;
}
