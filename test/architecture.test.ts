import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

// The layering docs/architecture.md describes, read from the sources' import statements (type
// imports included): a change that breaks it fails here rather than in review.

const SRC = resolve(import.meta.dirname, "../src");

/** Every source file under src/ but the generated Prisma clients, relative to src/. */
function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(path);
    return entry.name.endsWith(".ts") ? [relative(SRC, path)] : [];
  });
}

/** What a file imports: package names as written, files in src/ as paths relative to src/. */
function importsOf(file: string): { packages: string[]; files: string[] } {
  const text = readFileSync(join(SRC, file), "utf8");
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/g)].map(
    (match) => match[1] ?? match[2]!,
  );
  const packages = specifiers.filter((specifier) => !specifier.startsWith("."));
  const files = specifiers
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => relative(SRC, resolve(SRC, dirname(file), specifier)).replace(/\.js$/, ".ts"));
  return { packages, files };
}

/** The import cycles among `files`, each as the list of files around it (one per cycle found by the walk). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

const files = sourceFiles();
const graph = new Map(files.map((file) => [file, importsOf(file).files]));

describe("the layout of src/", () => {
  it("finds the sources and their imports (the checks below see the real code)", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(graph.get("realtime/publisher.ts")).toContain("realtime/sequence.ts");
    expect(importsOf("schema/builder.ts").packages).toContain("@pothos/core");
  });

  it("has no import cycle", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("finds a cycle when there is one", () => {
    const looped = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]],
    ]);
    expect(cycles(looped)).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
  });

  it("keeps the realtime core and the trigger engine free of GraphQL and of the layers above them", () => {
    const core = files.filter((file) => file.startsWith("realtime/") || file.startsWith("triggers/"));
    const above = /^(schema|http|ws|management|cli)\/|^(server|services|main)\.ts$/;
    const graphqlPackages = /^(graphql|graphql-yoga|graphql-ws|@pothos\/|@graphql-|@escape\.tech\/graphql-armor)/;
    const breaches = core.flatMap((file) => {
      const { packages, files: imported } = importsOf(file);
      return [
        ...packages.filter((name) => graphqlPackages.test(name)).map((name) => `${file} imports ${name}`),
        ...imported.filter((target) => above.test(target)).map((target) => `${file} imports ${target}`),
      ];
    });
    expect(breaches).toEqual([]);
  });

  it("keeps the realtime core below the triggers: it never imports them", () => {
    const breaches = files
      .filter((file) => file.startsWith("realtime/"))
      .flatMap((file) =>
        importsOf(file)
          .files.filter((target) => target.startsWith("triggers/"))
          .map((target) => `${file} → ${target}`),
      );
    expect(breaches).toEqual([]);
  });

  it("keeps the trigger folders in their order: each imports only folders listed before it", () => {
    // guard/ bounds a run; state/ and webhook/ are what steps reach; compile/ builds steps from them;
    // store/ keeps compiled triggers; run/ runs them; after/ queues AFTER runs; the files directly
    // in triggers/ (settings, the AFTER thread) put the parts together.
    const ORDER = [["guard"], ["state", "webhook"], ["compile"], ["store"], ["run"], ["after"]];
    const rank = (file: string): number => {
      const parts = file.split("/");
      return parts.length === 2 ? ORDER.length : ORDER.findIndex((group) => group.includes(parts[1]!));
    };
    const folderOf = (file: string) => file.split("/").slice(0, -1).join("/");
    const triggers = files.filter((file) => file.startsWith("triggers/"));
    expect(triggers.filter((file) => rank(file) < 0)).toEqual([]); // a new folder takes its place in ORDER
    const breaches = triggers.flatMap((file) =>
      importsOf(file)
        .files.filter((target) => target.startsWith("triggers/") && folderOf(target) !== folderOf(file) && rank(target) >= rank(file))
        .map((target) => `${file} → ${target}`),
    );
    expect(breaches).toEqual([]);
  });
});
