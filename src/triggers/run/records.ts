import type { RealtimeAction } from "../../realtime/types.js";
import { jsonPrefix } from "../guard/values.js";
import type { TriggerOutcome } from "./engine.js";

/**
 * Trigger runs as they are kept and listed: the record of a BEFORE run (recorder.ts) and of an AFTER run
 * (../after/queue.ts), and how a run's input and output are cut to size. Both recorders and the admin
 * API take these from here.
 */

/** One execution of a trigger on an event. */
export interface TriggerRunRecord {
  readonly id: string;
  readonly triggerId: string;
  readonly action: RealtimeAction;
  readonly channel: string;
  readonly outcome: TriggerOutcome;
  readonly durationMs: number;
  readonly error: string | null;
  readonly log: unknown[];
  /** The client whose event the trigger ran on. Null for runs recorded before clients were. */
  readonly clientId: string | null;
  /** The trigger's revision that ran. */
  readonly revision: number | null;
  /** `{ payload, commandOptions }` before the run, or its JSON text cut to {@link MAX_RUN_DATA_BYTES}. */
  readonly input: unknown;
  /** `{ payload, commandOptions }` after the run, or its JSON text cut to {@link MAX_RUN_DATA_BYTES}. */
  readonly output: unknown;
  /** True when `input` or `output` was cut. */
  readonly truncated: boolean;
  readonly createdAt: Date;
}

/** A run as the middleware reports it: input and output whole. */
export type TriggerRunReport = Omit<TriggerRunRecord, "id" | "createdAt" | "truncated">;

/** Bytes of JSON kept of a run's input and of its output. */
export const MAX_RUN_DATA_BYTES = 4096;

/** A captured value as a run keeps it (see {@link capJson}). */
export interface CappedJson {
  readonly value: unknown;
  readonly truncated: boolean;
  /** The JSON text of `value`. */
  readonly json: string;
}

/**
 * A value kept whole when its JSON fits in `maxBytes`, else as its JSON text cut to that size; `json`
 * is the JSON text of what is kept.
 */
export function capJson(value: unknown, maxBytes = MAX_RUN_DATA_BYTES): CappedJson {
  // Written only up to the cut: a run's input or output may be far larger than what is kept of it.
  const { text, whole } = jsonPrefix(value ?? null, maxBytes);
  if (whole && (text.length <= maxBytes / 3 || Buffer.byteLength(text) <= maxBytes))
    return { value: value ?? null, truncated: false, json: text };
  // Cut at a byte boundary; a character split in two decodes as U+FFFD, which is dropped.
  const cut = Buffer.from(text)
    .subarray(0, maxBytes)
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
  return { value: cut, truncated: true, json: JSON.stringify(cut) };
}

/** Where an AFTER run stands: waiting for its (next) attempt, delivered, or failed for good. */
export const AFTER_RUN_STATUSES = ["PENDING", "DELIVERED", "FAILED"] as const;
export type AfterRunStatus = (typeof AFTER_RUN_STATUSES)[number];

/**
 * One run of an AFTER trigger on a delivered event, as listed in `Trigger.runs`: a run record whose
 * duration, error, log and output are the latest attempt's, with the queue's status and attempts.
 */
export interface AfterRunRecord extends Omit<TriggerRunRecord, "outcome"> {
  readonly outcome: AfterRunStatus;
  /** Attempts started so far. */
  readonly attempts: number;
  /** When the next attempt may start; null once the run is over. */
  readonly nextAttemptAt: Date | null;
}
