import { seededRandom } from "../../dev/random.js";
import type { Cluster } from "./cluster.js";

/** The kinds of fault the nemesis injects. */
export const FAULT_KINDS = [
  "kill", // SIGKILL an instance, start it again after the fault
  "pause", // SIGSTOP an instance, SIGCONT after the fault
  "postgres-one", // cut one instance's link to PostgreSQL
  "postgres-all", // cut every instance's link to PostgreSQL
  "redis-one", // cut one instance's link to Redis
  "redis-all", // cut every instance's link to Redis
  "partition", // one instance reaches neither Redis (its peers) nor PostgreSQL; nothing is closed
  "latency", // slow one instance's links to PostgreSQL and Redis
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One fault on the schedule: when it starts (ms after the run starts), for how long, on which instance. */
export interface Fault {
  readonly kind: FaultKind;
  readonly instance: number;
  readonly startMs: number;
  readonly durationMs: number;
  /** For `latency`: the added delay each way. */
  readonly latencyMs?: number;
}

/** What happened, with wall-clock times, for the report. */
export interface FaultLog {
  readonly fault: Fault;
  startedAt?: number;
  endedAt?: number;
  error?: string;
}

/**
 * The schedule of a run, from its seed: faults of every kind in turn (shuffled), each 1.5 to 8 s
 * long, started 1 to 5 s apart, so that some overlap (an instance paused while Redis is cut, a
 * partition during a PostgreSQL outage). The last fault ends at least 5 s before the run does.
 */
export function scheduleFaults(seed: number, runMs: number, instances: number): Fault[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const faults: Fault[] = [];
  let kinds: FaultKind[] = [];
  for (let at = 2_000 + random() * 2_000; ; at += 1_000 + random() * 4_000) {
    if (kinds.length === 0) kinds = [...FAULT_KINDS].sort(() => random() - 0.5);
    const kind = kinds.pop()!;
    const durationMs = Math.round(1_500 + random() * 6_500);
    if (at + durationMs > runMs - 5_000) break;
    faults.push({
      kind,
      instance: pick(Array.from({ length: instances }, (_, i) => i)),
      startMs: Math.round(at),
      durationMs,
      ...(kind === "latency" ? { latencyMs: Math.round(50 + random() * 250) } : {}),
    });
  }
  return faults;
}

/** Runs the faults of a schedule against a cluster, on time; resolves when the last has ended. */
export async function runNemesis(cluster: Cluster, faults: readonly Fault[], startedAt: number, log: FaultLog[]): Promise<void> {
  await Promise.all(
    faults.map(async (fault) => {
      const entry: FaultLog = { fault };
      log.push(entry);
      await sleepUntil(startedAt + fault.startMs);
      entry.startedAt = Date.now();
      try {
        const end = await inject(cluster, fault);
        await sleepUntil(entry.startedAt + fault.durationMs);
        await end();
      } catch (error) {
        entry.error = String(error);
      }
      entry.endedAt = Date.now();
    }),
  );
}

/** Starts a fault; returns what ends it. */
async function inject(cluster: Cluster, fault: Fault): Promise<() => Promise<void>> {
  const instance = cluster.instances[fault.instance]!;
  const all = cluster.instances;
  switch (fault.kind) {
    case "kill":
      await instance.kill();
      return async () => {
        if (!instance.running) await instance.start();
      };
    case "pause":
      instance.pause();
      return async () => instance.resume();
    case "postgres-one":
      instance.postgres.cut();
      return async () => instance.postgres.heal();
    case "postgres-all":
      for (const each of all) each.postgres.cut();
      return async () => {
        for (const each of all) each.postgres.heal();
      };
    case "redis-one":
      instance.redis.cut();
      return async () => instance.redis.heal();
    case "redis-all":
      for (const each of all) each.redis.cut();
      return async () => {
        for (const each of all) each.redis.heal();
      };
    case "partition":
      instance.postgres.partition();
      instance.redis.partition();
      return async () => {
        instance.postgres.heal();
        instance.redis.heal();
      };
    case "latency":
      instance.postgres.setLatency(fault.latencyMs ?? 100);
      instance.redis.setLatency(fault.latencyMs ?? 100);
      return async () => {
        instance.postgres.setLatency(0);
        instance.redis.setLatency(0);
      };
  }
}

const sleepUntil = (at: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
