import type { Backplane } from "./realtime/backplane.js";

/** The state of each backing service, as /health and /ready report it. */
export interface Health {
  readonly healthy: boolean;
  readonly database: "ok" | "unreachable";
  /** Present with a Redis backplane. */
  readonly redis?: "ok" | "unreachable";
}

/** Asks the database (a round trip) and the backplane (its connection state) whether they answer. */
export async function checkHealth(db: { ping(): Promise<boolean> }, backplane: Pick<Backplane, "kind" | "healthy">): Promise<Health> {
  const database = (await db.ping()) ? "ok" : "unreachable";
  if (backplane.kind === "memory") return { healthy: database === "ok", database };
  const redis = backplane.healthy() ? "ok" : "unreachable";
  return { healthy: database === "ok" && redis === "ok", database, redis };
}
