import { httpGraphQL } from "./graphql.js";
import { ADMIN_TOKEN } from "./server.js";

export const TRIGGER_FIELDS = `id name description active tags actions channel order onError stack createdAt updatedAt`;

/** Creates a trigger as the admin and returns it; throws with the GraphQL errors on failure. */
export async function createTrigger(httpUrl: string, input: Record<string, unknown>): Promise<Record<string, any>> {
  const { body } = await httpGraphQL(
    httpUrl,
    `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { ${TRIGGER_FIELDS} } }`,
    { input: { name: "test trigger", actions: ["MESSAGE"], ...input } },
    { token: ADMIN_TOKEN },
  );
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.createTrigger;
}

/** Runs an admin operation over HTTP and returns the response body. */
export async function admin(httpUrl: string, query: string, variables: Record<string, unknown> = {}) {
  return (await httpGraphQL(httpUrl, query, variables, { token: ADMIN_TOKEN })).body;
}
