import SchemaBuilder from "@pothos/core";
import { GraphQLScalarType } from "graphql";
import { DateTimeResolver, JSONResolver } from "graphql-scalars";
import type { Session } from "../realtime/types.js";
import type { Services } from "../services.js";

/** What every resolver receives: who is calling and the server's services. */
export interface Context {
  readonly session: Session;
  readonly services: Services;
}

/** The Pothos schema builder; each file in this folder adds one domain to it. */
export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    JSON: { Input: unknown; Output: unknown };
    DateTime: { Input: Date; Output: Date | string };
  };
}>({ defaultFieldNullability: false });

builder.addScalarType("JSON", JSONResolver);
// Times leave the server as ISO 8601 strings already (events are plain JSON): pass them through
// instead of re-parsing each one per delivery; Dates are formatted; inputs are validated as usual.
builder.addScalarType(
  "DateTime",
  new GraphQLScalarType({
    ...DateTimeResolver.toConfig(),
    serialize: (value) => (typeof value === "string" ? value : DateTimeResolver.serialize(value)),
  }),
);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
