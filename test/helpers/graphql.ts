import type { FormattedExecutionResult } from "graphql";
import { type Client, createClient } from "graphql-ws";

/** A result as it arrives over the wire. */
export type ExecutionResult<T> = FormattedExecutionResult<T, unknown>;

import { afterAll } from "vitest";
import WebSocket from "ws";

/** A GraphQL response as JSON: data and/or errors. */
export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, any> }[];
}

/** Posts an operation over HTTP; returns the HTTP status and the parsed body. */
export async function httpGraphQL<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse<T> };
}

const clients = new Set<Client>();
afterAll(async () => {
  await Promise.all([...clients].map((client) => client.dispose()));
});

/**
 * Connects the real graphql-ws client, without retries, and waits for the connection to be
 * acknowledged (or refused: the promise rejects with the close event).
 */
export async function connectWs(url: string, connectionParams?: Record<string, unknown>): Promise<Client> {
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams,
    onNonLazyError: () => {}, // the connect promise below reports it
  });
  clients.add(client);
  await new Promise<void>((resolve, reject) => {
    const offConnected = client.on("connected", () => {
      offConnected();
      offClosed();
      resolve();
    });
    const offClosed = client.on("closed", (event) => {
      offConnected();
      offClosed();
      reject(event);
    });
  });
  return client;
}

/** Runs a query or mutation over the WebSocket and returns its single result. */
export function wsGraphQL<T = Record<string, any>>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<ExecutionResult<T>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<T> | undefined;
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => void (result = value),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error("completed without a result"))),
      },
    );
  });
}

/**
 * A subscription whose results are queued, so a test never misses one: `next()` returns the next
 * result (waiting up to `timeoutMs`), and `ended` settles when the server completes or errors it.
 */
export interface Subscription<T> {
  next(timeoutMs?: number): Promise<ExecutionResult<T>>;
  /** Resolves to the results received within `ms` (for asserting that nothing arrives). */
  collectFor(ms: number): Promise<ExecutionResult<T>[]>;
  readonly ended: Promise<{ error?: unknown }>;
  unsubscribe(): void;
}

/** Results queued as they arrive, taken one by one by a test. */
function resultQueue<T>(): Pick<Subscription<T>, "next" | "collectFor"> & { push(result: ExecutionResult<T>): void } {
  const queue: ExecutionResult<T>[] = [];
  const waiters: ((result: ExecutionResult<T>) => void)[] = [];
  return {
    push: (result) => {
      const waiter = waiters.shift();
      if (waiter) waiter(result);
      else queue.push(result);
    },
    next: (timeoutMs = 5000) => {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no subscription result within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (result: ExecutionResult<T>) => {
          clearTimeout(timer);
          resolve(result);
        };
        waiters.push(waiter);
      });
    },
    collectFor: async (ms) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return queue.splice(0);
    },
  };
}

/** Starts a subscription over the WebSocket. */
export function wsSubscribe<T = Record<string, any>>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): Subscription<T> {
  const { push, next, collectFor } = resultQueue<T>();
  let settle!: (outcome: { error?: unknown }) => void;
  const ended = new Promise<{ error?: unknown }>((resolve) => (settle = resolve));
  const unsubscribe = client.subscribe<T>(
    { query, variables },
    { next: push, error: (error) => settle({ error }), complete: () => settle({}) },
  );
  return { ended, unsubscribe, next, collectFor };
}

/**
 * Starts a subscription over HTTP with server-sent events (Yoga's GraphQL over SSE), with the same
 * queueing as {@link wsSubscribe}. `unsubscribe()` aborts the request.
 */
export function sseSubscribe<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Subscription<T> {
  const { push, next, collectFor } = resultQueue<T>();
  const abort = new AbortController();
  const ended = (async (): Promise<{ error?: unknown }> => {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
        body: JSON.stringify({ query, variables }),
        signal: abort.signal,
      });
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
          const lines = buffered.slice(0, end).split("\n");
          buffered = buffered.slice(end + 2);
          const event = lines.find((line) => line.startsWith("event: "))?.slice(7);
          const data = lines
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice(6))
            .join("\n");
          if (event === "complete") return {};
          if (data) push(JSON.parse(data) as ExecutionResult<T>);
        }
      }
      return {};
    } catch (error) {
      return abort.signal.aborted ? {} : { error };
    }
  })();
  return { ended, unsubscribe: () => abort.abort(), next, collectFor };
}
