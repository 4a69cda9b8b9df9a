// @ts-check
/**
 * Mutation testing of the realtime core and the trigger engine: `npm run test:mutation`.
 * Each mutant is run against the fast in-process suites (vitest.mutation.config.ts); a mutant no test
 * kills shows behaviour nothing guards. A mutant judged equivalent is marked where it lives with
 * `// Stryker disable next-line <mutator>: <reason>`, never excluded here.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "src/realtime/channels.ts",
    "src/realtime/gate.ts",
    "src/realtime/fanout.ts",
    "src/realtime/membership.ts",
    "src/realtime/sequence.ts",
    "src/realtime/bus.ts",
    "src/triggers/run/engine.ts",
    "src/triggers/compile/stack.ts",
    "src/triggers/guard/guard.ts",
    "src/triggers/compile/fast-path.ts",
  ],
  coverageAnalysis: "perTest",
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ["progress", "clear-text", "json"],
  jsonReporter: { fileName: "test/mutation/report.json" },
  clearTextReporter: { allowColor: false, logTests: false },
  thresholds: { high: 85, low: 70, break: null },
  // Stryker rewrites the tsconfig's out-of-sandbox paths with TypeScript's JavaScript API, which
  // TypeScript 7 no longer has; ours has none to rewrite, so it is pointed at no file.
  tsconfigFile: "no-tsconfig-to-rewrite.json",
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
