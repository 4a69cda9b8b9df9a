/**
 * Micro-benchmark of the trigger engine alone: the benchmark's 3-step JSONata stack run N times on
 * the benchmark's 100-byte payload, one run after the other (as the publish path runs it).
 *
 *   npx tsx bench/trigger-cost.ts [--n=20000] [--json]
 *
 * Reports microseconds per event (wall and CPU), and each step's expression evaluated alone.
 */
import jsonata from "jsonata";
import { compileStack } from "../src/triggers/compile/stack.js";
import { runStack, type TriggerInput } from "../src/triggers/run/engine.js";
import { benchPayload } from "./shared.js";

/** The P+T trigger's stack (also created through the admin API by bench/run.ts). */
export const BENCH_STACK = [
  { var: "n", value: "$length(payload.text)" },
  { set: "payload.len", value: "$n" },
  { set: "payload.text", value: "$uppercase(payload.text)" },
];

export interface TriggerCostResult {
  readonly runs: number;
  readonly microsPerEvent: number;
  readonly cpuMicrosPerEvent: number;
  readonly p50Micros: number;
  readonly p99Micros: number;
  /** Each step's expression evaluated alone with jsonata (no engine around it). */
  readonly expressionMicros: Record<string, number>;
  readonly outcome: string;
}

export async function measureTriggerCost(runs: number): Promise<TriggerCostResult> {
  const stack = compileStack(BENCH_STACK);
  const input: TriggerInput = {
    action: "message",
    command: "message",
    channel: "bench",
    commandOptions: null,
    payload: JSON.parse(benchPayload(1, 1_234_567)),
    client: { id: "0b6f3a57-2d0e-4a55-9d1c-3a9c1f0e6a11", authenticated: false, extras: null },
  };
  const options = { timeoutMs: 1000 };
  const check = await runStack(stack, input, options);
  const payload = check.payload as { text?: string; len?: number };
  if (check.outcome !== "MODIFIED" || payload.len !== 89 || payload.text !== (input.payload as { text: string }).text.toUpperCase()) {
    throw new Error(`the bench stack did not do what it should: ${JSON.stringify(check)}`);
  }
  for (let i = 0; i < Math.min(5000, runs); i++) await runStack(stack, input, options); // warm-up (JIT)

  const single = new Float64Array(runs);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await runStack(stack, input, options);
    single[i] = performance.now() - started;
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  single.sort();

  const expressionMicros: Record<string, number> = {};
  const bindings = { n: 89 };
  for (const step of BENCH_STACK) {
    const expression = jsonata(step.value);
    for (let i = 0; i < 2000; i++) await expression.evaluate(input, bindings);
    const n = Math.max(1000, Math.floor(runs / 2));
    const started = performance.now();
    for (let i = 0; i < n; i++) await expression.evaluate(input, bindings);
    expressionMicros[step.value] = round2(((performance.now() - started) * 1000) / n);
  }

  return {
    runs,
    microsPerEvent: round2((wallMs * 1000) / runs),
    cpuMicrosPerEvent: round2((cpu.user + cpu.system) / runs),
    p50Micros: round2(single[Math.floor(runs * 0.5)]! * 1000),
    p99Micros: round2(single[Math.floor(runs * 0.99)]! * 1000),
    expressionMicros,
    outcome: check.outcome,
  };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("trigger-cost.ts");
if (isMain) {
  const runsArg = process.argv.find((arg) => arg.startsWith("--n="));
  const runs = runsArg ? Number(runsArg.slice(4)) : 20_000;
  if (!Number.isInteger(runs) || runs < 100 || runs > 1_000_000) throw new Error("--n must be a whole number from 100 to 1,000,000");
  const result = await measureTriggerCost(runs);
  if (process.argv.includes("--json")) console.log(JSON.stringify(result));
  else {
    console.log(
      `3-step stack, ${result.runs} runs: ${result.microsPerEvent} µs per event (CPU ${result.cpuMicrosPerEvent} µs; p50 ${result.p50Micros}, p99 ${result.p99Micros} µs)`,
    );
    for (const [source, micros] of Object.entries(result.expressionMicros)) console.log(`  ${source}: ${micros} µs alone`);
  }
}
