import type { CodegenConfig } from "@graphql-codegen/cli";

/**
 * `npm run codegen` (run under tsx so the TypeScript schema module loads) prints the schema (sorted) to the committed `schema.graphql`, which frontends
 * generate their types from. A test fails when the committed file is stale.
 */
const config: CodegenConfig = {
  schema: "./src/schema/index.ts",
  generates: {
    "schema.graphql": { plugins: ["schema-ast"], config: { includeDirectives: false, sort: true } },
  },
};

export default config;
