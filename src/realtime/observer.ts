import type { RealtimeAction } from "./types.js";

/** How a client is connected: a WebSocket, or HTTP (single requests and SSE streams). */
export type Transport = "ws" | "http";

/** Why an event was not delivered: a trigger dropped it quietly, or the publish was refused with an error. */
export const DROP_REASONS = ["dropped", "refused"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * What the realtime core reports as it works, for metrics. Every call is on the hot path (several
 * per event), so implementations must be cheap: increment counters, no allocation, no I/O. The core
 * never depends on how these are recorded; {@link NO_OBSERVER} ignores them all.
 */
export interface RealtimeObserver {
  /** An event entered the publish path (before triggers). */
  received(action: RealtimeAction): void;
  /**
   * An event reached `listeners` subscriptions on this instance; `createdAt` is the event's ISO 8601
   * creation time, for the publish-to-delivery latency.
   */
  delivered(action: RealtimeAction, listeners: number, createdAt: string): void;
  /** An event was not published. */
  notPublished(action: RealtimeAction, reason: DropReason): void;
  /** A subscriber was cut off for falling too far behind. */
  slowConsumerDropped(transport: Transport): void;
}

/** The observer that records nothing: the default wherever none is given. */
export const NO_OBSERVER: RealtimeObserver = Object.freeze({
  received: () => {},
  delivered: () => {},
  notPublished: () => {},
  slowConsumerDropped: () => {},
});
