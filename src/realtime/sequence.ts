/** Where per-channel sequence numbers come from. */
export interface SequenceSource {
  /** The channel's next sequence number. */
  next(channel: string): Promise<number>;
}

/**
 * Sequence numbers kept in this process, resuming where a channel's history ends (asked once per
 * channel), for a single server instance.
 */
export class LocalSequence implements SequenceSource {
  private readonly last = new Map<string, Promise<number>>();

  /** @param initial - where a channel's sequence resumes (e.g. its last stored history entry) */
  constructor(private readonly initial: (channel: string) => Promise<number>) {}

  next(channel: string): Promise<number> {
    const next = (this.last.get(channel) ?? this.initial(channel)).then((last) => last + 1);
    this.last.set(channel, next);
    return next;
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
    void tail.then(() => {
      if (this.tails.get(channel) === tail) this.tails.delete(channel);
    });
    return result;
  }
}
