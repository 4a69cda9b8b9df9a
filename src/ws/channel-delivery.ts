import type { Socket } from "node:net";
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  type FieldNode,
  type GraphQLError,
  type GraphQLField,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  Kind,
  locatedError,
} from "graphql";
import type { WebSocket } from "ws";
import type { AppError } from "../errors.js";
import type { ChannelService, ChannelSubscription, SubscriptionSink } from "../realtime/channels.js";
import { emptyStream } from "../realtime/iterators.js";
import type { ChannelEvent, Session } from "../realtime/types.js";
import { compileRender, type Render } from "./render.js";
import { coalesceWrites } from "./transport.js";

/** Turns an error into what a client may see (the server's error masker). */
export type MaskError = (error: unknown, message: string) => Error;

/**
 * A plain channel subscription over a WebSocket: who it belongs to and the `channel` field
 * {@link ChannelDelivery.recognize} found, what {@link ChannelDelivery.subscribe} needs beyond the
 * execution arguments.
 */
export interface ChannelOperation {
  readonly socket: WebSocket;
  /** The graphql-transport-ws operation id. */
  readonly id: string;
  readonly session: Session;
  /** The `channel` field at the operation's root. */
  readonly field: FieldNode;
}

/** The field every channel event is executed under. */
const CHANNEL_FIELD = "channel";

/** Message masked errors carry, as elsewhere in the server. */
const MASKED_MESSAGE = "Unexpected error.";

/** Resolvers see this context when a channel event is rendered: nothing about any one subscriber. */
const VIEWER_NEUTRAL_CONTEXT = Object.freeze({});

/**
 * Subscribers of one channel subscription document with the same variables: they receive the same
 * result for every event, so it is rendered and serialized once per event for all of them. A
 * selection of plain fields is rendered by a function compiled once per document
 * ({@link compileRender}); any other is executed by graphql-js.
 */
class RenderGroup {
  subscribers = 0;
  /** The payloads of the events being delivered right now (a batch holds several), and their UTF-8. */
  private rendered: Map<ChannelEvent, { json: string; bytes?: Buffer }> | null = null;

  constructor(
    private readonly args: ExecutionArgs,
    /** Where the group is kept among its document's groups (see {@link groupKey}). */
    readonly key: string,
    private readonly maskError: MaskError,
    /** The `channel` field's response key and its compiled rendering, when the selection allows one. */
    private readonly compiled: { readonly key: string; readonly render: Render } | null,
  ) {}

  /** The document the group renders. */
  get document(): DocumentNode {
    return this.args.document;
  }

  /** The JSON of the `next` payload for an event, executed once however many subscribers ask. */
  payloadFor(event: ChannelEvent): string {
    return this.render(event).json;
  }

  /** {@link RenderGroup.payloadFor} as UTF-8, encoded once however many subscribers ask. */
  payloadBytesFor(event: ChannelEvent): Buffer {
    const rendered = this.render(event);
    rendered.bytes ??= Buffer.from(rendered.json);
    return rendered.bytes;
  }

  private render(event: ChannelEvent): { json: string; bytes?: Buffer } {
    const known = this.rendered?.get(event);
    if (known !== undefined) return known;
    const rendered = { json: JSON.stringify(this.resultFor(event)) };
    if (!this.rendered) {
      this.rendered = new Map();
      // Subscribers receive an event (or a batch) in one synchronous loop: hold the result only until it ends.
      queueMicrotask(() => (this.rendered = null));
    }
    this.rendered.set(event, rendered);
    return rendered;
  }

  private resultFor(event: ChannelEvent): ExecutionResult {
    if (this.compiled) {
      try {
        // The `channel` field resolves to the event itself.
        return { data: { [this.compiled.key]: this.compiled.render(event) } };
      } catch {
        // A value the selection cannot render: the executor words the error.
      }
    }
    const result = execute({ ...this.args, rootValue: event, contextValue: VIEWER_NEUTRAL_CONTEXT });
    if (result instanceof Promise) {
      // Every field under `channel` resolves synchronously; an asynchronous one would break ordering here.
      throw new Error("A field under the channel subscription resolved asynchronously");
    }
    return this.mask(result);
  }

  private mask(result: ExecutionResult): ExecutionResult {
    if (!result.errors) return result;
    return { ...result, errors: result.errors.map((error) => this.maskError(error, MASKED_MESSAGE) as GraphQLError) };
  }
}

/**
 * Delivers plain `channel` subscriptions over WebSocket without running GraphQL per subscriber.
 *
 * A generic GraphQL subscription executes its selection for every event and every subscriber and
 * serializes each result on its own. A channel event's result depends only on the event, the
 * document and its variables (no field under `channel` looks at who is asking), so subscribers that
 * share a document and variables share one {@link RenderGroup}: per event the selection is rendered
 * and serialized once, and each socket receives that JSON inside its own `next` frame, written
 * straight to the socket. Membership, limits, history replay and private messages are the
 * {@link ChannelService}'s, exactly as for any other transport.
 *
 * Operations this does not recognise (other root fields, directives or fragments at the root) take
 * the generic path.
 */
export class ChannelDelivery {
  private readonly groups = new WeakMap<DocumentNode, Map<string, RenderGroup>>();
  /** Each `channel` field's compiled rendering, or null where only the executor can render it. */
  private readonly compiled = new WeakMap<FieldNode, { readonly key: string; readonly render: Render } | null>();
  private readonly streamOwner: StreamOwner;

  constructor(
    private readonly channels: ChannelService,
    private readonly maskError: MaskError,
    /** Called after each frame written to a socket: drops sockets that do not read their messages. */
    afterSend: (socket: WebSocket, session: Session) => void,
  ) {
    this.streamOwner = { maskError, afterSend, release: (group) => this.release(group) };
  }

  /**
   * The `channel` field of an operation this class serves (a subscription whose root selects only
   * `channel`, with no directives), or null for one that takes the generic path. Asked once per
   * operation; the answer travels with it.
   */
  recognize(document: DocumentNode, operationName: string | null | undefined): FieldNode | null {
    return plainChannelField(document, operationName);
  }

  /**
   * Opens a subscription {@link ChannelDelivery.recognize} accepted. Resolves to a result with
   * errors when the subscription is refused, or else to an iterator that yields nothing and
   * finishes when graphql-ws ends the operation (or fails when the server ends it): the events go
   * straight to the socket.
   */
  async subscribe(args: ExecutionArgs, operation: ChannelOperation): Promise<AsyncIterableIterator<never> | ExecutionResult> {
    const { field } = operation;
    const channelField = args.schema.getSubscriptionType()?.getFields()[CHANNEL_FIELD];
    if (!channelField) throw new Error("The schema has no channel subscription");

    const variables = getVariableValues(
      args.schema,
      getOperationAST(args.document, args.operationName)?.variableDefinitions ?? [],
      args.variableValues ?? {},
    );
    if (variables.errors) return { errors: variables.errors.map((error) => this.maskError(error, MASKED_MESSAGE) as GraphQLError) };
    let name: string;
    let options: unknown;
    try {
      ({ name, options } = getArgumentValues(channelField, field, variables.coerced) as { name: string; options?: unknown });
    } catch (error) {
      return { errors: [this.maskError(error, MASKED_MESSAGE) as GraphQLError] };
    }

    const { socket, id, session } = operation;
    const group = this.groupFor(args, field, channelField);
    const stream = new ChannelStream(
      this.streamOwner,
      socket,
      session,
      group,
      field,
      // Flat: a string built by concatenation would keep its parts for as long as the subscription lasts.
      Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`).toString(),
    );
    let subscription: ChannelSubscription | null;
    try {
      subscription = await this.channels.open(session, name, options, stream);
    } catch (error) {
      this.release(group);
      return {
        errors: [this.maskError(locatedError(error, [field], [field.alias?.value ?? CHANNEL_FIELD]), MASKED_MESSAGE) as GraphQLError],
      };
    }
    if (!subscription) {
      this.release(group);
      return emptyStream();
    }
    stream.opened(subscription);
    return stream;
  }

  private groupFor(args: ExecutionArgs, field: FieldNode, channelField: GraphQLField<unknown, unknown>): RenderGroup {
    let byVariables = this.groups.get(args.document);
    if (!byVariables) this.groups.set(args.document, (byVariables = new Map()));
    const key = groupKey(args);
    let group = byVariables.get(key);
    if (!group) {
      const { schema, document, operationName, variableValues } = args;
      let compiled = this.compiled.get(field);
      if (compiled === undefined) {
        const render = compileRender(channelField.type, field);
        this.compiled.set(field, (compiled = render && { key: field.alias?.value ?? CHANNEL_FIELD, render }));
      }
      byVariables.set(key, (group = new RenderGroup({ schema, document, operationName, variableValues }, key, this.maskError, compiled)));
    }
    group.subscribers += 1;
    return group;
  }

  private release(group: RenderGroup): void {
    group.subscribers -= 1;
    if (group.subscribers === 0) this.groups.get(group.document)?.delete(group.key);
  }
}

const CLOSING_BRACE = 0x7d;

/**
 * Unmasked WebSocket text frames (RFC 6455 §5.2; a server never masks), one per payload, each
 * holding `start + payload + "}"`, in one buffer for one socket write.
 */
function textFrames(start: Buffer, payloads: readonly Buffer[]): Buffer {
  const startBytes = start.length;
  let total = 0;
  for (const payload of payloads) {
    const length = startBytes + payload.length + 1;
    total += length + (length < 126 ? 2 : length < 65_536 ? 4 : 10);
  }
  const frames = Buffer.allocUnsafe(total);
  let at = 0;
  for (const payload of payloads) {
    const length = startBytes + payload.length + 1;
    frames[at++] = 0x81; // FIN, text
    if (length < 126) frames[at++] = length;
    else if (length < 65_536) {
      frames[at++] = 126;
      at = frames.writeUInt16BE(length, at);
    } else {
      frames[at++] = 127;
      at = frames.writeBigUInt64BE(BigInt(length), at);
    }
    // Uint8Array's set: Buffer's copy costs far more for bytes this few.
    frames.set(start, at);
    at += startBytes;
    frames.set(payload, at);
    at += payload.length;
    frames[at++] = CLOSING_BRACE;
  }
  return frames;
}

/**
 * The TCP socket under an open WebSocket (`ws` keeps it as `_socket`; it has no public accessor).
 * Writing whole frames to it directly is sound here: the server does not enable permessage-deflate,
 * so `ws` itself writes each frame synchronously and never holds one back.
 */
function tcpSocketOf(socket: WebSocket): Socket | undefined {
  return (socket as unknown as { _socket?: Socket })._socket;
}

function groupKey(args: ExecutionArgs): string {
  return `${args.operationName ?? ""}\n${JSON.stringify(args.variableValues ?? null)}`;
}

/** The `channel` field of a subscription whose root selects only it, with no directives. */
function plainChannelField(document: DocumentNode, operationName: string | null | undefined): FieldNode | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== "subscription") return null;
  const selections = operation.selectionSet.selections;
  if (selections.length !== 1) return null;
  const [field] = selections;
  if (field?.kind !== Kind.FIELD || field.name.value !== CHANNEL_FIELD || field.directives?.length) return null;
  return field;
}

/** What a {@link ChannelStream} needs from its {@link ChannelDelivery}. */
interface StreamOwner {
  readonly maskError: MaskError;
  /** Called after each write to a socket. */
  readonly afterSend: (socket: WebSocket, session: Session) => void;
  /** The stream has ended: one subscriber fewer for its group. */
  readonly release: (group: RenderGroup) => void;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * One channel subscription over a WebSocket: the sink its events are written from (straight to the
 * socket), and the iterator graphql-ws holds, which yields nothing and finishes when graphql-ws ends
 * the operation (`return()`), or fails or finishes when the server ends it (`end`). A class rather
 * than closures: a server holds one per subscription, tens of thousands of them, and its methods
 * are shared.
 */
class ChannelStream implements AsyncIterableIterator<never>, SubscriptionSink {
  private subscription: ChannelSubscription | null = null;
  /** Set once the stream has ended: with the error it failed with, if any. */
  private outcome: { readonly error?: unknown } | null = null;
  /** Settles the pending `next()`, if one waits. */
  private wake: (() => void) | null = null;
  private finished: Promise<void> | null = null;
  /** `frameStart` as UTF-8, made for the first batch: a batch writes it once per event. */
  private frameStartBytes: Buffer | undefined;

  constructor(
    private readonly owner: StreamOwner,
    private readonly socket: WebSocket,
    private readonly session: Session,
    private readonly group: RenderGroup,
    private readonly field: FieldNode,
    /** The start of every `next` frame of this operation, up to its payload. */
    private readonly frameStart: string,
  ) {}

  /** The channel subscription is open: ending the stream from now on closes it. */
  opened(subscription: ChannelSubscription): void {
    this.subscription = subscription;
    if (this.outcome) this.stop(); // the server ended it while it opened
  }

  event(event: ChannelEvent): void {
    const { socket } = this;
    if (socket.readyState !== socket.OPEN) return;
    coalesceWrites(socket);
    socket.send(`${this.frameStart + this.group.payloadFor(event)}}`);
    this.owner.afterSend(socket, this.session);
  }

  eventBatch(events: readonly ChannelEvent[]): void {
    const { socket, group } = this;
    if (socket.readyState !== socket.OPEN) return;
    const tcp = tcpSocketOf(socket);
    if (tcp)
      tcp.write(
        textFrames(
          (this.frameStartBytes ??= Buffer.from(this.frameStart)),
          events.map((event) => group.payloadBytesFor(event)),
        ),
      );
    else for (const event of events) socket.send(`${this.frameStart + group.payloadFor(event)}}`);
    this.owner.afterSend(socket, this.session);
  }

  end(error?: AppError): void {
    const { field } = this;
    this.finish({
      error: error && this.owner.maskError(locatedError(error, [field], [field.alias?.value ?? CHANNEL_FIELD]), MASKED_MESSAGE),
    });
  }

  next(): Promise<IteratorResult<never>> {
    if (!this.outcome) this.finished ??= new Promise<void>((resolve) => (this.wake = resolve));
    return (this.finished ?? Promise.resolve()).then(() => this.result());
  }

  return(): Promise<IteratorResult<never>> {
    this.finish({});
    return Promise.resolve(DONE);
  }

  throw(error: unknown): Promise<IteratorResult<never>> {
    this.finish({});
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private result(): IteratorResult<never> {
    if (this.outcome?.error) throw this.outcome.error;
    return DONE;
  }

  private finish(outcome: { error?: unknown }): void {
    if (this.outcome) return;
    this.outcome = outcome;
    if (this.subscription) this.stop();
    this.wake?.();
    this.wake = null;
  }

  private stop(): void {
    this.subscription!.close();
    this.owner.release(this.group);
  }
}
