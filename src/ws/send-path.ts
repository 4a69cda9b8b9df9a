import { normalizedExecutor } from "@graphql-tools/executor";
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLError,
  type GraphQLField,
  type GraphQLLeafType,
  GraphQLObjectType,
  type GraphQLSchema,
  getArgumentValues,
  getNamedType,
  getVariableValues,
  isLeafType,
  isListType,
  isNonNullType,
  Kind,
  locatedError,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Metrics } from "../observability/metrics.js";
import type { ChannelService } from "../realtime/channels.js";
import type { Session } from "../realtime/types.js";
import type { MaskError } from "./channel-delivery.js";

/** The mutation field a {@link SendPath} serves. */
const SEND_FIELD = "sendMessage";

/** Message masked errors carry, as elsewhere in the server. */
const MASKED_MESSAGE = "Unexpected error.";

/** How many distinct `sendMessage` document texts are remembered (the oldest is forgotten first). */
export const MAX_REMEMBERED_SEND_DOCUMENTS = 256;

/**
 * The fields of `sendMessage`'s result whose resolvers read the property of the same name
 * (src/schema/channels.ts): a selection of only these is rendered without the executor. A field
 * added to these types is not listed until its resolver is known to be such a read.
 */
const PROPERTY_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  SendMessageResult: new Set(["delivered", "event"]),
  ChannelEvent: new Set(["id", "action", "command", "channel", "payload", "commandOptions", "client", "createdAt", "seq"]),
  RealtimeClient: new Set(["id", "authenticated", "extras"]),
};

/** Turns a resolved value into the JSON of a selection; throws where the executor would report an error. */
type Render = (value: unknown) => unknown;

/** A `sendMessage` document Yoga parsed and validated once, kept for its exact text. */
export interface KnownSend {
  readonly document: DocumentNode;
  readonly schema: GraphQLSchema;
  readonly operation: OperationDefinitionNode;
  /** The `sendMessage` field at the operation's root. */
  readonly field: FieldNode;
  readonly fieldDefinition: GraphQLField<unknown, unknown>;
  /** Renders the field's selection, or null when only the executor can (fragments, directives, other fields). */
  readonly render: Render | null;
}

/**
 * Runs plain `sendMessage` mutations sent over a WebSocket without Yoga's per-operation work
 * (envelop, parse and validation caches, context building, the executor): the operation a chat
 * client sends for every message.
 *
 * A document is served here only after it went the generic way once, through Yoga's parser and
 * every validation rule (GraphQL Armor's limits included), and was accepted; what Yoga decided
 * depends only on the text, so the same text is then recognised with one map lookup. A document
 * qualifies when it holds one operation, a mutation whose root selects only `sendMessage`, without
 * directives at the root. Its arguments are read as the executor reads them and the channel core
 * is called as the resolver calls it, so the same gate applies (token expiry, the channel's rules,
 * membership, rates, payload limits); a refusal becomes the same located, masked error. The result
 * is rendered by a function compiled once per document from its selection, when the selection
 * reads only plain properties with no fragments or directives; otherwise, and whenever the
 * variables do not coerce, the executor Yoga itself runs (`normalizedExecutor`) does the work, so
 * every answer is the one the generic path gives. Operations are counted in the metrics as Yoga's
 * plugin counts them.
 */
export class SendPath {
  private readonly known = new Map<string, KnownSend>();

  constructor(
    private readonly channels: ChannelService,
    private readonly maskError: MaskError,
    private readonly metrics: Metrics,
  ) {}

  /** The known `sendMessage` document for `query`, when it is one and runs as `operationName`. */
  recall(query: string, operationName: string | null | undefined): KnownSend | null {
    const known = this.known.get(query);
    if (!known) return null;
    // Another operation name is an error the executor words itself: the generic path answers it.
    if (operationName != null && operationName !== (known.operation.name?.value ?? null)) return null;
    return known;
  }

  /**
   * Remembers a document Yoga has parsed and validated without errors, when it qualifies; returns
   * it then (the operation may run here), or null.
   */
  learn(query: string, document: DocumentNode, schema: GraphQLSchema, operationName: string | null | undefined): KnownSend | null {
    const operation = plainSendOperation(document);
    if (!operation) return null;
    if (operationName != null && operationName !== (operation.name?.value ?? null)) return null;
    const field = operation.selectionSet.selections[0] as FieldNode;
    const fieldDefinition = schema.getMutationType()?.getFields()[SEND_FIELD];
    if (!fieldDefinition) return null;
    const known: KnownSend = { document, schema, operation, field, fieldDefinition, render: compileRender(fieldDefinition.type, field) };
    if (!this.known.has(query)) {
      if (this.known.size >= MAX_REMEMBERED_SEND_DOCUMENTS) this.known.delete(this.known.keys().next().value as string);
      this.known.set(query, known);
    }
    return known;
  }

  /** Runs a recognised mutation for `session`; errors are masked and the operation counted, as on the generic path. */
  async execute(args: ExecutionArgs, known: KnownSend, session: Session): Promise<ExecutionResult> {
    const result = await this.run(args, known, session);
    const errors = result.errors?.map((error) => this.maskError(error, MASKED_MESSAGE) as GraphQLError);
    this.metrics.operation(args.document, args.operationName, errors ? "error" : "ok", "ws", errors);
    return errors ? { ...result, errors } : result;
  }

  private async run(args: ExecutionArgs, known: KnownSend, session: Session): Promise<ExecutionResult> {
    const { render, field } = known;
    if (!render) return (await normalizedExecutor(args)) as ExecutionResult;
    const variables = getVariableValues(args.schema, known.operation.variableDefinitions ?? [], args.variableValues ?? {});
    if (variables.errors) return (await normalizedExecutor(args)) as ExecutionResult;
    let channel: string;
    let payload: unknown;
    let options: unknown;
    try {
      ({ channel, payload, options } = getArgumentValues(known.fieldDefinition, field, variables.coerced) as {
        channel: string;
        payload: unknown;
        options?: unknown;
      });
    } catch {
      return (await normalizedExecutor(args)) as ExecutionResult;
    }
    const responseKey = field.alias?.value ?? field.name.value;
    let sent: unknown;
    try {
      sent = await this.channels.sendMessage(session, channel, payload, options);
    } catch (error) {
      // `sendMessage` is non-null: its error nulls the whole result, as the executor does.
      return { errors: [locatedError(error, [field], [responseKey])], data: null };
    }
    return { data: { [responseKey]: render(sent) } };
  }
}

/**
 * The mutation of a document holding only a mutation whose root selects only `sendMessage`,
 * without directives; null for any other document.
 */
function plainSendOperation(document: DocumentNode): OperationDefinitionNode | null {
  if (document.definitions.length !== 1) return null;
  const [operation] = document.definitions;
  if (operation?.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "mutation" || operation.directives?.length) return null;
  const selections = operation.selectionSet.selections;
  if (selections.length !== 1) return null;
  const [field] = selections;
  if (field?.kind !== Kind.FIELD || field.name.value !== SEND_FIELD || field.directives?.length) return null;
  return operation;
}

/**
 * Compiles the rendering of `field`'s value of type `type`: leaves are serialized by their
 * scalar or enum type as the executor serializes them, objects by their selection. Null when the
 * selection holds anything but plain fields of {@link PROPERTY_FIELDS} (fragments, directives,
 * arguments, lists, repeated response keys).
 */
function compileRender(type: GraphQLField<unknown, unknown>["type"], field: FieldNode): Render | null {
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
