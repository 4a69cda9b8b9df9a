import { readFileSync } from "node:fs";

/**
 * The bound tests hold the longest stretch of trigger work to, in CPU time: trigger runs let the
 * event loop run every few milliseconds and each step of theirs is bounded (docs/triggers.md, Guardrails)
 * well under 50 ms; twice that leaves room for a loaded 2-core machine and garbage collection.
 */
export const MAX_HOLD_MS = 100;

/** What {@link watchEventLoop} saw: the longest stretch the event loop was held, two ways. */
export interface EventLoopHold {
  /**
   * The longest stretch between two turns of the event loop, counted in the main thread's CPU
   * time: how much work held the loop. A loaded machine that takes the thread off the CPU makes a
   * stretch longer in wall time, not in CPU time, so this is what a bound on holding the loop is
   * checked against.
   */
  readonly cpuMs: number;
  /** The longest stretch in wall time (what a client waited, on this machine, at this load). */
  readonly wallMs: number;
}

/** This thread's CPU time so far in milliseconds: the kernel's count for the thread on Linux, else the process's. */
export const threadCpuMs = threadCpuClock();

function threadCpuClock(): () => number {
  // Test files run in a worker process's main thread, whose task id is the process id.
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  try {
    readFileSync(schedstat, "utf8");
    return () => Number(readFileSync(schedstat, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    };
  }
}

/**
 * Watches the event loop of this process (where test servers run) with a timer every millisecond:
 * the longest time between two of its turns, in wall time and in this thread's CPU time.
 */
export function watchEventLoop(): { stop(): EventLoopHold } {
  const cpu = threadCpuMs;
  let cpuMs = 0;
  let wallMs = 0;
  let lastWall = performance.now();
  let lastCpu = cpu();
  const tick = () => {
    const wall = performance.now();
    const used = cpu();
    wallMs = Math.max(wallMs, wall - lastWall);
    cpuMs = Math.max(cpuMs, Math.min(wall - lastWall, used - lastCpu));
    lastWall = performance.now();
    lastCpu = cpu();
  };
  const timer = setInterval(tick, 1);
  return {
    stop() {
      tick();
      clearInterval(timer);
      return { cpuMs, wallMs };
    },
  };
}

/**
 * Runs `work` and tells how long it took, in wall time and in this thread's CPU time meanwhile
 * (at most the wall time): how much work the server did before the answer, whatever the load.
 */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T } & EventLoopHold> {
  const wall = performance.now();
  const cpu = threadCpuMs();
  const value = await work();
  const wallMs = performance.now() - wall;
  return { value, wallMs, cpuMs: Math.min(wallMs, threadCpuMs() - cpu) };
}
