/** How long a channel keeps its messages (the channel configurations answer it). */
export interface ChannelPolicy {
  /** Messages the channel keeps as history; 0 keeps none. */
  historyKept(channel: string): number;
}

/** Where per-channel sequence numbers come from. */
export interface SequenceSource {
  /** The channel's next sequence number. */
  next(channel: string): Promise<number>;
}

/**
 * Where a channel's numbering resumes: after its last stored message. A channel that keeps no
 * history starts from 0 without asking the database, so its messages flow even while the database
 * is unreachable.
 */
export function resumeFromHistory(
  policy: ChannelPolicy,
  history: { lastSeq(channel: string): Promise<number> },
): (channel: string) => Promise<number> {
  return async (channel) => (policy.historyKept(channel) > 0 ? history.lastSeq(channel) : 0);
}

/** How many channels {@link LocalSequence} keeps numbering for by default. */
export const DEFAULT_SEQUENCE_CHANNELS = 10_000;

/**
 * Sequence numbers kept in this process, for a single server instance. A channel's numbering
 * resumes from `initial` (where its stored history ends) the first time it is used; a failure
 * there is not kept, so the channel's next message asks again.
 *
 * Only the `maxChannels` most recently used channels are kept. A channel forgotten and used again
 * resumes from `initial`, but never below the highest number a forgotten channel had reached: its
 * numbers may jump forward (clients read a jump as "check history"), never go back, whether or not
 * the channel keeps history to resume from.
 */
export class LocalSequence implements SequenceSource {
  /** Each channel's latest number, in least-recently-used order (a Map iterates in insertion order). */
  private readonly last = new Map<string, Promise<number>>();
  /** The highest number handed out by a channel that has been forgotten; resumed channels start above it. */
  private floor = 0;
  /** Settles once the channels forgotten so far have raised {@link floor}. */
  private floorSettled: Promise<void> = Promise.resolve();

  /**
   * @param initial - where a channel's sequence resumes (e.g. its last stored history entry)
   * @param maxChannels - how many channels' numbering to keep in memory
   */
  constructor(
    private readonly initial: (channel: string) => Promise<number>,
    private readonly maxChannels: number = DEFAULT_SEQUENCE_CHANNELS,
  ) {}

  next(channel: string): Promise<number> {
    const previous = this.last.get(channel);
    // A failed lookup of where to resume is retried by the next message rather than kept.
    const last = previous ? previous.catch(() => this.resume(channel)) : this.resume(channel);
    const next = last.then((value) => value + 1);
    this.last.delete(channel); // re-inserted last: the most recently used
    this.last.set(channel, next);
    if (this.last.size > this.maxChannels) this.forgetLeastRecent();
    return next;
  }

  /** How many channels are numbered in memory. */
  get size(): number {
    return this.last.size;
  }

  private async resume(channel: string): Promise<number> {
    const [initial] = await Promise.all([this.initial(channel), this.floorSettled]);
    return Math.max(initial, this.floor);
  }

  private forgetLeastRecent(): void {
    const [channel, latest] = this.last.entries().next().value!;
    this.last.delete(channel);
    const raised = latest.then(
      (value) => void (this.floor = Math.max(this.floor, value)),
      () => undefined, // it never handed out a number
    );
    this.floorSettled = Promise.all([this.floorSettled, raised]).then(() => undefined);
  }
}

/**
 * Runs what must happen in sequence order (numbering, storing, publishing) one at a time per
 * channel, so this instance publishes a channel's messages in `seq` order.
 */
export class ChannelSequencer {
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly source: SequenceSource) {}

  /** Runs `commit` with the channel's next sequence number, after earlier commits on the channel. */
  run<T>(channel: string, commit: (seq: number) => Promise<T>): Promise<T> {
    const previous = this.tails.get(channel) ?? Promise.resolve();
    const result = previous.then(async () => commit(await this.source.next(channel)));
    const tail = result.catch(() => undefined);
    this.tails.set(channel, tail);
    // Stryker disable next-line BlockStatement: forgets idle channels to bound memory only; a settled tail left in the map delays nothing
    void tail.then(() => {
      if (this.tails.get(channel) === tail) this.tails.delete(channel);
    });
    return result;
  }
}
