/**
 * A token bucket per key: each key may spend `perSecond` tokens a second, saving up at most one
 * second's worth (and at least one token, so rates below one a second still allow a call). Idle
 * keys are forgotten, so memory follows the number of active senders.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;
  private lastSweep = Date.now();

  constructor(readonly perSecond: number) {
    this.capacity = Math.max(1, perSecond);
  }

  /** Spends one token for `key`; false when its bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    this.sweep(now);
    const bucket = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    bucket.tokens = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 10_000) return;
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) if (now - bucket.at > 10_000) this.buckets.delete(key);
  }
}
