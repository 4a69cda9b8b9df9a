import type { CodegenConfig } from "@graphql-codegen/cli";

/**
 * `npm run codegen` (run under tsx so the TypeScript schema module loads) writes two committed outputs
 * from the schema the server serves:
 *
 * - `schema.graphql`: the schema printed, sorted, for frontends and reviewers;
 * - `web/generated/`: typed documents (client preset) for every `graphql(...)` call under `web/`,
 *   which the demo page and the admin console use;
 * - `packages/client/src/generated/`: the client package's own typed documents, from the
 *   `graphql(...)` calls in its sources only, so the package builds from its own folder and ships
 *   nothing of the pages' operations.
 *
 * `CODEGEN_OUT_DIR` writes them under another folder instead; `test/schema.test.ts` runs codegen into
 * a temporary one and fails when a committed file differs from the fresh one (run `npm run codegen`).
 */
const out = (process.env.CODEGEN_OUT_DIR ?? ".").replace(/\/*$/, "/");

/** The client preset as every frontend here uses it. */
const clientPreset = {
  preset: "client",
  presetConfig: { fragmentMasking: false },
  config: {
    // Plain strings (`TypedDocumentString`), so browser bundles need no GraphQL parser or printer.
    documentMode: "string",
    enumType: "string-literal",
    useTypeImports: true,
    importExtension: ".js",
    scalars: { ID: "string", JSON: "unknown", DateTime: "string" },
  },
} as const;

const config: CodegenConfig = {
  schema: "./src/schema/index.ts",
  generates: {
    [`${out}schema.graphql`]: { plugins: ["schema-ast"], config: { includeDirectives: false, sort: true } },
    [`${out}web/generated/`]: { documents: ["web/**/*.ts", "!web/generated/**"], ...clientPreset },
    [`${out}packages/client/src/generated/`]: {
      documents: ["packages/client/src/**/*.ts", "!packages/client/src/generated/**"],
      ...clientPreset,
    },
  },
  ignoreNoDocuments: false,
};

export default config;
