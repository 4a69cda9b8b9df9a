/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per package,
 * optionally only inside a time window (CLOCK_MONOTONIC microseconds, the clock V8 stamps samples
 * with on Linux, and the one bench/load.ts reports step windows in).
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [--from=<µs>] [--to=<µs>] [--top=30] [--per=<units of work>]
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
  /** Self time grouped by what the code does (see {@link areaOf}). */
  readonly byArea: ProfileRow[];
  /** When a unit count was given: busy µs per unit (e.g. per sent message), and the unit's name. */
  readonly perUnit: { readonly count: number; readonly unit: string; readonly busyMicros: number } | null;
}

export interface SummaryOptions {
  /** Rows in the function and package tables. */
  readonly top?: number;
  /** How many units of work the window holds (e.g. messages sent), to give µs per unit. */
  readonly perUnit?: number;
  readonly unit?: string;
}

/** Native functions that write to sockets (self time counted as socket writes wherever called from). */
const SOCKET_WRITES = new Set(["writev", "writeBuffer", "writeUtf8String", "writeLatin1String", "writeAsciiString", "writeUcs2String"]);
const SOCKET_AREA = "socket writes (writev, node streams)";
const WS_AREA = "ws library (frames, masking, parsing)";
const NODE_AREA = "node internals (events, timers, promises, buffers)";

/**
 * What a function's code does, from its script and name: GraphQL's parser, validation or execution,
 * Yoga / envelop / Armor, graphql-ws, the project's own folders, Prisma (its query compiler is
 * the server's WebAssembly) and SQLite, JSONata, the
 * `ws` library, socket writes, garbage collection. Native and builtin frames without a script
 * (JSON, Map, …) return null: they are counted where they were called from.
 */
export function areaOf(url: string, name: string): string | null {
  if (name === "(garbage collector)") return "garbage collection";
  if (name === "(program)") return "V8 / native, not attributed (program)";
  if (SOCKET_WRITES.has(name)) return SOCKET_AREA;
  if (!url) return null;
  // The only WebAssembly in the server is Prisma's query compiler.
  if (url.startsWith("wasm://")) return "Prisma / SQLite";
  const pkg = packageOf(url, name);
  if (pkg === "graphql") {
    if (url.includes("/language/")) return "GraphQL parse (graphql-js language)";
    if (url.includes("/validation/")) return "GraphQL validate (graphql-js)";
    if (url.includes("/execution/")) return "GraphQL execute (graphql-js)";
    return "GraphQL other (graphql-js types, utilities)";
  }
  if (pkg === "@escape.tech/graphql-armor" || pkg.startsWith("@escape.tech/")) return "GraphQL Armor";
  if (
    pkg === "graphql-yoga" ||
    pkg.startsWith("@graphql-yoga/") ||
    pkg.startsWith("@envelop/") ||
    pkg.startsWith("@whatwg-node/") ||
    pkg.startsWith("@graphql-tools/")
  )
    return "Yoga / envelop / whatwg-node";
  if (pkg.startsWith("@pothos/")) return "Pothos";
  if (pkg === "graphql-ws") return "graphql-ws";
  if (pkg === "ws") return WS_AREA;
  if (pkg.startsWith("@prisma/") || pkg === "prisma" || pkg === "better-sqlite3") return "Prisma / SQLite";
  if (pkg === "jsonata") return "JSONata";
  if (pkg === "@repeaterjs/repeater") return "Repeater (async iterators)";
  if (pkg === "lru-cache") return "Yoga / envelop / whatwg-node";
  if (pkg === "pino" || pkg.startsWith("pino-")) return "logging (pino)";
  if (pkg === "src/realtime") return "channel core (src/realtime)";
  if (pkg === "src/triggers") return "trigger engine and run recording (src/triggers)";
  if (pkg === "src/ws") return "our WebSocket layer (src/ws)";
  if (pkg.startsWith("src/")) return "our GraphQL surface and plumbing (src/schema, src/http, …)";
  if (pkg === "node (internal)") {
    if (/internal\/(streams|stream_base_commons)|node:net\b/.test(url)) return SOCKET_AREA;
    return NODE_AREA;
  }
  return "other";
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

/** Self time per function, package and area over `window` (all of the profile by default). */
export function summarizeProfile(
  profile: CpuProfile,
  window: { from?: number; to?: number } = {},
  options: SummaryOptions = {},
): ProfileSummary {
  const top = options.top ?? 30;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  /** A frame's area, or its nearest caller's for native and builtin frames. */
  const areaAt = (id: number): { area: string; node: number } => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const area = areaOf(frame.url, frame.functionName);
      if (area) return { area, node: at };
    }
    return { area: "V8 builtins and native, no caller", node: id };
  };
  /** Socket writes and the `ws` library also name the file that wrote (none: a drained buffer, later). */
  const areaOfNode = (id: number): string => {
    const { area, node } = areaAt(id);
    if (area !== SOCKET_AREA && area !== WS_AREA) return area;
    for (let at: number | undefined = node; at !== undefined; at = parentOf.get(at)) {
      const url = byId.get(at)!.callFrame.url;
      if (url && !url.startsWith("node:") && packageOf(url, "") !== "ws") return `${area}, from ${shortUrl(url)}`;
    }
    return `${area}, from a callback (a buffered write)`;
  };
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
  const areas = new Map<string, number>();
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
    const area = areaOfNode(id);
    areas.set(area, (areas.get(area) ?? 0) + us);
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
    byArea: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => row(area, "", us)),
    perUnit: options.perUnit
      ? { count: options.perUnit, unit: options.unit ?? "unit", busyMicros: Math.round(busyUs / options.perUnit) }
      : null,
  };
}

/** The summary as markdown tables: areas (with µs per unit when known), functions, packages. */
export function profileMarkdown(summary: ProfileSummary, title: string): string {
  const per = summary.perUnit;
  const perUnitCell = (selfMs: number) => (per ? ` ${Math.round((selfMs * 1000) / per.count)} |` : "");
  const lines = [
    `### ${title}`,
    "",
    `Window ${summary.windowMs} ms, sampled ${summary.sampledMs} ms, busy (not idle) ${summary.busyMs} ms${per ? ` for ${per.count} ${per.unit}s: ${per.busyMicros} µs busy per ${per.unit}` : ""}. Percentages are of busy time. Areas count native and builtin frames (JSON, Map, …) where they were called from; the function and package tables count them apart.`,
    "",
    `| self ms | % busy |${per ? ` µs per ${per.unit} |` : ""} area |`,
    `| ---: | ---: |${per ? " ---: |" : ""} --- |`,
    ...summary.byArea.map((r) => `| ${r.selfMs} | ${r.percent} |${perUnitCell(r.selfMs)} ${r.name} |`),
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
  if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [--from=µs] [--to=µs] [--top=N] [--per=N]");
  const option = (name: string) => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
    return arg ? Number(arg.slice(name.length + 3)) : undefined;
  };
  const window: { from?: number; to?: number } = {};
  const from = option("from");
  const to = option("to");
  if (from !== undefined) window.from = from;
  if (to !== undefined) window.to = to;
  const perUnit = option("per");
  console.log(
    profileMarkdown(summarizeProfile(readProfile(file), window, { top: option("top") ?? 30, ...(perUnit ? { perUnit } : {}) }), file),
  );
}
