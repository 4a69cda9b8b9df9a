import { normalizedExecutor } from "@graphql-tools/executor";
import { type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLError, type GraphQLSchema, Kind } from "graphql";
import type { Metrics } from "../observability/metrics.js";
import type { MaskError } from "./channel-delivery.js";

/** The mutation field a {@link SendPath} serves. */
const SEND_FIELD = "sendMessage";

/** Message masked errors carry, as elsewhere in the server. */
const MASKED_MESSAGE = "Unexpected error.";

/** How many distinct `sendMessage` document texts are remembered (the oldest is forgotten first). */
export const MAX_REMEMBERED_SEND_DOCUMENTS = 256;

/** A `sendMessage` document Yoga parsed and validated once, kept for its exact text. */
interface KnownSend {
  readonly document: DocumentNode;
  readonly schema: GraphQLSchema;
  /** The operation's name, or null for an anonymous one. */
  readonly operationName: string | null;
}

/**
 * Runs plain `sendMessage` mutations sent over a WebSocket without Yoga's per-operation work
 * (envelop, parse and validation caches, context building): the operation a chat client sends for
 * every message.
 *
 * A document is served here only after it went the generic way once, through Yoga's parser and
 * every validation rule (GraphQL Armor's limits included), and was accepted; what Yoga decided
 * depends only on the text, so the same text is then recognised with one map lookup. The mutation
 * is executed by the executor Yoga itself runs (`normalizedExecutor`), with the same resolvers,
 * hence the same gate in the channel core (token expiry, the channel's rules, membership, rates,
 * payload limits), and its errors are masked and counted as Yoga's plugins do. A document qualifies when it holds one operation, a
 * mutation whose root selects only `sendMessage`, without directives at the root.
 */
export class SendPath {
  private readonly known = new Map<string, KnownSend>();

  constructor(
    private readonly maskError: MaskError,
    private readonly metrics: Metrics,
  ) {}

  /** The document and schema for `query` when it is a known `sendMessage` document run as `operationName`. */
  recall(query: string, operationName: string | null | undefined): KnownSend | null {
    const known = this.known.get(query);
    if (!known) return null;
    // Another operation name is an error the executor words itself: the generic path answers it.
    if (operationName != null && operationName !== known.operationName) return null;
    return known;
  }

  /**
   * Remembers a document Yoga has parsed and validated without errors, when it qualifies; returns
   * whether it does (the operation may then run here).
   */
  learn(query: string, document: DocumentNode, schema: GraphQLSchema, operationName: string | null | undefined): boolean {
    const name = plainSendOperationName(document);
    if (name === undefined) return false;
    if (operationName != null && operationName !== name) return false;
    if (!this.known.has(query)) {
      if (this.known.size >= MAX_REMEMBERED_SEND_DOCUMENTS) this.known.delete(this.known.keys().next().value as string);
      this.known.set(query, { document, schema, operationName: name });
    }
    return true;
  }

  /** Executes a recognised mutation; errors are masked and the operation counted, as Yoga's executor does. */
  async execute(args: ExecutionArgs): Promise<ExecutionResult> {
    const result = (await normalizedExecutor(args)) as ExecutionResult;
    const errors = result.errors?.map((error) => this.maskError(error, MASKED_MESSAGE) as GraphQLError);
    this.metrics.operation(args.document, args.operationName, errors ? "error" : "ok", "ws", errors);
    return errors ? { ...result, errors } : result;
  }
}

/**
 * The operation's name (null when anonymous) of a document holding only a mutation whose root
 * selects only `sendMessage`, without directives; undefined for any other document.
 */
function plainSendOperationName(document: DocumentNode): string | null | undefined {
  if (document.definitions.length !== 1) return undefined;
  const [operation] = document.definitions;
  if (operation?.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "mutation" || operation.directives?.length) return undefined;
  const selections = operation.selectionSet.selections;
  if (selections.length !== 1) return undefined;
  const [field] = selections;
  if (field?.kind !== Kind.FIELD || field.name.value !== SEND_FIELD || field.directives?.length) return undefined;
  return operation.name?.value ?? null;
}
