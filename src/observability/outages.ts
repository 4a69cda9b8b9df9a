import type { Logger } from "../logger.js";

/** How often a service that went away is asked whether it is back, when a probe is given. */
const PROBE_INTERVAL_MS = 1000;

/**
 * Logs the outages of one backing service (the database, Redis) as two lines, not one per failed
 * request or reconnect attempt: a warning when it goes away (with the first failure's reason) and
 * an info line when it is back, with how long it was gone and how many operations failed meanwhile.
 */
export class OutageLog {
  private downSince: number | null = null;
  private failures = 0;
  private probing: NodeJS.Timeout | null = null;

  /**
   * @param service - how the lines name it (`database`, `redis`)
   * @param probe - asks whether the service answers again; without one, call {@link OutageLog.recovered}
   */
  constructor(
    private readonly service: string,
    private readonly logger: Logger,
    private readonly probe?: () => Promise<boolean>,
  ) {}

  /** True from the first failure until the service is back. */
  get down(): boolean {
    return this.downSince !== null;
  }

  /** An operation failed because the service could not be reached. */
  failed(reason?: string): void {
    this.failures++;
    if (this.downSince !== null) return;
    this.downSince = Date.now();
    this.logger.warn({ service: this.service, reason }, `${this.service} unreachable`);
    if (this.probe) {
      const probe = this.probe;
      this.probing = setInterval(() => {
        void probe().then(
          (up) => up && this.recovered(),
          () => undefined,
        );
      }, PROBE_INTERVAL_MS);
      this.probing.unref();
    }
  }

  /** The service answers again. */
  recovered(): void {
    if (this.downSince === null) return;
    if (this.probing) clearInterval(this.probing);
    this.probing = null;
    this.logger.info(
      { service: this.service, downMs: Date.now() - this.downSince, failures: this.failures },
      `${this.service} reachable again`,
    );
    this.downSince = null;
    this.failures = 0;
  }

  /** Stops probing. */
  close(): void {
    if (this.probing) clearInterval(this.probing);
    this.probing = null;
  }
}

/**
 * Runs a start-up step; while it fails because a backing service is unreachable (`outageOf` names
 * that service's outage log, or null for any other failure, which is thrown), waits a second and
 * tries again. A server or thread started during an outage waits for it to end, logging it once.
 */
export async function whenReachable<T>(
  step: () => Promise<T>,
  outageOf: (error: unknown) => OutageLog | null | Promise<OutageLog | null>,
): Promise<T> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      const outage = await outageOf(error);
      if (!outage) throw error;
      outage.failed(error instanceof Error ? error.message.trim().split("\n").at(-1) : undefined);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
