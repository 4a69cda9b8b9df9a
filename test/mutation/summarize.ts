/**
 * Turns StrykerJS's JSON report (test/mutation/report.json, not committed: it holds every mutant)
 * into test/mutation/report.md: the mutation score of each file against the goal, and every mutant
 * no test killed, with where it lives. `npm run test:mutation` runs it after Stryker; with
 * `--check` it exits 1 when a file is under the goal.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

/** The mutation score each file of the core must reach. */
const GOAL = 85;

interface Mutant {
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly location: { readonly start: { readonly line: number; readonly column: number } };
}
interface Report {
  readonly files: Record<string, { readonly source: string; readonly mutants: readonly Mutant[] }>;
}

const { values: args } = parseArgs({
  options: {
    input: { type: "string", default: "test/mutation/report.json" },
    output: { type: "string", default: "test/mutation/report.md" },
    check: { type: "boolean", default: false },
  },
});

const report = JSON.parse(readFileSync(args.input, "utf8")) as Report;
const KILLED = new Set(["Killed", "Timeout"]);
const UNKILLED = new Set(["Survived", "NoCoverage"]);
const rows: string[] = [];
const survivors: string[] = [];
const below: string[] = [];
for (const [file, { source, mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
  const killed = mutants.filter((mutant) => KILLED.has(mutant.status)).length;
  const unkilled = mutants.filter((mutant) => UNKILLED.has(mutant.status));
  const valid = killed + unkilled.length;
  const score = valid === 0 ? 100 : (100 * killed) / valid;
  if (score < GOAL) below.push(file);
  const survived = unkilled.filter((mutant) => mutant.status === "Survived").length;
  rows.push(
    `| ${file} | ${score.toFixed(1)}% | ${killed} | ${survived} | ${unkilled.length - survived} | ${score >= GOAL ? "yes" : "no"} |`,
  );
  const lines = source.split("\n");
  for (const mutant of unkilled.sort((a, b) => a.location.start.line - b.location.start.line)) {
    const { line } = mutant.location.start;
    const code = (lines[line - 1] ?? "").trim().slice(0, 100);
    const change = mutant.replacement === undefined ? "" : ` → \`${mutant.replacement.replace(/\s+/g, " ").slice(0, 60)}\``;
    survivors.push(
      `- ${file}:${line} ${mutant.mutatorName}${change} (${mutant.status === "NoCoverage" ? "no test reaches it" : "survived"}): \`${code}\``,
    );
  }
}

const text = [
  "# Mutation testing of the core",
  "",
  `Made by \`npm run test:mutation\` (StrykerJS over the fast in-process suites, vitest.mutation.config.ts). Goal: ${GOAL}% on each file.`,
  "",
  "| file | score | killed | survived | not reached | goal met |",
  "| --- | ---: | ---: | ---: | ---: | --- |",
  ...rows,
  "",
  "## Mutants no test kills",
  "",
  ...(survivors.length > 0 ? survivors : ["None."]),
  "",
].join("\n");
writeFileSync(args.output, text);
console.log(
  `${args.output}: ${rows.length} files, ${survivors.length} mutants not killed${below.length > 0 ? `; under ${GOAL}%: ${below.join(", ")}` : ""}`,
);
if (args.check && below.length > 0) process.exitCode = 1;
