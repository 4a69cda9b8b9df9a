import { normalizedExecutor } from "@graphql-tools/executor";
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLError,
  type GraphQLField,
  type GraphQLSchema,
  getArgumentValues,
  getVariableValues,
  Kind,
  locatedError,
  type OperationDefinitionNode,
} from "graphql";
import type { Metrics } from "../observability/metrics.js";
import type { ChannelService } from "../realtime/channels.js";
import type { Session } from "../realtime/types.js";
import type { MaskError } from "./channel-delivery.js";
import { compileRender, type Render } from "./render.js";

/** The mutation field a {@link SendPath} serves. */
const SEND_FIELD = "sendMessage";

/** Message masked errors carry, as elsewhere in the server. */
const MASKED_MESSAGE = "Unexpected error.";

/** How many distinct `sendMessage` document texts are remembered (the oldest is forgotten first). */
export const MAX_REMEMBERED_SEND_DOCUMENTS = 256;

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
