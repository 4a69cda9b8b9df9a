/**
 * The webhook client. NETWORK RULE: every socket these tests open goes to 127.0.0.1. Forbidden
 * addresses are produced by an injected resolver or written as IP literals, and the injected `connect`
 * refuses (throws) for any address other than 127.0.0.1, so even a broken guard cannot reach them;
 * each refusal test also asserts that `connect` was never called.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { isForbiddenAddress } from "../../src/triggers/webhook/address-policy.js";
import { type ConnectTarget, createWebhookClient, type ResolvedAddress, type WebhookSettings } from "../../src/triggers/webhook/client.js";
import { assertProperty } from "../helpers/property.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_KEY = Buffer.from(SECRET.slice("whsec_".length), "base64");

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  localAddress: string | undefined;
  verified: boolean;
}

let server: http.Server;
let port: number;
let base: string;
const received: Received[] = [];
const openSockets = new Set<net.Socket>();

/** Standard Webhooks verification, written from the spec (independent of the package). */
function verifyBySpec(key: Buffer, headers: http.IncomingHttpHeaders, body: string): boolean {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (typeof id !== "string" || typeof timestamp !== "string" || typeof signatures !== "string") return false;
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(" ").some((entry) => {
    const [version, signature] = entry.split(",");
    if (version !== "v1" || signature === undefined) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function verifyWithPackage(secret: string | Buffer, headers: http.IncomingHttpHeaders, body: string): boolean {
  try {
    const webhook = typeof secret === "string" ? new Webhook(secret) : new Webhook(secret, { format: "raw" });
    webhook.verify(body, headers as Record<string, string>, { jsonParse: false });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const verified = verifyWithPackage(SECRET, request.headers, body) && verifyBySpec(SECRET_KEY, request.headers, body);
      received.push({
        method: request.method!,
        url: request.url!,
        headers: request.headers,
        body,
        localAddress: request.socket.localAddress,
        verified,
      });
      const path = request.url!.split("?")[0];
      const json = (status: number, value: unknown, extra: http.OutgoingHttpHeaders = {}) => {
        response.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-stub": "yes", ...extra });
        response.end(JSON.stringify(value));
      };
      switch (path) {
        case "/hook":
          return json(201, { ok: true, method: request.method, received: body === "" ? null : (JSON.parse(body) as unknown), verified });
        case "/text":
          response.writeHead(200, { "content-type": "text/plain" });
          return response.end("plain words");
        case "/missing":
          return json(404, { error: "nope" });
        case "/to-forbidden":
          response.writeHead(302, { location: `http://127.0.0.2:${port}/hook` });
          return response.end();
        case "/to-metadata":
          response.writeHead(301, { location: "http://169.254.169.254/latest/meta-data/" });
          return response.end();
        case "/to-mapped":
          response.writeHead(308, { location: `http://[::ffff:127.0.0.1]:${port}/hook` });
          return response.end();
        case "/to-file":
          response.writeHead(302, { location: "file:///etc/passwd" });
          return response.end();
        case "/to-hook-307":
          response.writeHead(307, { location: "/hook?via=307" });
          return response.end();
        case "/to-hook-303":
          response.writeHead(303, { location: "/hook?via=303" });
          return response.end();
        case "/to-localhost":
          response.writeHead(307, { location: `http://localhost:${port}/hook` });
          return response.end();
        case "/loop":
          response.writeHead(302, { location: "/loop" });
          return response.end();
        case "/big":
          response.writeHead(200, { "content-type": "text/plain", "content-length": String(300 * 1024) });
          return response.end("x".repeat(300 * 1024));
        case "/big-chunked": {
          response.writeHead(200, { "content-type": "text/plain" });
          let sent = 0;
          const pump = () => {
            while (sent < 300 && !response.destroyed) {
              sent++;
              if (!response.write("y".repeat(1024))) return void response.once("drain", pump);
            }
            response.end();
          };
          return pump();
        }
        case "/slow":
          return; // never answers; the socket is destroyed in afterAll
        case "/slow-body":
          response.writeHead(200, { "content-type": "text/plain" });
          response.write("start...");
          return; // the body never ends
        default:
          return json(404, { error: "unknown stub path" });
      }
    });
  });
  server.on("connection", (socket) => {
    openSockets.add(socket);
    socket.on("close", () => openSockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const socket of openSockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received.length = 0;
});

/** A connect that only ever opens sockets to 127.0.0.1 (the stub) and throws for anything else. */
function loopbackOnlyConnect() {
  return vi.fn((target: ConnectTarget) => {
    if (target.address !== "127.0.0.1")
      throw Object.assign(new Error(`test refuses to connect to ${target.address}`), { code: "ETESTREFUSED" });
    return net.connect({ host: target.address, port: target.port });
  });
}

/** A resolver that must not be reached. */
function noLookup() {
  return vi.fn(async (hostname: string): Promise<ResolvedAddress[]> => {
    throw new Error(`unexpected lookup of ${hostname}`);
  });
}

function client(overrides: Partial<WebhookSettings> = {}) {
  const connect = loopbackOnlyConnect();
  const lookup = noLookup();
  const webhook = createWebhookClient({ secret: SECRET, allowHosts: [`127.0.0.1:${port}`], lookup, connect, ...overrides });
  return { webhook, connect, lookup };
}

const family = (address: string) => net.isIP(address);

describe("sending", () => {
  it("POSTs JSON, signs it (verified by the stub with standardwebhooks and by the spec), and returns { status, headers, body, text }", async () => {
    const { webhook, connect } = client();
    const response = await webhook.send({ url: `${base}/hook`, method: "POST", body: { text: "hi", n: 1 }, headers: { "X-Custom": "v" } });
    expect(response).toEqual({
      status: 201,
      headers: expect.objectContaining({ "content-type": "application/json; charset=utf-8", "x-stub": "yes" }),
      body: { ok: true, method: "POST", received: { text: "hi", n: 1 }, verified: true },
      text: expect.any(String),
    });
    // The body as received, for the records of AFTER runs' attempts.
    expect(JSON.parse(response.text!)).toEqual(response.body);
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.verified).toBe(true);
    expect(request!.headers).toMatchObject({
      "content-type": "application/json",
      "x-custom": "v",
      host: `127.0.0.1:${port}`,
      "webhook-id": expect.stringMatching(/^msg_[A-Za-z0-9_-]{16,}$/),
      "webhook-timestamp": expect.stringMatching(/^\d+$/),
      "webhook-signature": expect.stringMatching(/^v1,[A-Za-z0-9+/]+={0,2}$/),
    });
    expect(Math.abs(Number(request!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(5);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(connect.mock.calls[0]![0]).toMatchObject({ address: "127.0.0.1", port, tls: false });
  });

  it("uses the default connect and a fresh webhook-id per request", async () => {
    const webhook = createWebhookClient({ secret: SECRET, allowHosts: [`127.0.0.1:${port}`], lookup: noLookup() });
    await webhook.send({ url: `${base}/hook`, method: "POST", body: { a: 1 } });
    await webhook.send({ url: `${base}/hook`, method: "POST", body: { a: 1 } });
    expect(received.map((r) => r.verified)).toEqual([true, true]);
    expect(received[0]!.headers["webhook-id"]).not.toBe(received[1]!.headers["webhook-id"]);
  });

  it("signs string bodies and empty bodies; a raw (non-whsec) secret is used as UTF-8 bytes", async () => {
    const raw = "a-raw-secret-that-is-long-enough";
    const { webhook } = client({ secret: raw });
    await webhook.send({ url: `${base}/text`, method: "PUT", body: "just text" });
    await webhook.send({ url: `${base}/text`, method: "DELETE" });
    for (const request of received) {
      expect(verifyWithPackage(Buffer.from(raw, "utf8"), request.headers, request.body)).toBe(true);
      expect(verifyBySpec(Buffer.from(raw, "utf8"), request.headers, request.body)).toBe(true);
    }
    expect(received[0]).toMatchObject({ method: "PUT", body: "just text", headers: { "content-type": "text/plain; charset=utf-8" } });
    expect(received[1]).toMatchObject({ method: "DELETE", body: "", headers: { "content-length": "0" } });
  });

  it("returns text bodies as strings and non-2xx statuses without throwing", async () => {
    const { webhook } = client();
    await expect(webhook.send({ url: `${base}/text`, method: "GET" })).resolves.toMatchObject({ status: 200, body: "plain words" });
    await expect(webhook.send({ url: `${base}/missing`, method: "GET" })).resolves.toMatchObject({ status: 404, body: { error: "nope" } });
  });

  it("connects to exactly the address it checked, for an allow-listed host name (one lookup, no second answer used)", async () => {
    const answers = [["127.0.0.1"], ["127.0.0.2"]];
    const lookup = vi.fn(async () => (answers.shift() ?? ["127.0.0.3"]).map((address) => ({ address, family: 4 })));
    const { webhook, connect } = client({ allowHosts: [`stub.test:${port}`], lookup });
    const response = await webhook.send({ url: `http://stub.test:${port}/hook`, method: "POST", body: { x: 1 } });
    expect(response.status).toBe(201);
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith("stub.test");
    expect(connect).toHaveBeenCalledTimes(1);
    expect(connect.mock.calls[0]![0]).toMatchObject({ address: "127.0.0.1", hostname: "stub.test", port });
    expect(received[0]).toMatchObject({ localAddress: "127.0.0.1", headers: { host: `stub.test:${port}` } });
  });
});

describe("refusing forbidden addresses before any connection", () => {
  const literals = [
    "127.0.0.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "0x7f.1",
    "017700000001",
    "127.0.0.1.",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
    "169.254.169.254",
    "0xa9fea9fe",
    "2852039166",
    "[::ffff:169.254.169.254]",
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "100.64.0.1",
    "0.0.0.0",
    "0",
    "[::]",
    "[fe80::1]",
    "[fd00::1]",
    "[ff02::1]",
    "224.0.0.1",
    "255.255.255.255",
  ];

  it.each(literals)("refuses the IP literal %s without a lookup or a connection", async (host) => {
    // Not allow-listed: the stub's port is used so that a broken guard would at worst reach the stub.
    const { webhook, connect, lookup } = client({ allowHosts: [] });
    await expect(webhook.send({ url: `http://${host}:${port}/hook`, method: "POST", body: { a: 1 } })).rejects.toMatchObject({
      name: "WebhookError",
      code: "WEBHOOK_FORBIDDEN_ADDRESS",
    });
    expect(lookup).not.toHaveBeenCalled();
    expect(connect).not.toHaveBeenCalled();
    expect(received).toHaveLength(0);
  });

  it("normalizes every numeric form to the address the URL parser gives (the forms are what they look like)", () => {
    for (const form of ["0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1", "017700000001", "127.0.0.1."]) {
      expect(new URL(`http://${form}/`).hostname).toBe("127.0.0.1");
      expect(isForbiddenAddress(form)).toBe(true);
    }
    expect(new URL("http://[::ffff:127.0.0.1]/").hostname).toBe("[::ffff:7f00:1]");
  });

  const resolved = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "192.0.0.8",
    "198.18.0.1",
    "224.0.0.251",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "fe80::1",
    "fd00::1",
    "fc00::1",
    "ff02::1",
  ];

  it.each(resolved)("refuses hooks.example.test resolving to %s: one lookup, no connection", async (address) => {
    const lookup = vi.fn(async () => [{ address, family: family(address) }]);
    const { webhook, connect } = client({ allowHosts: [], lookup });
    const error = await webhook.send({ url: "https://hooks.example.test/hook", method: "POST", body: { a: 1 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "WEBHOOK_FORBIDDEN_ADDRESS" });
    // The message names the host, not the internal address it resolved to.
    expect((error as Error).message).toContain("hooks.example.test");
    if (address.length > 3) expect((error as Error).message).not.toContain(address);
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith("hooks.example.test");
    expect(connect).not.toHaveBeenCalled();
  });

  it("refuses when ANY resolved address is forbidden, whatever the order", async () => {
    for (const answers of [
      ["203.0.113.10", "10.0.0.1"],
      ["10.0.0.1", "203.0.113.10"],
      ["2001:db8::1", "::1"],
    ]) {
      const lookup = vi.fn(async () => answers.map((address) => ({ address, family: family(address) })));
      const { webhook, connect } = client({ allowHosts: [], lookup });
      await expect(webhook.send({ url: "http://hooks.example.test/", method: "GET" })).rejects.toMatchObject({
        code: "WEBHOOK_FORBIDDEN_ADDRESS",
      });
      expect(connect).not.toHaveBeenCalled();
    }
  });

  it("refuses a resolver answer that is not an IP address, and reports an empty answer as a failure", async () => {
    for (const answers of [[{ address: "localhost", family: 4 }], []]) {
      const { webhook, connect } = client({ allowHosts: [], lookup: vi.fn(async () => answers) });
      await expect(webhook.send({ url: "http://hooks.example.test/", method: "GET" })).rejects.toMatchObject({ code: "WEBHOOK_FAILED" });
      expect(connect).not.toHaveBeenCalled();
    }
  });

  it("DNS rebinding: a public first answer and 127.0.0.1 later never leads to a connection to 127.0.0.1", async () => {
    const answers = ["203.0.113.10", "127.0.0.1", "127.0.0.1"];
    const lookup = vi.fn(async () => [{ address: answers.shift() ?? "127.0.0.1", family: 4 }]);
    // The stub is NOT allow-listed. The connect spy refuses 203.0.113.10 (throws: nothing is sent).
    const { webhook, connect } = client({ allowHosts: [], lookup });
    await expect(webhook.send({ url: `http://rebind.example.test:${port}/hook`, method: "POST", body: { a: 1 } })).rejects.toMatchObject({
      code: "WEBHOOK_FAILED",
    });
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(connect.mock.calls[0]![0]).toMatchObject({ address: "203.0.113.10", hostname: "rebind.example.test", port });
    expect(connect.mock.calls.some(([target]) => target.address === "127.0.0.1")).toBe(false);
    expect(received).toHaveLength(0);
  });

  it("allow-list entries match host and port: another port of an allow-listed IP is refused", async () => {
    const { webhook, connect } = client({ allowHosts: [`127.0.0.1:${port}`] });
    await expect(webhook.send({ url: `http://127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}/`, method: "GET" })).rejects.toMatchObject({
      code: "WEBHOOK_FORBIDDEN_ADDRESS",
    });
    expect(connect).not.toHaveBeenCalled();
  });

  it("an allow-listed numeric form is the same host after normalization", async () => {
    const { webhook } = client({ allowHosts: [`127.0.0.1:${port}`] });
    await expect(webhook.send({ url: `http://2130706433:${port}/text`, method: "GET" })).resolves.toMatchObject({ status: 200 });
  });
});

describe("redirects", () => {
  it("refuses a redirect from the allow-listed stub to http://127.0.0.2:<port>/ (not allow-listed)", async () => {
    const { webhook, connect } = client();
    await expect(webhook.send({ url: `${base}/to-forbidden`, method: "POST", body: { a: 1 } })).rejects.toMatchObject({
      code: "WEBHOOK_FORBIDDEN_ADDRESS",
    });
    expect(connect).toHaveBeenCalledTimes(1); // the stub only
    expect(connect.mock.calls[0]![0].address).toBe("127.0.0.1");
    expect(received.map((r) => r.url)).toEqual(["/to-forbidden"]);
  });

  it.each(["/to-metadata", "/to-mapped"])("refuses the redirect %s to a forbidden address", async (path) => {
    const { webhook, connect } = client();
    await expect(webhook.send({ url: `${base}${path}`, method: "GET" })).rejects.toMatchObject({ code: "WEBHOOK_FORBIDDEN_ADDRESS" });
    expect(connect).toHaveBeenCalledTimes(1);
  });

  it("refuses a redirect to a non-http URL", async () => {
    const { webhook } = client();
    await expect(webhook.send({ url: `${base}/to-file`, method: "GET" })).rejects.toMatchObject({ code: "WEBHOOK_BAD_URL" });
  });

  it("follows a 307 to another allow-listed path, keeping method and body and signing again", async () => {
    const { webhook, connect } = client();
    const response = await webhook.send({ url: `${base}/to-hook-307`, method: "POST", body: { keep: true } });
    expect(response).toMatchObject({ status: 201, body: { method: "POST", received: { keep: true }, verified: true } });
    expect(received.map((r) => r.url)).toEqual(["/to-hook-307", "/hook?via=307"]);
    expect(received.every((r) => r.verified)).toBe(true);
    expect(connect).toHaveBeenCalledTimes(2);
  });

  it("follows a 303 as a GET without a body", async () => {
    const { webhook } = client();
    const response = await webhook.send({ url: `${base}/to-hook-303`, method: "POST", body: { dropped: true } });
    expect(response).toMatchObject({ status: 201, body: { method: "GET", received: null, verified: true } });
    expect(received[1]).toMatchObject({ method: "GET", body: "" });
    expect(received[1]!.headers["content-type"]).toBeUndefined();
  });

  it("drops Authorization on a cross-origin redirect (to another allow-listed host)", async () => {
    const lookup = vi.fn(async () => [{ address: "127.0.0.1", family: 4 }]);
    const { webhook } = client({ allowHosts: [`127.0.0.1:${port}`, `localhost:${port}`], lookup });
    await webhook.send({ url: `${base}/to-localhost`, method: "POST", body: {}, headers: { Authorization: "Bearer t", "X-Keep": "1" } });
    expect(received[0]!.headers).toMatchObject({ authorization: "Bearer t", "x-keep": "1" });
    expect(received[1]!.headers.authorization).toBeUndefined();
    expect(received[1]!.headers).toMatchObject({ "x-keep": "1", host: `localhost:${port}` });
    expect(lookup).toHaveBeenCalledWith("localhost");
  });

  it("stops after maxRedirects", async () => {
    const { webhook } = client({ maxRedirects: 2 });
    await expect(webhook.send({ url: `${base}/loop`, method: "GET" })).rejects.toMatchObject({
      code: "WEBHOOK_FAILED",
      message: expect.stringMatching(/too many redirects/),
    });
    expect(received).toHaveLength(3);
  });
});

describe("limits", () => {
  it.each(["/big", "/big-chunked"])("refuses an oversized response (%s) with WEBHOOK_TOO_LARGE", async (path) => {
    const { webhook } = client({ maxResponseBytes: 64 * 1024 });
    await expect(webhook.send({ url: `${base}${path}`, method: "GET" })).rejects.toMatchObject({ code: "WEBHOOK_TOO_LARGE" });
  });

  it("refuses an oversized request body before connecting", async () => {
    const { webhook, connect } = client({ maxRequestBytes: 100 });
    await expect(webhook.send({ url: `${base}/hook`, method: "POST", body: "z".repeat(101) })).rejects.toMatchObject({
      code: "WEBHOOK_TOO_LARGE",
    });
    expect(connect).not.toHaveBeenCalled();
  });

  it.each(["/slow", "/slow-body"])("times out a slow response (%s) within timeoutMs plus a margin", async (path) => {
    const { webhook } = client();
    const started = performance.now();
    await expect(webhook.send({ url: `${base}${path}`, method: "GET", timeoutMs: 300 })).rejects.toMatchObject({ code: "WEBHOOK_TIMEOUT" });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 400);
  });

  it("times out a lookup that never answers", async () => {
    const { webhook, connect } = client({ lookup: () => new Promise<ResolvedAddress[]>(() => {}) });
    await expect(webhook.send({ url: "http://hooks.example.test/", method: "GET", timeoutMs: 100 })).rejects.toMatchObject({
      code: "WEBHOOK_TIMEOUT",
    });
    expect(connect).not.toHaveBeenCalled();
  });

  it("is aborted by the caller's signal", async () => {
    const { webhook } = client();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(webhook.send({ url: `${base}/slow`, method: "GET", timeoutMs: 5000, signal: controller.signal })).rejects.toMatchObject({
      code: "WEBHOOK_ABORTED",
    });
  });

  it("refuses a timeout above maxTimeoutMs", async () => {
    const { webhook, connect } = client({ maxTimeoutMs: 1000 });
    await expect(webhook.send({ url: `${base}/hook`, method: "GET", timeoutMs: 1001 })).rejects.toMatchObject({
      code: "WEBHOOK_BAD_REQUEST",
    });
    expect(connect).not.toHaveBeenCalled();
  });
});

describe("request validation", () => {
  it.each(["webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP", "Host", "content-length", "Transfer-Encoding", "connection"])(
    "user headers cannot set %s",
    async (name) => {
      const { webhook, connect } = client();
      await expect(webhook.send({ url: `${base}/hook`, method: "POST", body: {}, headers: { [name]: "forged" } })).rejects.toMatchObject({
        code: "WEBHOOK_BAD_REQUEST",
      });
      expect(connect).not.toHaveBeenCalled();
      expect(received).toHaveLength(0);
    },
  );

  it("refuses header values with CR/LF and bad header names", async () => {
    const { webhook } = client();
    await expect(webhook.send({ url: `${base}/hook`, method: "GET", headers: { "x-a": "1\r\nx-b: 2" } })).rejects.toMatchObject({
      code: "WEBHOOK_BAD_REQUEST",
    });
    await expect(webhook.send({ url: `${base}/hook`, method: "GET", headers: { "x a": "1" } })).rejects.toMatchObject({
      code: "WEBHOOK_BAD_REQUEST",
    });
  });

  it.each([
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://user:pass@127.0.0.1/",
    "http://user@127.0.0.1/",
    "not a url",
    "http://1.2.3.4.5/",
  ])("refuses the URL %s", async (url) => {
    const { webhook, connect, lookup } = client();
    await expect(webhook.send({ url, method: "GET" })).rejects.toMatchObject({ code: "WEBHOOK_BAD_URL" });
    expect(connect).not.toHaveBeenCalled();
    expect(lookup).not.toHaveBeenCalled();
  });

  it("refuses a body on GET and unknown methods", async () => {
    const { webhook } = client();
    await expect(webhook.send({ url: `${base}/hook`, method: "GET", body: { a: 1 } })).rejects.toMatchObject({
      code: "WEBHOOK_BAD_REQUEST",
    });
    await expect(webhook.send({ url: `${base}/hook`, method: "TRACE" as "GET" })).rejects.toMatchObject({ code: "WEBHOOK_BAD_REQUEST" });
  });
});

describe("secrets", () => {
  it("never appear in error messages", async () => {
    const secretPart = SECRET.slice("whsec_".length);
    const lookup = vi.fn(async () => [{ address: "10.1.2.3", family: 4 }]);
    const { webhook } = client({ lookup });
    const errors = await Promise.all([
      webhook.send({ url: "http://hooks.example.test/", method: "POST", body: { a: 1 } }).catch((e: unknown) => e),
      webhook.send({ url: `${base}/slow`, method: "GET", timeoutMs: 50 }).catch((e: unknown) => e),
      webhook.send({ url: `${base}/hook`, method: "GET", headers: { "webhook-signature": "x" } }).catch((e: unknown) => e),
      webhook.send({ url: "http://u:p@x/", method: "GET" }).catch((e: unknown) => e),
      webhook.send({ url: `${base}/big`, method: "GET" }).catch((e: unknown) => e),
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(Error);
      const text = `${(error as Error).message} ${(error as Error).stack} ${JSON.stringify(error)}`;
      expect(text).not.toContain(secretPart);
      expect(text).not.toContain(SECRET);
    }
  });

  it("a bad secret is refused at creation without echoing it", () => {
    for (const secret of ["whsec_!!!not-base64-SECRETPART", "whsec_", ""]) {
      let message = "";
      try {
        createWebhookClient({ secret });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/webhook secret/);
      if (secret.length > 6) expect(message).not.toContain(secret.slice(6));
    }
  });

  it("refuses malformed allow-list entries", () => {
    for (const entry of ["http://x/", "a:b:c", "host:99999", "user@host"]) {
      expect(() => createWebhookClient({ secret: SECRET, allowHosts: [entry] })).toThrow(/allow-list/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: the classifier agrees with plain integer range checks.

const toInt = (a: number, b: number, c: number, d: number) => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
const REFERENCE: [number, number][] = [
  [toInt(0, 0, 0, 0), toInt(0, 255, 255, 255)],
  [toInt(10, 0, 0, 0), toInt(10, 255, 255, 255)],
  [toInt(100, 64, 0, 0), toInt(100, 127, 255, 255)],
  [toInt(127, 0, 0, 0), toInt(127, 255, 255, 255)],
  [toInt(169, 254, 0, 0), toInt(169, 254, 255, 255)],
  [toInt(172, 16, 0, 0), toInt(172, 31, 255, 255)],
  [toInt(192, 0, 0, 0), toInt(192, 0, 0, 255)],
  [toInt(192, 168, 0, 0), toInt(192, 168, 255, 255)],
  [toInt(198, 18, 0, 0), toInt(198, 19, 255, 255)],
  [toInt(224, 0, 0, 0), toInt(239, 255, 255, 255)],
  [toInt(240, 0, 0, 0), toInt(255, 255, 255, 255)],
];
const referenceForbidden = (n: number) => REFERENCE.some(([low, high]) => n >= low && n <= high);
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
const hex16 = (n: number) => `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;

/** Random addresses, plus each range's edges and their neighbours (where mistakes hide). */
const ipv4 = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(...REFERENCE.flatMap(([low, high]) => [low - 1, low, high, high + 1]).filter((n) => n >= 0 && n <= 0xffffffff)),
);

describe("isForbiddenAddress (property)", () => {
  it("agrees with the reference ranges for every IPv4 address, in every notation that embeds it", () => {
    assertProperty(
      fc.property(ipv4, (n) => {
        const expected = referenceForbidden(n);
        expect(isForbiddenAddress(dotted(n))).toBe(expected);
        expect(isForbiddenAddress(String(n))).toBe(expected); // decimal
        expect(isForbiddenAddress(`0x${n.toString(16)}`)).toBe(expected); // hex
        expect(isForbiddenAddress(`::ffff:${dotted(n)}`)).toBe(expected); // IPv4-mapped
        expect(isForbiddenAddress(`[::ffff:${hex16(n)}]`)).toBe(expected);
        expect(isForbiddenAddress(`64:ff9b::${hex16(n)}`)).toBe(expected); // NAT64
        expect(isForbiddenAddress(`2002:${hex16(n)}::1`)).toBe(expected); // 6to4
      }),
      { numRuns: 2000 },
    );
  });

  it("classifies IPv6 ranges and refuses what is not an address", () => {
    for (const address of [
      "::",
      "::1",
      "fc00::1",
      "fdff::1",
      "fe80::1",
      "febf::1",
      "ff00::1",
      "ff02::1",
      "64:ff9b:1::1",
      "2001::1",
      "100::1",
      "fe80::1%eth0",
    ]) {
      expect(isForbiddenAddress(address), address).toBe(true);
    }
    for (const address of ["2606:4700::1111", "2a00:1450:4001::200e", "fbff::1", "2002:0808:0808::1", "64:ff9b::808:808"]) {
      expect(isForbiddenAddress(address), address).toBe(false);
    }
    for (const input of ["", "localhost", "example.com", "1.2.3.4.5", "127.0.0.1@1.1.1.1", "999.1.1.1"]) {
      expect(isForbiddenAddress(input), input).toBe(true);
    }
  });
});
