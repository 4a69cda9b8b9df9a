import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

/**
 * The fast in-process suites of the realtime core and the trigger engine: no server, no database,
 * no browser. `npm run test:mutation` runs them against every mutant of the core (stryker.config.mjs).
 */
const CORE_SUITES = [
  "test/realtime/channel-pattern.test.ts",
  "test/realtime/channel-service.test.ts",
  "test/realtime/channel-service.errors.test.ts",
  "test/realtime/channel-service.lifecycle.test.ts",
  "test/realtime/channel-service.rules.test.ts",
  "test/realtime/channel-service.model.test.ts",
  "test/realtime/fanout.test.ts",
  "test/realtime/membership.test.ts",
  "test/realtime/rate-limit.test.ts",
  "test/realtime/sequence.test.ts",
  "test/triggers/engine.test.ts",
  "test/triggers/engine-limits.test.ts",
  "test/triggers/fast-path.test.ts",
  "test/triggers/guard.test.ts",
  "test/triggers/guard.rules.test.ts",
  "test/triggers/slices.test.ts",
  "test/triggers/stack.test.ts",
  "test/triggers/stack.rules.test.ts",
  "test/triggers/values.test.ts",
];

export default defineConfig({
  resolve: { alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }] },
  test: { include: CORE_SUITES, testTimeout: 30_000 },
});
