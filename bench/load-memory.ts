/**
 * One load process of the memory scenario (bench/memory.ts): opens clients `first` … `first + count − 1`,
 * each one WebSocket from `localAddress` with two subscriptions, `user:<i>` (id `u`) and
 * `room:<floor(i / 10)>` (id `r`), as in the rooms workload. A subscription is live once its first
 * `next` arrives (the client's own JOIN). Prints `READY <live> <failed>` once every client is live or
 * has failed, then holds the sockets open, reading and dropping whatever arrives, until it is killed.
 *
 *   tsx bench/load-memory.ts <ws url> <first> <count> <local address>
 */
import WebSocket from "ws";
import { frames } from "./shared.js";

const [url, firstArg, countArg, localAddress] = process.argv.slice(2);
if (!url || !firstArg || !countArg || !localAddress) throw new Error("usage: load-memory.ts <ws url> <first> <count> <local address>");
const first = Number(firstArg);
const count = Number(countArg);
/** Handshakes under way at once. */
const CONCURRENCY = 100;
const ROOM_SIZE = 10;

const sockets: WebSocket[] = [];
let live = 0;
let failed = 0;
let nextIndex = first;
let firstFailure = "";

function finishedOne(): void {
  const next = nextIndex;
  if (next < first + count) {
    nextIndex += 1;
    open(next);
  } else if (live + failed === count) {
    console.log(`READY ${live} ${failed}${firstFailure ? ` ${firstFailure}` : ""}`);
  }
}

/** Opens client `index`; calls {@link finishedOne} once, when both subscriptions are live or the client failed. */
function open(index: number): void {
  const socket = new WebSocket(url!, ["graphql-transport-ws"], { perMessageDeflate: false, skipUTF8Validation: true, localAddress });
  sockets.push(socket);
  let settled = false;
  const unconfirmed = new Set(["u", "r"]);
  const settle = (failure?: string) => {
    if (settled) return;
    settled = true;
    if (failure) {
      failed += 1;
      firstFailure ||= failure;
    } else live += 1;
    finishedOne();
  };
  socket.on("error", (error) => settle(`socket error: ${error.message}`));
  socket.on("close", (code) => settle(`closed ${code}`));
  socket.on("open", () => socket.send(frames.connectionInit));
  socket.on("message", (data: Buffer) => {
    if (settled) return;
    const text = String(data);
    if (text.includes('"connection_ack"')) {
      socket.send(frames.gqlSubscribe("u", `user:${index}`));
      socket.send(frames.gqlSubscribe("r", `room:${Math.floor(index / ROOM_SIZE)}`));
      return;
    }
    const frame = JSON.parse(text) as { id?: string; type?: string };
    if (frame.type === "error") return settle(`error on ${frame.id}: ${text.slice(0, 200)}`);
    if (frame.type === "next" && frame.id && unconfirmed.delete(frame.id) && unconfirmed.size === 0) settle();
  });
}

for (let i = 0; i < Math.min(CONCURRENCY, count); i++) {
  nextIndex += 1;
  open(first + i);
}
