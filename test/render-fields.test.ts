import { type GraphQLObjectType, type GraphQLResolveInfo, isObjectType } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../src/schema/index.js";
import { PROPERTY_FIELDS } from "../src/ws/render.js";

// The compiled rendering of the WebSocket fast paths reads each field on PROPERTY_FIELDS as the
// property of the same name. A resolver that computes anything else would make the two paths differ:
// this holds the list to the schema, so a field that gains such a resolver fails here.
describe("fields the compiled rendering reads as properties", () => {
  for (const [typeName, fieldNames] of Object.entries(PROPERTY_FIELDS)) {
    it(`${typeName}: each listed field resolves to the property of its name`, () => {
      const type = schema.getType(typeName);
      expect(type && isObjectType(type)).toBe(true);
      const fields = (type as GraphQLObjectType).getFields();
      for (const name of fieldNames) {
        const field = fields[name];
        expect(field, `${typeName}.${name} is in the schema`).toBeDefined();
        if (!field!.resolve) continue; // graphql-js's default resolver reads the property
        const marker = { marker: `${typeName}.${name}` };
        const parent = { [name]: marker };
        const resolved = field!.resolve(parent, {}, {}, { fieldName: name } as GraphQLResolveInfo);
        expect(resolved, `${typeName}.${name} reads parent.${name}`).toBe(marker);
      }
    });
  }
});
