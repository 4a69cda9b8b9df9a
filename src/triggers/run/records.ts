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

/** One webhook call of an AFTER run's attempt, as kept: nothing secret (no headers, no signature, no query string). */
export interface AfterAttemptRequest {
  readonly method: string;
  /** The requested URL's origin and path (no userinfo, no query string, no fragment). */
  readonly url: string;
  /** The HTTP status of the final response; null when none came back. */
  readonly status: number | null;
  readonly durationMs: number;
  /** The start of the response body as text, at most {@link MAX_RESPONSE_EXCERPT_BYTES} bytes of UTF-8; null without a response. */
  readonly responseExcerpt: string | null;
  /** True when the body was longer than the excerpt. */
  readonly responseTruncated: boolean;
}

/** Bytes of a response body kept in an attempt's record. */
export const MAX_RESPONSE_EXCERPT_BYTES = 1024;

/** One finished attempt of an AFTER run. */
export interface AfterAttemptRecord {
  readonly runId: string;
  /** From 1, in order over the run's life (retries continue the numbering). */
  readonly number: number;
  readonly startedAt: Date;
  readonly durationMs: number;
  /** DELIVERED, or FAILED (also for a failed attempt that is retried). */
  readonly outcome: Exclude<AfterRunStatus, "PENDING">;
  readonly error: string | null;
  readonly requests: readonly AfterAttemptRequest[];
}

/**
 * The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`, cut between characters (never
 * inside a surrogate pair), and whether anything was cut.
 */
export function textExcerpt(text: string, maxBytes = MAX_RESPONSE_EXCERPT_BYTES): { text: string; truncated: boolean } {
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) return { text: text.slice(0, i), truncated: true };
    bytes += size;
    i += code > 0xffff ? 2 : 1;
  }
  return { text, truncated: false };
}

/** Characters of a URL's path kept in an attempt's record. */
const MAX_KEPT_PATH = 2048;

/**
 * A request URL as an attempt's record keeps it: origin and path only (a query string or userinfo may
 * hold a secret), the path cut to {@link MAX_KEPT_PATH} characters; `(not a valid http URL)` otherwise.
 */
export function keptUrl(raw: unknown): string {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    return "(not a valid http URL)";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "(not a valid http URL)";
  const path = url.pathname.length > MAX_KEPT_PATH ? `${url.pathname.slice(0, MAX_KEPT_PATH)}…` : url.pathname;
  return `${url.origin}${path}`;
}
