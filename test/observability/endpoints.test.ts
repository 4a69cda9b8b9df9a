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
