import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CHANNEL_SUBSCRIPTION, joinBySubscription, SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, sseSubscribe, wsGraphQL } from "../helpers/graphql.js";
import { metricsUrl, scrape } from "../helpers/metrics.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN, startServer } from "../helpers/server.js";
import { createTrigger } from "../helpers/triggers.js";

const MESSAGE = { action: "MESSAGE" };

/**
 * Runs `test` with a stub webhook receiver on loopback (200 on /ok, 503 on anything else) and the
 * server settings that let trigger http steps reach it.
 */
async function withWebhookStub(test: (port: number, env: Record<string, string>) => Promise<void>): Promise<void> {
  const stub = createServer((req, res) => res.writeHead(req.url === "/ok" ? 200 : 503).end());
  await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
  const port = (stub.address() as AddressInfo).port;
  try {
    await test(port, {
      WEBHOOK_SECRET: `whsec_${Buffer.from("a-webhook-secret-for-tests-0123").toString("base64")}`,
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${port}`,
    });
  } finally {
    await new Promise<void>((resolve) => stub.close(() => resolve()));
  }
}

describe("GET /metrics", () => {
  it("exposes the process metrics and every realtime metric in the Prometheus text format", async () => {
    const server = await startServer();
    const { families } = await scrape(server.httpUrl);
    const names = families.map((family) => family.name);
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
      "realtime_connections",
      "realtime_subscriptions",
      "realtime_channels",
      "realtime_messages_received_total",
      "realtime_messages_delivered_total",
      "realtime_messages_dropped_total",
      "realtime_delivery_latency_seconds",
      "realtime_trigger_runs_total",
      "realtime_trigger_run_duration_seconds",
      "realtime_webhook_calls_total",
      "realtime_rate_limited_total",
      "realtime_slow_consumers_dropped_total",
      "realtime_auth_failures_total",
      "realtime_graphql_operations_total",
      "realtime_after_trigger_attempts_total",
      "realtime_after_trigger_runs_pending",
      "realtime_after_trigger_runs_pending_per_trigger",
      "realtime_after_trigger_refusals_total",
      "realtime_trigger_state_purge_failures_total",
    ]) {
      expect(names, name).toContain(name);
    }
  });

  it("counts connections, subscriptions, channels and messages as traffic flows", async () => {
    const server = await startServer();
    const before = await scrape(server.httpUrl);
    expect(before.value("realtime_connections", { transport: "ws" })).toBe(0);

    const client = await connectWs(server.wsUrl);
    const { subscription } = await joinBySubscription(client, "metrics:room");
    const sse = sseSubscribe(server.httpUrl, CHANNEL_SUBSCRIPTION, { name: "metrics:room" });
    await sse.next(); // its own JOIN
    await subscription.next(); // the SSE subscriber's JOIN

    for (let i = 0; i < 3; i++) {
      const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "metrics:room", payload: { i } });
      expect(sent.body.data?.sendMessage.delivered).toBe(true);
      await subscription.next();
      await sse.next();
    }

    const during = await scrape(server.httpUrl);
    expect(during.value("realtime_connections", { transport: "ws" })).toBe(1);
    expect(during.value("realtime_connections", { transport: "http" })).toBeGreaterThanOrEqual(1); // the SSE stream (and perhaps this scrape)
    expect(during.value("realtime_subscriptions", { transport: "ws" })).toBe(1);
    expect(during.value("realtime_subscriptions", { transport: "http" })).toBe(1);
    expect(during.value("realtime_channels")).toBe(1);
    expect(during.value("realtime_messages_received_total", MESSAGE)).toBe(3);
    expect(during.value("realtime_messages_received_total", { action: "JOIN" })).toBe(2);
    expect(during.value("realtime_messages_delivered_total", MESSAGE)).toBe(6); // 3 messages x 2 subscribers
    expect(during.value("realtime_messages_delivered_total", { action: "JOIN" })).toBe(3); // the first JOIN had one subscriber
    expect(during.histogramCount("realtime_delivery_latency_seconds")).toBe(5); // once per event, not per subscriber
    expect(during.value("realtime_graphql_operations_total", { type: "mutation", field: "sendMessage", result: "ok" })).toBe(3);
    expect(during.value("realtime_graphql_operations_total", { type: "subscription", field: "channel", result: "ok" })).toBe(2);

    subscription.unsubscribe();
    sse.unsubscribe();
    await client.dispose();
    await expect.poll(async () => (await scrape(server.httpUrl)).value("realtime_connections", { transport: "ws" })).toBe(0);
    await expect
      .poll(async () => (await scrape(server.httpUrl)).value("realtime_connections", { transport: "http" }))
      .toBeLessThanOrEqual(1);
    const after = await scrape(server.httpUrl);
    expect(after.value("realtime_subscriptions", { transport: "ws" })).toBe(0);
    expect(after.value("realtime_channels")).toBe(0);
    expect(after.value("realtime_messages_received_total", { action: "LEAVE" })).toBe(2);
  });

  it("counts trigger runs by outcome, dropped and refused messages, rate limits, auth failures and invalid operations", async () => {
    const server = await startServer({ MAX_MESSAGES_PER_SECOND: "2" });
    await createTrigger(server.httpUrl, { name: "dropper", channel: "drop:*", stack: [{ drop: true }] });
    await createTrigger(server.httpUrl, { name: "refuser", channel: "refuse:*", stack: [{ reject: "'no'", code: "NOPE" }] });

    const dropped = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "drop:1", payload: 1 }, { token: ADMIN_TOKEN });
    expect(dropped.body.data?.sendMessage.delivered).toBe(false);
    const refused = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "refuse:1", payload: 1 }, { token: ADMIN_TOKEN });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("NOPE");

    // One WebSocket client, so every send is the same client's: the third within a second is refused.
    const client = await connectWs(server.wsUrl);
    const codes: unknown[] = [];
    for (let i = 0; i < 4; i++)
      codes.push((await wsGraphQL(client, SEND_MESSAGE, { channel: "busy", payload: i })).errors?.[0]?.extensions?.code);
    const rateLimited = codes.filter((code) => code === "RATE_LIMITED").length;
    expect(rateLimited).toBeGreaterThan(0);

    expect((await httpGraphQL(server.httpUrl, "{ serverInfo { version } }", {}, { token: "not-the-admin-token" })).status).toBe(401);
    expect((await httpGraphQL(server.httpUrl, "{ serverInfo { version } }")).body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    await expect(connectWs(server.wsUrl, { adminToken: "not-the-admin-token" })).rejects.toMatchObject({ code: 4403 });
    expect((await httpGraphQL(server.httpUrl, "{ noSuchField }")).body.errors?.[0]?.message).toMatch(/noSuchField/);

    const metrics = await scrape(server.httpUrl);
    expect(metrics.value("realtime_trigger_runs_total", { outcome: "DROPPED" })).toBe(1);
    expect(metrics.value("realtime_trigger_runs_total", { outcome: "REJECTED" })).toBe(1);
    expect(metrics.histogramCount("realtime_trigger_run_duration_seconds")).toBe(2);
    expect(metrics.value("realtime_messages_dropped_total", { action: "MESSAGE", reason: "dropped" })).toBe(1);
    expect(metrics.value("realtime_messages_dropped_total", { action: "MESSAGE", reason: "refused" })).toBe(1);
    expect(metrics.value("realtime_rate_limited_total")).toBe(rateLimited);
    expect(metrics.value("realtime_graphql_operations_total", { type: "mutation", field: "sendMessage", result: "error" })).toBe(
      rateLimited + 1,
    );
    expect(metrics.value("realtime_auth_failures_total", { transport: "http", reason: "credentials" })).toBe(1);
    expect(metrics.value("realtime_auth_failures_total", { transport: "http", reason: "permission" })).toBe(1);
    expect(metrics.value("realtime_auth_failures_total", { transport: "ws", reason: "credentials" })).toBe(1);
    expect(metrics.value("realtime_graphql_operations_total", { type: "query", field: "", result: "invalid" })).toBe(1);
  });

  it("counts a WebSocket it drops for not reading", { timeout: 60_000 }, async () => {
    const server = await startServer({ MAX_WS_BUFFERED_BYTES: String(64 * 1024) });
    const watcher = await joinBySubscription(await connectWs(server.wsUrl), "slow");
    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
    const frames: { type: string }[] = [];
    socket.on("message", (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init" }));
    await expect.poll(() => frames.some((frame) => frame.type === "connection_ack")).toBe(true);
    socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: CHANNEL_SUBSCRIPTION, variables: { name: "slow" } } }));
    await expect.poll(() => frames.some((frame) => frame.type === "next")).toBe(true);
    await watcher.subscription.next(); // its JOIN
    socket.pause(); // reads nothing more
    for (let sent = 1, left = false; !left; sent++) {
      expect(sent, "the slow socket was never dropped").toBeLessThan(400);
      await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "slow", payload: { pad: "p".repeat(60_000) } }, { token: ADMIN_TOKEN });
      for (let event = (await watcher.subscription.next()).data!.channel; ; event = (await watcher.subscription.next()).data!.channel) {
        if (event.action === "LEAVE") left = true;
        else break;
      }
    }
    expect((await scrape(server.httpUrl)).value("realtime_slow_consumers_dropped_total", { transport: "ws" })).toBe(1);
  });

  it("counts webhook calls by status class, and calls that got no response", async () => {
    await withWebhookStub(async (port, env) => {
      const server = await startServer(env);
      for (const [channel, path] of [
        ["hook:ok", "ok"],
        ["hook:down", "down"],
        ["hook:gone", "gone"],
      ] as const) {
        // hook:gone asks a loopback port WEBHOOK_ALLOW_HOSTS does not allow: refused, so no response at all.
        const url = channel === "hook:gone" ? `'http://127.0.0.1:1/x'` : `'http://127.0.0.1:${port}/${path}'`;
        await createTrigger(server.httpUrl, {
          name: channel,
          channel,
          onError: "DELIVER",
          stack: [{ http: { url, method: "GET", timeoutMs: 2000 }, as: "r" }],
        });
        await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: 1 });
      }
      const metrics = await scrape(server.httpUrl);
      expect(metrics.value("realtime_webhook_calls_total", { status: "2xx" })).toBe(1);
      expect(metrics.value("realtime_webhook_calls_total", { status: "5xx" })).toBe(1);
      expect(metrics.value("realtime_webhook_calls_total", { status: "error" })).toBe(1);
    });
  });

  it("counts AFTER trigger attempts by result (on the AFTER thread) and the runs pending", async () => {
    await withWebhookStub(async (port, env) => {
      const server = await startServer({
        ...env,
        TRIGGER_RETRY_BASE_MS: "10",
        TRIGGER_RETRY_MAX_MS: "20",
        TRIGGER_RETRY_LIMIT: "2",
      });
      const triggerIds: string[] = [];
      for (const path of ["ok", "down"]) {
        const channel = `after:${path}`;
        const { id } = await createTrigger(server.httpUrl, {
          name: channel,
          channel,
          timing: "AFTER",
          stack: [{ http: { url: `'http://127.0.0.1:${port}/${path}'` }, as: "r" }],
        });
        triggerIds.push(id);
        await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: 1 });
      }
      // /ok: delivered at once; /down: 503 twice, so one retry, then failed (TRIGGER_RETRY_LIMIT 2).
      await eventually(
        "one failed AFTER attempt counted",
        async () => (await scrape(server.httpUrl)).value("realtime_after_trigger_attempts_total", { result: "failed" }),
        { until: (failed) => failed === 1 },
      );
      const metrics = await scrape(server.httpUrl);
      expect(metrics.value("realtime_after_trigger_attempts_total", { result: "delivered" })).toBe(1);
      expect(metrics.value("realtime_after_trigger_attempts_total", { result: "retry" })).toBe(1);
      expect(metrics.value("realtime_webhook_calls_total", { status: "5xx" })).toBe(2);
      await eventually("no AFTER run pending", async () => (await scrape(server.httpUrl)).value("realtime_after_trigger_runs_pending"), {
        until: (pending) => pending === 0,
      });
      // One series per AFTER trigger, by id.
      const perTrigger = (await scrape(server.httpUrl)).families.find(
        (family) => family.name === "realtime_after_trigger_runs_pending_per_trigger",
      );
      expect(perTrigger?.metrics.map((sample) => [sample.labels?.trigger, Number(sample.value)]).sort()).toEqual(
        triggerIds.map((id) => [id, 0]).sort(),
      );
    });
  });

  it("never uses a channel name or a client id as a label value", async () => {
    const server = await startServer();
    const channelName = fc.stringMatching(/^[A-Za-z0-9_:.@/-]{12,40}$/);
    await assertProperty(
      fc.asyncProperty(channelName, async (channel) => {
        const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { text: "x" } });
        const clientId = sent.body.data?.sendMessage.event.client.id as string;
        const labels = (await scrape(server.httpUrl)).labelValues();
        expect(labels).not.toContain(channel);
        expect(labels).not.toContain(clientId);
      }),
      { numRuns: 15 },
    );
  });

  it("with METRICS_TOKEN, answers 401 to a scrape without the token and serves it with the token", async () => {
    const token = "metrics-token-0123456789";
    const server = await startServer({ METRICS_TOKEN: token });
    expect((await fetch(metricsUrl(server.httpUrl))).status).toBe(401);
    expect((await fetch(metricsUrl(server.httpUrl), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(401);
    const scraped = await scrape(server.httpUrl, token);
    expect(scraped.families.length).toBeGreaterThan(10);
  });
});
