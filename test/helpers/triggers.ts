import fc from "fast-check";
import { httpGraphQL } from "./graphql.js";
import { ADMIN_TOKEN } from "./server.js";

export const TRIGGER_FIELDS = `id name description active tags actions channel order onError stack createdAt updatedAt`;

let created = 0;

/**
 * Creates a trigger as the admin and returns it; throws with the GraphQL errors on failure. Without
 * a `name`, it gets one of its own ("test trigger 1", ...): names are unique.
 */
export async function createTrigger(httpUrl: string, input: Record<string, unknown>): Promise<Record<string, any>> {
  const { body } = await httpGraphQL(
    httpUrl,
    `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { ${TRIGGER_FIELDS} } }`,
    { input: { name: `test trigger ${++created}`, actions: ["MESSAGE"], ...input } },
    { token: ADMIN_TOKEN },
  );
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.createTrigger;
}

/** Runs an admin operation over HTTP and returns the response body. */
export async function admin(httpUrl: string, query: string, variables: Record<string, unknown> = {}) {
  return (await httpGraphQL(httpUrl, query, variables, { token: ADMIN_TOKEN })).body;
}

/** Expressions that compile, and ones that do not (syntax, `$eval`, empty). */
const someExpression = fc.constantFrom("payload.text", "$uppercase(payload.text)", "(((", "'a' &", "$eval('1')", "client.id", "");

/** Stack steps, valid and not (bad paths, names and codes, unknown kinds), for checking that every door validates a stack alike. */
export const stackStep = fc.oneof(
  fc.record({ set: fc.constantFrom("payload.text", "commandOptions.x", "__proto__.x", "other.x"), value: someExpression }),
  fc.record({ log: someExpression }),
  fc.record({ var: fc.constantFrom("v", "1bad"), value: someExpression }),
  fc.record({ if: someExpression, then: fc.constant([{ drop: true }]) }),
  fc.record({ reject: someExpression, code: fc.constantFrom("NOPE", "bad code") }),
  fc.record({ drop: fc.boolean() }),
  fc.record({ unknown: someExpression }),
);
