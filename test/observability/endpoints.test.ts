import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { joinBySubscription } from "../helpers/channels.js";
import { connectWs } from "../helpers/graphql.js";
import { startServer } from "../helpers/server.js";

const origin = (httpUrl: string) => new URL(httpUrl).origin;

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

describe("GET /ready", () => {
  it("is ready while serving; once shutdown begins it answers 503 draining for SHUTDOWN_DELAY_MS while connections keep being served", async () => {
    const server = await startServer({ SHUTDOWN_DELAY_MS: "1500" });
    expect(await getJson(`${origin(server.httpUrl)}/ready`)).toEqual({
      status: 200,
      body: { status: "ready", database: "ok", bus: "ok", draining: false },
    });

    const client = await connectWs(server.wsUrl);
    const { subscription } = await joinBySubscription(client, "still-served");
    const stopping = server.stop();
    expect(await getJson(`${origin(server.httpUrl)}/ready`)).toEqual({
      status: 503,
      body: { status: "draining", database: "ok", bus: "ok", draining: true },
    });
    expect((await getJson(`${origin(server.httpUrl)}/health`)).status).toBe(503);
    // Existing subscriptions are still served during the delay.
    const sent = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `mutation { sendMessage(channel: "still-served", payload: 1) { delivered } }` }),
    });
    expect(sent.status).toBe(200);
    expect((await subscription.next()).data?.channel.action).toBe("MESSAGE");
    await stopping;
    await expect(fetch(`${origin(server.httpUrl)}/ready`)).rejects.toThrow();
  });
});

describe("GET /", () => {
  it("is a small landing page linking GraphiQL, the demo, the admin console and the operator endpoints", async () => {
    const server = await startServer();
    const response = await fetch(`${origin(server.httpUrl)}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    for (const href of ["/graphql", "/demo", "/admin", "/health", "/ready", "/metrics"]) expect(html).toContain(`href="${href}"`);
  });

  it("leaves GraphiQL out when it is turned off", async () => {
    const server = await startServer({ GRAPHIQL: "false" });
    const html = await (await fetch(`${origin(server.httpUrl)}/`)).text();
    expect(html).not.toContain('href="/graphql"');
    expect(html).toContain('href="/demo"');
  });
});

describe("GET /graphql in a browser", () => {
  /** One raw request (no automatic decompression): status, headers and the body's bytes. */
  function get(url: string, headers: Record<string, string>, method = "GET") {
    return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const request = httpRequest(url, { method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
      });
      request.on("error", reject);
      request.end();
    });
  }

  it("is GraphiQL, gzipped for clients that accept it and plain for the others, the same page both ways", async () => {
    const server = await startServer();
    const plain = await get(server.httpUrl, { accept: "text/html" });
    expect(plain.status).toBe(200);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers["content-type"]).toMatch(/^text\/html/);
    expect(plain.body.toString()).toMatch(/<title>Realtime channels<\/title>/);

    const compressed = await get(server.httpUrl, { accept: "text/html", "accept-encoding": "br, gzip;q=0.8" });
    expect(compressed.headers["content-encoding"]).toBe("gzip");
    expect(compressed.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(compressed.headers["content-length"])).toBe(compressed.body.length);
    expect(compressed.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(compressed.body).equals(plain.body)).toBe(true);

    const refused = await get(server.httpUrl, { accept: "text/html", "accept-encoding": "gzip;q=0" });
    expect(refused.headers["content-encoding"]).toBeUndefined();
    const head = await get(server.httpUrl, { accept: "text/html" }, "HEAD");
    expect(head.body.length).toBe(0);
    expect(Number(head.headers["content-length"])).toBe(plain.body.length);
  });

  it("leaves GraphQL over GET to the endpoint, and is not served when GraphiQL is off", async () => {
    const server = await startServer();
    const query = await get(`${server.httpUrl}?query=${encodeURIComponent("{ __typename }")}`, { accept: "application/json" });
    expect(JSON.parse(query.body.toString())).toEqual({ data: { __typename: "Query" } });

    const off = await startServer({ GRAPHIQL: "false" });
    const page = await get(off.httpUrl, { accept: "text/html", "accept-encoding": "gzip" });
    expect(page.body.toString()).not.toMatch(/graphiql/i);
  });
});
