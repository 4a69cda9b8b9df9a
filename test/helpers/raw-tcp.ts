import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterAll } from "vitest";

/** How a raw connection ends from the client's side. */
export type Ending = "rst" | "fin" | "hold";

/** One raw TCP exchange: bytes written as given, then an ending. */
export interface RawExchange {
  readonly port: number;
  /** The loopback address to connect from (127.0.0.1 by default), so per-address limits can be aimed. */
  readonly localAddress?: string;
  /** What to write; several parts are written one after another, `pauseMs` apart (a slow writer). */
  readonly parts: readonly Buffer[];
  readonly pauseMs?: number;
  /**
   * `rst` resets the connection, `fin` ends the client's side and waits for the server to close,
   * `hold` keeps it open until the server closes it or `lingerMs` passes (then resets).
   */
  readonly ending: Ending;
  /** How long to wait for the server's answer before the ending. */
  readonly readMs?: number;
  /** For `fin` and `hold`: how long to wait for the server to close before resetting (default 200 ms). */
  readonly lingerMs?: number;
  /** Ends the wait before the ending early, once what was received satisfies it (say, a status line). */
  readonly readUntil?: (received: Buffer) => boolean;
}

/** What came back. */
export interface RawResult {
  readonly received: Buffer;
  /** True when the server closed (or reset) the connection before the client's ending took effect. */
  readonly closedByServer: boolean;
}

const open = new Set<Socket>();
afterAll(() => {
  for (const socket of open) socket.destroy();
});

/** Runs one {@link RawExchange}. Never throws for the connection's fate: resets and refusals are results. */
export async function rawExchange(exchange: RawExchange): Promise<RawResult> {
  const socket = connect({ port: exchange.port, host: "127.0.0.1", localAddress: exchange.localAddress ?? "127.0.0.1" });
  open.add(socket);
  const chunks: Buffer[] = [];
  let closedByServer = false;
  let ending = false;
  let answered: () => void = () => {};
  const answer = new Promise<void>((resolve) => (answered = resolve));
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    if (exchange.readUntil?.(Buffer.concat(chunks))) answered();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once("close", () => {
      if (!ending) closedByServer = true;
      open.delete(socket);
      resolve();
    }),
  );
  const connected = await Promise.race([
    new Promise<boolean>((resolve) => socket.once("connect", () => resolve(true))),
    closed.then(() => false),
  ]);
  const readMs = exchange.readMs ?? 50;
  const lingerMs = exchange.lingerMs ?? 200;
  if (connected) {
    for (const [index, part] of exchange.parts.entries()) {
      if (socket.destroyed) break;
      if (index > 0 && exchange.pauseMs) await Promise.race([sleep(exchange.pauseMs), closed]);
      if (!socket.destroyed) socket.write(part);
    }
    await Promise.race([sleep(readMs), closed, answer]);
    if (!socket.destroyed) {
      if (exchange.ending === "rst") {
        ending = true;
        socket.resetAndDestroy();
      } else if (exchange.ending === "fin") {
        socket.end();
        await Promise.race([sleep(lingerMs), closed]);
        ending = true;
        socket.resetAndDestroy();
      } else {
        await Promise.race([sleep(lingerMs), closed]);
        ending = true;
        socket.resetAndDestroy();
      }
    }
  }
  await closed;
  return { received: Buffer.concat(chunks), closedByServer };
}

/** The status code of the first HTTP response in `received`, or null when there is none. */
export function statusOf(received: Buffer): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(received.subarray(0, 32).toString("latin1"));
  return match ? Number(match[1]) : null;
}

/** A WebSocket upgrade request for `path`, with extra header lines. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Protocol: graphql-transport-ws",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** A client-to-server WebSocket text frame (masked, as clients must send them). */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const length = payload.length;
  const header =
    length < 126
      ? Buffer.from([0x81, 0x80 | length])
      : length < 65_536
        ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
        : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), bigEndian64(length)]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([header, mask, masked]);
}

function bigEndian64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(value));
  return buffer;
}

/** An HTTP/1.1 POST of a JSON body. */
export function postRequest(path: string, body: string, headers: Record<string, string> = {}): string {
  const lines = [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** An HTTP/1.1 GET. */
export function getRequest(path: string, headers: Record<string, string> = {}): string {
  const lines = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
