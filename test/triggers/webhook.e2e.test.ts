import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

const SECRET = `whsec_${Buffer.from("a-webhook-secret-for-tests-0123").toString("base64")}`;

/** A moderation service stub on loopback: refuses texts containing "spam", checks every signature. */
const received: { headers: IncomingMessage["headers"]; body: string; verified: boolean }[] = [];
const stub = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk: Buffer) => (body += chunk));
  req.on("end", () => {
    let verified = false;
    try {
      new Webhook(SECRET).verify(body, req.headers as Record<string, string>);
      verified = true;
    } catch {
      verified = false;
    }
    received.push({ headers: req.headers, body, verified });
    if (req.url === "/redirect") {
      res.writeHead(302, { location: `http://127.0.0.2:${port}/moderate` }).end();
      return;
    }
    const text = String(JSON.parse(body || "{}").text ?? "");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ allowed: !text.includes("spam"), score: text.length }));
  });
});
let port = 0;
let server: TestServer;

beforeAll(async () => {
  await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
  port = (stub.address() as AddressInfo).port;
  server = await startServer({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${port}` });
});
afterAll(() => new Promise<void>((resolve) => stub.close(() => resolve())));

describe("http steps (webhooks)", () => {
  it("asks an external service, binds its answer and acts on it; requests are signed", async () => {
    await createTrigger(server.httpUrl, {
      channel: "moderated",
      stack: [
        {
          http: {
            url: `'http://127.0.0.1:${port}/moderate'`,
            method: "POST",
            headers: { "x-channel": "channel" },
            body: "{ 'text': payload.text }",
            timeoutMs: 2000,
          },
          as: "verdict",
        },
        { if: "$verdict.status != 200 or $not($verdict.body.allowed)", then: [{ reject: "'Refused by moderation'", code: "MODERATED" }] },
        { set: "payload.score", value: "$verdict.body.score" },
      ],
    });
    const ok = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "moderated", payload: { text: "hello" } });
    expect(ok.body.data).toMatchObject({ sendMessage: { delivered: true, event: { payload: { text: "hello", score: 5 } } } });
    const spam = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "moderated", payload: { text: "buy spam" } });
    expect(spam.body.errors?.[0]).toMatchObject({ message: "Refused by moderation", extensions: { code: "MODERATED" } });

    const last = received.at(-1)!;
    expect(last.verified).toBe(true);
    expect(last.headers["webhook-id"]).toMatch(/.+/);
    expect(last.headers["webhook-signature"]).toMatch(/^v1,/);
    expect(last.headers["x-channel"]).toBe("moderated");
    expect(JSON.parse(last.body)).toEqual({ text: "buy spam" });
  });

  it("refuses a redirect to a host that is not allowed, so the trigger fails closed", async () => {
    await createTrigger(server.httpUrl, {
      channel: "redirected",
      stack: [{ http: { url: `'http://127.0.0.1:${port}/redirect'`, body: "payload" }, as: "r" }],
    });
    const result = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "redirected", payload: { text: "x" } });
    expect(result.body.errors?.[0]?.extensions?.code).toBe("TRIGGER_FAILED");
    const runs = await admin(server.httpUrl, `{ triggers(channel: "redirected") { runs { outcome error } } }`);
    expect(runs.data!.triggers[0].runs[0]).toMatchObject({ outcome: "FAILED" });
    expect(runs.data!.triggers[0].runs[0].error).toMatch(/127.0.0.2:\d+ is not an allowed/);
    expect(runs.data!.triggers[0].runs[0].error).not.toContain(SECRET);
  });

  it("validates http steps at save time", async () => {
    for (const [step, path] of [
      [{ http: { url: "'x'", headers: { "webhook-signature": "'forged'" } }, as: "r" }, "stack[0].http.headers.webhook-signature"],
      [{ http: { url: "'x'", method: "TRACE" }, as: "r" }, "stack[0].http.method"],
      [{ http: { url: "'x'" } }, "stack[0].as"],
      [{ http: { url: "'x'", timeoutMs: 10 ** 9 }, as: "r" }, "stack[0].http.timeoutMs"],
    ] as const) {
      const result = await admin(server.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: "bad", actions: ["MESSAGE"], channel: "x", stack: [step] },
      });
      expect(result.errors?.[0]?.message).toContain(path);
    }
  });

  it("refuses http steps when the server has no webhook secret", async () => {
    const plain = await startServer();
    const result = await httpGraphQL(
      plain.httpUrl,
      `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`,
      { input: { name: "h", actions: ["MESSAGE"], channel: "x", stack: [{ http: { url: "'http://127.0.0.1/'" }, as: "r" }] } },
      { token: ADMIN_TOKEN },
    );
    expect(result.body.errors?.[0]?.message).toMatch(/WEBHOOK_SECRET/);
  });
});
