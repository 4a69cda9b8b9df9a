/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per package,
 * optionally only inside a time window (CLOCK_MONOTONIC microseconds, the clock V8 stamps samples
 * with on Linux, and the one bench/load.ts reports step windows in).
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [--from=<µs>] [--to=<µs>] [--top=30]
 */
import { readFileSync } from "node:fs";

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly percent: number;
}

export interface ProfileSummary {
  readonly windowMs: number;
  readonly sampledMs: number;
  /** Sampled time that was not idle. */
  readonly busyMs: number;
  readonly topFunctions: ProfileRow[];
  readonly byPackage: ProfileRow[];
}

/** `node_modules/<pkg>` (scoped too), `node:internal`, or the project's own folder. */
function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith("(") ? name : "(native)";
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith("node:")) return "node (internal)";
  const src = url.indexOf("/src/");
  if (src >= 0) return `src/${url.slice(src + 5).split("/")[0]}`;
  return url.replace(/^file:\/\//, "");
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const src = url.indexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, "");
}

export function summarizeProfile(profile: CpuProfile, window: { from?: number; to?: number } = {}, top = 30): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let time = profile.startTime;
  let sampledUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if ((window.from !== undefined && time < window.from) || (window.to !== undefined && time > window.to)) continue;
    // A sample's weight is the interval up to the next one (the usual attribution).
    const weight = profile.timeDeltas[i + 1] ?? delta;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + weight);
    sampledUs += weight;
  }
  const functions = new Map<string, { name: string; where: string; us: number }>();
  const packages = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idleUs += us;
      continue;
    }
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : "";
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
    const pkg = packageOf(frame.url, name);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const busyUs = sampledUs - idleUs;
  const row = (name: string, where: string, us: number): ProfileRow => ({
    name,
    where,
    selfMs: Math.round(us / 100) / 10,
    percent: Math.round((us / Math.max(1, busyUs)) * 1000) / 10,
  });
  return {
    windowMs: Math.round(((window.to ?? profile.endTime) - (window.from ?? profile.startTime)) / 1000),
    sampledMs: Math.round(sampledUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topFunctions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((entry) => row(entry.name, entry.where, entry.us)),
    byPackage: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([pkg, us]) => row(pkg, "", us)),
  };
}

export function profileMarkdown(summary: ProfileSummary, title: string): string {
  const lines = [
    `### ${title}`,
    "",
    `Window ${summary.windowMs} ms, sampled ${summary.sampledMs} ms, busy (not idle) ${summary.busyMs} ms. Percentages are of busy time.`,
    "",
    "| self ms | % busy | function | where |",
    "| ---: | ---: | --- | --- |",
    ...summary.topFunctions.map((r) => `| ${r.selfMs} | ${r.percent} | \`${r.name}\` | ${r.where} |`),
    "",
    "| self ms | % busy | package / area |",
    "| ---: | ---: | --- |",
    ...summary.byPackage.map((r) => `| ${r.selfMs} | ${r.percent} | ${r.name} |`),
    "",
  ];
  return lines.join("\n");
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

if (process.argv[1]?.endsWith("profile-summary.ts")) {
  const [file] = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
  if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [--from=µs] [--to=µs] [--top=N]");
  const option = (name: string) => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
    return arg ? Number(arg.slice(name.length + 3)) : undefined;
  };
  const window: { from?: number; to?: number } = {};
  const from = option("from");
  const to = option("to");
  if (from !== undefined) window.from = from;
  if (to !== undefined) window.to = to;
  console.log(profileMarkdown(summarizeProfile(readProfile(file), window, option("top") ?? 30), file));
}
