/**
 * One load process of the memory scenario (bench/memory.ts): opens clients `first` … `first + count − 1`,
 * each one WebSocket from `localAddress` with two subscriptions, `user:<i>` (id `u`) and
 * `room:<floor(i / 10)>` (id `r`), as in the rooms workload. A subscription is live once its first
 * `next` arrives (the client's own JOIN). Prints `READY <live> <failed>` once every client is live or
 * has failed, then holds the sockets open, reading and dropping whatever arrives, until it is killed.
 *
 *   tsx bench/load-memory.ts <ws url> <first> <count> <local address>
 */
import { BenchSocket, type Frame, openBounded } from "./client.js";

const [url, firstArg, countArg, localAddress] = process.argv.slice(2);
if (!url || !firstArg || !countArg || !localAddress) throw new Error("usage: load-memory.ts <ws url> <first> <count> <local address>");
const first = Number(firstArg);
const count = Number(countArg);
/** Handshakes under way at once. */
const CONCURRENCY = 100;
const ROOM_SIZE = 10;

/** Client `index`: subscribes once connected; calls `onSettled` once, when both subscriptions are live or the client failed. */
class MemoryClient extends BenchSocket {
  private readonly unconfirmed = new Set(["u", "r"]);
  private settled = false;

  constructor(
    index: number,
    private readonly onSettled: (failure?: string) => void,
  ) {
    super(url!, "gql", { localAddress: localAddress! });
    this.ready().then(
      () => {
        this.sendSubscribe("u", `user:${index}`);
        this.sendSubscribe("r", `room:${Math.floor(index / ROOM_SIZE)}`);
      },
      () => {}, // reported by onEnd
    );
  }

  /** Once settled, every frame is dropped unread. */
  protected override onRawFrame(): boolean {
    return this.settled;
  }

  protected override onFrame(frame: Frame, data: Buffer): void {
    if (frame.type === "error") this.settle(`error on ${frame.id}: ${String(data).slice(0, 200)}`);
    else if (frame.type === "next" && frame.id && this.unconfirmed.delete(frame.id) && this.unconfirmed.size === 0) this.settle();
  }

  protected override onEnd(reason: string): void {
    this.settle(reason);
  }

  private settle(failure?: string): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled(failure);
  }
}

let live = 0;
let failed = 0;
let firstFailure = "";
await openBounded(
  count,
  CONCURRENCY,
  Number.POSITIVE_INFINITY,
  (i) =>
    new Promise<void>((resolve) => {
      new MemoryClient(first + i, (failure) => {
        if (failure) {
          failed += 1;
          firstFailure ||= failure;
        } else live += 1;
        resolve();
      });
    }),
);
console.log(`READY ${live} ${failed}${firstFailure ? ` ${firstFailure}` : ""}`);
