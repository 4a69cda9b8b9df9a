import {
  type FieldNode,
  type GraphQLField,
  type GraphQLLeafType,
  GraphQLObjectType,
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  Kind,
  type SelectionSetNode,
} from "graphql";

/**
 * The fields of channel events and of `sendMessage`'s result whose resolvers read the property of
 * the same name (src/schema/channels.ts): a selection of only these is rendered without the
 * executor. A field added to these types is not listed until its resolver is known to be such a read.
 */
export const PROPERTY_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  SendMessageResult: new Set(["delivered", "event"]),
  ChannelEvent: new Set(["id", "action", "command", "channel", "payload", "commandOptions", "client", "createdAt", "seq"]),
  RealtimeClient: new Set(["id", "authenticated", "extras"]),
};

/** Turns a resolved value into the JSON of a selection; throws where the executor would report an error. */
export type Render = (value: unknown) => unknown;

/**
 * Compiles the rendering of `field`'s value of type `type`: leaves are serialized by their
 * scalar or enum type as the executor serializes them, objects by their selection. Null when the
 * selection holds anything but plain fields of {@link PROPERTY_FIELDS} (fragments, directives,
 * arguments, lists, repeated response keys).
 */
export function compileRender(type: GraphQLField<unknown, unknown>["type"], field: FieldNode): Render | null {
  const nonNull = isNonNullType(type);
  const inner = nonNull ? type.ofType : type;
  if (isListType(inner)) return null;
  const named = getNamedType(inner);
  let renderValue: Render;
  if (isLeafType(named)) {
    if (field.selectionSet) return null;
    const leaf: GraphQLLeafType = named;
    renderValue = (value) => {
      const serialized = leaf.serialize(value);
      if (serialized === undefined) throw new Error(`Expected \`${leaf.name}.serialize(${String(value)})\` to return non-nullable value`);
      return serialized;
    };
  } else if (named instanceof GraphQLObjectType && field.selectionSet) {
    const renderObject = compileSelection(named, field.selectionSet);
    if (!renderObject) return null;
    renderValue = renderObject;
  } else {
    return null;
  }
  return (value) => {
    if (value === null || value === undefined) {
      if (nonNull) throw new Error(`Cannot return null for non-nullable field ${field.name.value}.`);
      return null;
    }
    return renderValue(value);
  };
}

function compileSelection(type: GraphQLObjectType, selectionSet: SelectionSetNode): Render | null {
  const plain = PROPERTY_FIELDS[type.name];
  if (!plain) return null;
  const fields = type.getFields();
  const parts: { key: string; name: string; render: Render }[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || selection.directives?.length || selection.arguments?.length) return null;
    const name = selection.name.value;
    const key = selection.alias?.value ?? name;
    if (parts.some((part) => part.key === key)) return null;
    if (name === "__typename") {
      parts.push({ key, name, render: () => type.name });
      continue;
    }
    const definition = fields[name];
    if (!definition || !plain.has(name)) return null;
    const render = compileRender(definition.type, selection);
    if (!render) return null;
    parts.push({ key, name, render });
  }
  return (value) => {
    const source = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const { key, name, render } of parts) out[key] = render(source[name]);
    return out;
  };
}
