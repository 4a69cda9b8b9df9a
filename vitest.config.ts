import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";
import { POSTGRES_BASE_URL, POSTGRES_REQUIRED, postgresReachable } from "./test/helpers/postgres.js";

const require = createRequire(import.meta.url);

/** The end-to-end suites that exercise the database; they run on SQLite and again on PostgreSQL. */
const DATABASE_SUITES = [
  "test/messaging.test.ts",
  "test/triggers.e2e.test.ts",
  "test/channels.e2e.test.ts",
  "test/trigger-authoring.e2e.test.ts",
  "test/config-apply.e2e.test.ts",
  "test/trigger-state.e2e.test.ts",
  "test/triggers/after.e2e.test.ts",
  "test/triggers/after-fairness.e2e.test.ts",
  "test/triggers/after-attempts.e2e.test.ts",
];

// Without PostgreSQL (and unless CI requires it), the postgres project is left out, by name.
const postgres = POSTGRES_REQUIRED || (await postgresReachable());
if (!postgres)
  console.warn(`skipped: the postgres project (${DATABASE_SUITES.join(", ")}): PostgreSQL unreachable at ${POSTGRES_BASE_URL}`);

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for Yoga and Pothos; make the sources under test load the
    // same one instead of the ESM build Vite prefers, so there is a single GraphQLError class.
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file starts its own servers on free ports; two workers suit a 2-core machine.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: "sqlite", include: ["test/**/*.test.ts"] } },
      // The client package's own suites (packages/client/test), against a real server.
      { extends: true, test: { name: "client", include: ["packages/client/test/**/*.test.ts"] } },
      ...(postgres
        ? [{ extends: true as const, test: { name: "postgres", include: DATABASE_SUITES, env: { TEST_SERVER_DATABASE: "postgres" } } }]
        : []),
    ],
  },
});
