/**
 * The outbound HTTP client behind the trigger step `{ "http": { url, method, headers, body, timeoutMs }, "as": "name" }`.
 *
 * Guarantees (see the tests in test/triggers/webhook.test.ts):
 * - SSRF-safe: only http: and https: URLs without credentials; the host is resolved here and the request
 *   is refused when ANY resolved address is loopback, private, link-local, unspecified, multicast,
 *   reserved, or an IPv6 form embedding one of those (IPv4-mapped, NAT64, 6to4...), see
 *   {@link isForbiddenAddress}. IP literals in decimal, octal, hex or short form are normalized by the
 *   WHATWG URL parser to dotted quads before they are classified, so they are refused the same way.
 *   Hosts on the allow-list (`host` or `host:port`) skip the classification.
 * - No DNS rebinding: the socket is opened to exactly the address that was checked (the request never
 *   performs a lookup of its own).
 * - Redirects (301, 302, 303, 307, 308) are followed by hand, at most `maxRedirects` times, each Location
 *   going through the full check again.
 * - One deadline (`timeoutMs`) covers the lookups, connects, redirects and reading the response;
 *   response bodies are capped at `maxResponseBytes`.
 * - Every request is signed per Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`,
 *   `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 *   User headers may not set those, nor Host, Content-Length or the hop-by-hop headers.
 * - Error messages name the host, never the secret and never a resolved internal address.
 */
import { randomBytes } from "node:crypto";
import { promises as dns } from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { Webhook } from "standardwebhooks";
import { jsonPrefix } from "../guard/values.js";
import { isForbiddenAddress } from "./address-policy.js";

/** Why a request was refused or failed. */
export type WebhookErrorCode =
  /** The URL's host is, or resolves to, an address that is not allowed (and the host is not allow-listed). */
  | "WEBHOOK_FORBIDDEN_ADDRESS"
  /** The request did not finish within its timeout. */
  | "WEBHOOK_TIMEOUT"
  /** The response body (or the request body) is larger than allowed. */
  | "WEBHOOK_TOO_LARGE"
  /** The URL (or a redirect's Location) is not a usable http(s) URL. */
  | "WEBHOOK_BAD_URL"
  /** The request itself is invalid: method, a reserved or malformed header, a body on GET, a timeout out of range. */
  | "WEBHOOK_BAD_REQUEST"
  /** The caller's `signal` aborted the request (e.g. the trigger ran out of time). */
  | "WEBHOOK_ABORTED"
  /** DNS, connection, TLS or protocol failure, or too many redirects. */
  | "WEBHOOK_FAILED";

/** An error from {@link WebhookClient.send}. The message is safe to show to the trigger's author. */
export class WebhookError extends Error {
  override readonly name = "WebhookError";

  constructor(
    readonly code: WebhookErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One address a host name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Where a request's socket is opened: always an address that passed the check. */
export interface ConnectTarget {
  /** The checked IP address the socket must connect to. */
  readonly address: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  readonly port: number;
  /** The URL's host name (without brackets), for TLS SNI and certificate checks. */
  readonly hostname: string;
  /** True for https: the socket must be a TLS socket. */
  readonly tls: boolean;
}

/** Settings of a {@link createWebhookClient | webhook client}. */
export interface WebhookSettings {
  /**
   * The signing secret. `whsec_<base64>` (the Standard Webhooks format; the key is the base64-decoded
   * part) or any other non-empty string, whose UTF-8 bytes are then the key.
   */
  readonly secret: string;
  /**
   * Hosts allowed even when they resolve to internal addresses: `host` (any port) or `host:port`;
   * IPv6 as `[::1]` or `[::1]:8080`. Compared with the URL's host after WHATWG normalization, so
   * `127.0.0.1:8080` also matches `http://2130706433:8080/`. Default: none.
   */
  readonly allowHosts?: readonly string[];
  /** Largest response body in bytes. Default 256 KiB. */
  readonly maxResponseBytes?: number;
  /** Largest request body in bytes. Default 256 KiB. */
  readonly maxRequestBytes?: number;
  /** Redirects followed per request. Default 3. */
  readonly maxRedirects?: number;
  /** Timeout when a request names none, in milliseconds. Default 5000. */
  readonly defaultTimeoutMs?: number;
  /** Largest timeout a request may ask for, in milliseconds (larger ones are refused). Default 30000. */
  readonly maxTimeoutMs?: number;
  /** Resolves a host name to all its addresses. Default `dns.promises.lookup(host, { all: true, verbatim: true })`. */
  readonly lookup?: (hostname: string) => Promise<readonly ResolvedAddress[]>;
  /**
   * Opens the socket for one request (a TLS socket when `target.tls`). Default: `net.connect` /
   * `tls.connect` to `target.address`. Injectable so tests can observe where connections would go.
   */
  readonly connect?: (target: ConnectTarget) => Duplex;
  /** Clock for `webhook-timestamp`. Default `() => new Date()`. */
  readonly now?: () => Date;
}

/** The methods a request may use. */
export const WEBHOOK_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type WebhookMethod = (typeof WEBHOOK_METHODS)[number];

/** One outbound request. */
export interface WebhookRequest {
  readonly url: string;
  readonly method: WebhookMethod;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Sent as-is when a string (default content type `text/plain; charset=utf-8`), JSON-encoded otherwise
   * (default content type `application/json`); no body when undefined. Not allowed with GET.
   */
  readonly body?: unknown;
  /** Deadline for the whole exchange, redirects included. Default `defaultTimeoutMs`; at most `maxTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Aborts the request (WEBHOOK_ABORTED), e.g. when the trigger run times out. */
  readonly signal?: AbortSignal;
  /**
   * The Standard Webhooks `webhook-id` (letters, digits, `_`, `-` and `.`, at most 200), so that a
   * request sent again keeps its id and receivers can deduplicate. Default: a new random id.
   */
  readonly id?: string;
}

/** The final response, after redirects. Non-2xx statuses are returned, not thrown. */
export interface WebhookResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** Parsed JSON when the content type is JSON (`application/json`, `*+json`) and the body parses; else text. */
  readonly body: unknown;
  /** The body as received, decoded as UTF-8 text (for records of the exchange; stacks see `body`). */
  readonly text?: string;
}

export interface WebhookClient {
  /** Sends a signed request. @throws WebhookError */
  send(request: WebhookRequest): Promise<WebhookResponse>;
}

export const WEBHOOK_DEFAULTS = {
  maxResponseBytes: 256 * 1024,
  maxRequestBytes: 256 * 1024,
  maxRedirects: 3,
  defaultTimeoutMs: 5000,
  maxTimeoutMs: 30_000,
} as const;

const METHODS = new Set<string>(WEBHOOK_METHODS);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_URL_LENGTH = 8192;
const MESSAGE_ID = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * Header names a request may not set: the signature headers, those the client computes, and
 * hop-by-hop headers that change how the message is framed.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "proxy-connection",
]);

/** Credentials a cross-origin redirect does not carry along (as browsers do). */
const ORIGIN_BOUND_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

/** An HTTP header name (an RFC 9110 token), of at most 100 characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface AllowEntry {
  readonly hostname: string;
  readonly port: number | null;
}

/** Parses `host`, `host:port`, `[v6]` or `[v6]:port` into a normalized host name and an optional port. */
function parseAllowEntry(entry: string): AllowEntry {
  const match = /^(\[[^\]]+\]|[^:[\]/@]+)(?::(\d{1,5}))?$/.exec(entry.trim());
  if (!match) throw new Error(`webhook allow-list: "${entry}" is not host or host:port`);
  let hostname: string;
  try {
    hostname = new URL(`http://${match[1]}/`).hostname;
  } catch {
    throw new Error(`webhook allow-list: "${entry}" is not a valid host`);
  }
  const port = match[2] === undefined ? null : Number(match[2]);
  if (port !== null && (port < 1 || port > 65535)) throw new Error(`webhook allow-list: "${entry}" has a bad port`);
  return { hostname, port };
}

function signer(secret: string): Webhook {
  if (typeof secret !== "string" || secret === "") throw new Error("webhook secret: must be a non-empty string");
  try {
    return secret.startsWith("whsec_") ? new Webhook(secret) : new Webhook(Buffer.from(secret, "utf8"), { format: "raw" });
  } catch {
    // The library's message could quote parts of the secret; say only what is wrong.
    throw new Error("webhook secret: a whsec_ secret must be followed by non-empty base64");
  }
}

async function defaultLookup(hostname: string): Promise<readonly ResolvedAddress[]> {
  return dns.lookup(hostname, { all: true, verbatim: true });
}

function defaultConnect(target: ConnectTarget): Duplex {
  if (!target.tls) return net.connect({ host: target.address, port: target.port, family: target.family });
  return tls.connect({
    host: target.address,
    port: target.port,
    // SNI and the certificate check use the URL's name; IP literals are checked against `host`.
    ...(net.isIP(target.hostname) === 0 ? { servername: target.hostname } : {}),
    ALPNProtocols: ["http/1.1"],
  });
}

function bad(code: WebhookErrorCode, message: string): WebhookError {
  return new WebhookError(code, message);
}

/** The URL, checked: http(s), no credentials, a host. */
function parseUrl(raw: string, what: string): URL {
  if (typeof raw !== "string" || raw.length > MAX_URL_LENGTH)
    throw bad("WEBHOOK_BAD_URL", `${what} must be a URL of at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad("WEBHOOK_BAD_URL", `${what} is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw bad("WEBHOOK_BAD_URL", `${what} must be http: or https:, not ${url.protocol}`);
  if (url.username !== "" || url.password !== "") throw bad("WEBHOOK_BAD_URL", `${what} may not contain credentials`);
  if (url.hostname === "") throw bad("WEBHOOK_BAD_URL", `${what} has no host`);
  return url;
}

function portOf(url: URL): number {
  return url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
}

/** The URL's host name without IPv6 brackets. */
function bareHostname(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

/** The request body's bytes; JSON is written up to just past `maxBytes` (a larger body is refused without writing it all). */
function encodeBody(method: WebhookMethod, body: unknown, maxBytes: number): { bytes: Buffer; contentType: string } | null {
  if (body === undefined) return null;
  if (method === "GET") throw bad("WEBHOOK_BAD_REQUEST", "a GET request may not have a body");
  if (typeof body === "string") return { bytes: Buffer.from(body, "utf8"), contentType: "text/plain; charset=utf-8" };
  let json: { readonly text: string; readonly whole: boolean };
  try {
    json = jsonPrefix(body, maxBytes);
  } catch {
    throw bad("WEBHOOK_BAD_REQUEST", "the body cannot be encoded as JSON");
  }
  if (json.text === "") return null;
  // Past maxBytes characters, the UTF-8 bytes are past it too.
  return { bytes: Buffer.from(json.whole ? json.text : json.text.slice(0, maxBytes + 1), "utf8"), contentType: "application/json" };
}

/** True for a header name a request may set: a valid name, not one the client sets itself. */
export function isSettableHeader(name: string): boolean {
  return HEADER_NAME.test(name) && !RESERVED_HEADERS.has(name.toLowerCase());
}

function checkHeaders(headers: Readonly<Record<string, string>> | undefined): Map<string, { name: string; value: string }> {
  const checked = new Map<string, { name: string; value: string }>();
  if (headers === undefined) return checked;
  if (typeof headers !== "object" || headers === null) throw bad("WEBHOOK_BAD_REQUEST", "headers must be an object of strings");
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) throw bad("WEBHOOK_BAD_REQUEST", `"${name}" is not a valid header name`);
    if (RESERVED_HEADERS.has(lower)) throw bad("WEBHOOK_BAD_REQUEST", `header ${lower} is set by the server and may not be given`);
    if (typeof value !== "string" || !HEADER_VALUE.test(value))
      throw bad("WEBHOOK_BAD_REQUEST", `header ${lower} must be a string without control characters`);
    if (checked.has(lower)) throw bad("WEBHOOK_BAD_REQUEST", `header ${lower} is given twice`);
    checked.set(lower, { name, value });
  }
  return checked;
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

function decodeBody(text: string, contentType: string | undefined): unknown {
  const mediaType = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/json" || mediaType.endsWith("+json")) {
    if (text.trim() === "") return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

interface Exchange {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer | null;
}

/**
 * Creates a webhook client. Throws a plain Error for a bad secret or allow-list entry (configuration
 * errors, reported at start).
 */
export function createWebhookClient(settings: WebhookSettings): WebhookClient {
  const sign = signer(settings.secret);
  const allow = (settings.allowHosts ?? []).map(parseAllowEntry);
  const maxResponseBytes = settings.maxResponseBytes ?? WEBHOOK_DEFAULTS.maxResponseBytes;
  const maxRequestBytes = settings.maxRequestBytes ?? WEBHOOK_DEFAULTS.maxRequestBytes;
  const maxRedirects = settings.maxRedirects ?? WEBHOOK_DEFAULTS.maxRedirects;
  const maxTimeoutMs = settings.maxTimeoutMs ?? WEBHOOK_DEFAULTS.maxTimeoutMs;
  const defaultTimeoutMs = Math.min(settings.defaultTimeoutMs ?? WEBHOOK_DEFAULTS.defaultTimeoutMs, maxTimeoutMs);
  const lookup = settings.lookup ?? defaultLookup;
  const connect = settings.connect ?? defaultConnect;
  const now = settings.now ?? (() => new Date());

  const allowed = (url: URL): boolean => {
    const port = portOf(url);
    return allow.some((entry) => entry.hostname === url.hostname && (entry.port === null || entry.port === port));
  };

  /** Resolves and checks the URL's host; returns the one address the request will connect to. */
  async function resolve(url: URL, signal: AbortSignal): Promise<ResolvedAddress & { family: 4 | 6 }> {
    const hostname = bareHostname(url);
    const isAllowed = allowed(url);
    const literal = net.isIP(hostname);
    if (literal !== 0) {
      // An IP literal (the URL parser has already turned decimal/octal/hex forms into dotted quads).
      if (!isAllowed && isForbiddenAddress(hostname)) throw bad("WEBHOOK_FORBIDDEN_ADDRESS", `${url.host} is not an allowed address`);
      return { address: hostname, family: literal as 4 | 6 };
    }
    let answers: readonly ResolvedAddress[];
    try {
      answers = await abortable(lookup(hostname), signal);
    } catch (error) {
      if (signal.aborted) throw error;
      throw bad("WEBHOOK_FAILED", `could not resolve ${hostname}${codeOf(error)}`);
    }
    if (!Array.isArray(answers) || answers.length === 0) throw bad("WEBHOOK_FAILED", `could not resolve ${hostname}`);
    const addresses = answers.map((answer) => answer.address);
    // Every answer must pass: the resolver (or the OS) may prefer any of them.
    if (addresses.some((address) => net.isIP(address) === 0))
      throw bad("WEBHOOK_FAILED", `${hostname} resolved to something that is not an IP address`);
    if (!isAllowed && addresses.some(isForbiddenAddress)) {
      throw bad("WEBHOOK_FORBIDDEN_ADDRESS", `${hostname} resolves to an address that is not allowed`);
    }
    const address = addresses[0]!;
    return { address, family: net.isIP(address) as 4 | 6 };
  }

  /** One HTTP exchange on a socket to `target`. Redirect bodies are not read. */
  function exchange(
    url: URL,
    target: ConnectTarget,
    method: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer | null,
    signal: AbortSignal,
  ): Promise<Exchange> {
    return new Promise<Exchange>((resolvePromise, reject) => {
      const options: http.RequestOptions = {
        method,
        host: target.address,
        port: target.port,
        path: `${url.pathname}${url.search}`,
        headers,
        setHost: false,
        signal,
        insecureHTTPParser: false,
        // No agent: the socket comes from here, to the checked address, and is used for this request only.
        createConnection: () => connect(target),
      };
      const request = (target.tls ? https : http).request(options);
      request.on("error", reject);
      request.on("response", (response) => {
        const status = response.statusCode ?? 0;
        if (REDIRECTS.has(status) && response.headers.location !== undefined) {
          response.destroy();
          resolvePromise({ status, headers: response.headers, body: null });
          return;
        }
        const declared = Number(response.headers["content-length"]);
        if (Number.isFinite(declared) && declared > maxResponseBytes) {
          response.destroy();
          reject(bad("WEBHOOK_TOO_LARGE", `the response from ${url.host} is larger than ${maxResponseBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxResponseBytes) {
            response.destroy();
            request.destroy();
            reject(bad("WEBHOOK_TOO_LARGE", `the response from ${url.host} is larger than ${maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => resolvePromise({ status, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on("error", reject);
        response.on("close", () => {
          if (!response.complete) reject(bad("WEBHOOK_FAILED", `the response from ${url.host} was cut short`));
        });
      });
      request.end(body ?? undefined);
    });
  }

  async function send(request: WebhookRequest): Promise<WebhookResponse> {
    if (!METHODS.has(request.method)) throw bad("WEBHOOK_BAD_REQUEST", `method must be one of ${[...METHODS].join(", ")}`);
    const timeoutMs = request.timeoutMs ?? defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > maxTimeoutMs) {
      throw bad("WEBHOOK_BAD_REQUEST", `timeoutMs must be an integer from 1 to ${maxTimeoutMs}`);
    }
    const userHeaders = checkHeaders(request.headers);
    let url = parseUrl(request.url, "the URL");
    let method: string = request.method;
    let body = encodeBody(request.method, request.body, maxRequestBytes);
    if (body && body.bytes.length > maxRequestBytes)
      throw bad("WEBHOOK_TOO_LARGE", `the request body is larger than ${maxRequestBytes} bytes`);

    if (request.id !== undefined && (typeof request.id !== "string" || !MESSAGE_ID.test(request.id))) {
      throw bad("WEBHOOK_BAD_REQUEST", "id must be 1 to 200 letters, digits, _, - or .");
    }
    const msgId = request.id ?? `msg_${randomBytes(16).toString("base64url")}`;
    const timestamp = now();
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout.signal, request.signal]) : timeout.signal;
    const origin = url.origin;
    try {
      for (let redirects = 0; ; redirects++) {
        if (signal.aborted) throw new Error("aborted");
        const address = await resolve(url, signal);
        const target: ConnectTarget = { ...address, port: portOf(url), hostname: bareHostname(url), tls: url.protocol === "https:" };
        const payload = body?.bytes ?? Buffer.alloc(0);
        const headers: http.OutgoingHttpHeaders = {};
        for (const [lower, { name, value }] of userHeaders) {
          if (url.origin !== origin && ORIGIN_BOUND_HEADERS.has(lower)) continue;
          if (!body && lower === "content-type") continue;
          headers[name] = value;
        }
        if (body && !userHeaders.has("content-type")) headers["content-type"] = body.contentType;
        if (!userHeaders.has("user-agent")) headers["user-agent"] = "realtime-channels-webhook/1";
        if (!userHeaders.has("accept-encoding")) headers["accept-encoding"] = "identity";
        headers.host = url.host;
        headers["content-length"] = String(payload.length);
        headers["webhook-id"] = msgId;
        headers["webhook-timestamp"] = String(Math.floor(timestamp.getTime() / 1000));
        headers["webhook-signature"] = sign.sign(msgId, timestamp, payload.toString("utf8"));

        const result = await exchange(url, target, method, headers, body ? payload : null, signal);
        if (result.body !== null) {
          const text = result.body.toString("utf8");
          return {
            status: result.status,
            headers: flattenHeaders(result.headers),
            body: decodeBody(text, result.headers["content-type"]),
            text,
          };
        }
        if (redirects >= maxRedirects) throw bad("WEBHOOK_FAILED", `too many redirects (more than ${maxRedirects})`);
        url = parseUrl(new URL(result.headers.location!, url).href, "a redirect's Location");
        // 303 always, and 301/302 after POST (as browsers do), continue as GET without a body.
        if (result.status === 303 || ((result.status === 301 || result.status === 302) && method === "POST")) {
          method = "GET";
          body = null;
        }
      }
    } catch (error) {
      if (timeout.signal.aborted) throw bad("WEBHOOK_TIMEOUT", `the request to ${url.host} timed out after ${timeoutMs} ms`);
      if (request.signal?.aborted) throw bad("WEBHOOK_ABORTED", `the request to ${url.host} was aborted`);
      if (error instanceof WebhookError) throw error;
      // Node's messages may quote the resolved address; give only the error code.
      throw bad("WEBHOOK_FAILED", `the request to ${url.host} failed${codeOf(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  return { send };
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z0-9_]+$/.test(code) ? ` (${code})` : "";
}

/** Rejects when the signal aborts first (lookups cannot be cancelled, only abandoned). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
