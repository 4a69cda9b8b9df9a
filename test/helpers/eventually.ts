import { inspect } from "node:util";

/** When {@link eventually} is done, and how long and how often it polls. */
export interface EventuallyOptions<T> {
  /** Which values count as done; any truthy value by default. */
  until?: (value: T) => boolean;
  /** It fails after this long: a bound against hanging, not a speed check. 20 s by default. */
  timeoutMs?: number;
  /** The pause between two probes; 50 ms by default. */
  intervalMs?: number;
}

/**
 * Calls `probe` until its value is accepted (see {@link EventuallyOptions.until}) and returns that value.
 * Throws, naming `what` and the last value seen, if no value is accepted within the time limit.
 */
export async function eventually<T>(what: string, probe: () => T | Promise<T>, options: EventuallyOptions<T> = {}): Promise<T> {
  const { until = Boolean, timeoutMs = 20_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (until(value)) return value;
    if (Date.now() > deadline) {
      const seen = inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY });
      throw new Error(`waited ${timeoutMs} ms for ${what}; the last value seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
