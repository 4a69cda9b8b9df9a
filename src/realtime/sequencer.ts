/**
 * Hands out per-channel sequence numbers and runs what must happen in sequence order (storing and
 * publishing) one at a time per channel, so subscribers receive a channel's messages in `seq` order.
 */
export class ChannelSequencer {
  private readonly last = new Map<string, Promise<number>>();
  private readonly tails = new Map<string, Promise<unknown>>();

  /** @param initial - where a channel's sequence resumes, asked once per channel (e.g. from history) */
  constructor(private readonly initial: (channel: string) => Promise<number>) {}

  /**
   * Runs `commit` with the channel's next sequence number, after every earlier commit on the channel
   * has finished. A failed commit does not use up its number.
   */
  run<T>(channel: string, commit: (seq: number) => Promise<T>): Promise<T> {
    const previous = this.tails.get(channel) ?? Promise.resolve();
    const result = previous.then(async () => {
      const seq = (await (this.last.get(channel) ?? this.initial(channel))) + 1;
      const value = await commit(seq);
      this.last.set(channel, Promise.resolve(seq));
      return value;
    });
    const tail = result.catch(() => undefined);
    this.tails.set(channel, tail);
    void tail.then(() => {
      if (this.tails.get(channel) === tail) this.tails.delete(channel);
    });
    return result;
  }
}
