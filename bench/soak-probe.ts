/**
 * A preload for the soak test's server process: it observes the process from inside without any
 * change to `src/`. Load it after tsx:
 *
 *   node --expose-gc --import tsx --import ./bench/soak-probe.ts src/main.ts
 *
 * Every `SOAK_PROBE_INTERVAL_MS` (default 5000) it writes one line to stderr:
 * `SOAK_PROBE {json}` with `process.memoryUsage()`, the event-loop delay percentiles since the
 * previous line (`perf_hooks.monitorEventLoopDelay`, in ms beyond its 10 ms sampling interval), the
 * GC pauses since then (a `gc` PerformanceObserver), listener counts on `process`, and the active
 * resources (`process.getActiveResourcesInfo()`, total and by type). On SIGUSR2 it runs a full GC
 * first (when started with --expose-gc) and writes a line at once, marked `"gc": true`, so the soak
 * can compare heaps after collection at the start and the end.
 *
 * The probe's own timer is unref'd and its SIGUSR2 listener is counted in `listeners.SIGUSR2`.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";

const INTERVAL_MS = Number(process.env.SOAK_PROBE_INTERVAL_MS ?? 5000) || 5000;
const PROCESS_EVENTS = [
  "SIGINT",
  "SIGTERM",
  "SIGUSR2",
  "exit",
  "beforeExit",
  "uncaughtException",
  "unhandledRejection",
  "warning",
] as const;

/** The histogram records the time between samples, so the sampling interval is taken off every value. */
const RESOLUTION_MS = 10;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
delay.enable();
let sequence = 0;

/** Garbage-collection pauses since the previous line: count, total and longest, minor (scavenge) and major (mark-compact). */
const gcPauses = { count: 0, totalMs: 0, maxMs: 0, minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
    gcPauses.count++;
    gcPauses.totalMs += entry.duration;
    gcPauses.maxMs = Math.max(gcPauses.maxMs, entry.duration);
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gcPauses.minor++;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gcPauses.major++;
  }
}).observe({ entryTypes: ["gc"] });

/** Nanoseconds between samples to milliseconds of delay beyond the sampling interval. */
const ms = (nanoseconds: number) => Math.max(0, Math.round((nanoseconds / 1e6 - RESOLUTION_MS) * 100) / 100);

function sample(reason: "interval" | "signal"): void {
  let gc = false;
  const collect = (globalThis as { gc?: () => void }).gc;
  if (reason === "signal" && typeof collect === "function") {
    collect();
    gc = true;
  }
  const resources = process.getActiveResourcesInfo();
  const byType: Record<string, number> = {};
  for (const type of resources) byType[type] = (byType[type] ?? 0) + 1;
  const listeners = Object.fromEntries(PROCESS_EVENTS.map((event) => [event, process.listenerCount(event)]));
  const line = {
    seq: ++sequence,
    at: new Date().toISOString(),
    uptimeS: Math.round(process.uptime() * 10) / 10,
    reason,
    gc,
    memory: process.memoryUsage(),
    eventLoopDelayMs: {
      min: ms(delay.min),
      mean: ms(delay.mean),
      p50: ms(delay.percentile(50)),
      p90: ms(delay.percentile(90)),
      p99: ms(delay.percentile(99)),
      max: ms(delay.max),
    },
    gcPauses: { ...gcPauses, totalMs: Math.round(gcPauses.totalMs * 10) / 10, maxMs: Math.round(gcPauses.maxMs * 10) / 10 },
    listeners,
    activeResources: { total: resources.length, byType },
  };
  delay.reset();
  Object.assign(gcPauses, { count: 0, totalMs: 0, maxMs: 0, minor: 0, major: 0 });
  process.stderr.write(`SOAK_PROBE ${JSON.stringify(line)}\n`);
}

setInterval(() => sample("interval"), INTERVAL_MS).unref();
process.on("SIGUSR2", () => sample("signal"));
