import { badInput } from "../../errors.js";
import { assertChannelName } from "../../realtime/channel-name.js";
import type { RealtimeAction } from "../../realtime/types.js";
import { type ChannelEvent, type ClientExtras, commandOf, type RealtimeClient } from "../../realtime/types.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../../validation.js";
import type { TriggerCreate } from "../store/config.js";
import type { LoadedTrigger, TriggerStore } from "../store/trigger-store.js";
import type { StackRunResult, StepTrace } from "./engine.js";
import { runTrigger, type TriggerRunOptions, triggerInput } from "./middleware.js";

/** The identity a test event comes from; every field is optional. */
export interface TestClient {
  readonly id?: string | null;
  readonly authenticated?: boolean | null;
  /** The token's own claims, as an authenticated client's `client.extras`. */
  readonly extras?: unknown;
}

/** A sample event to run a trigger on. */
export interface TestEvent {
  readonly action: RealtimeAction;
  readonly channel: string;
  readonly payload?: unknown;
  readonly commandOptions?: unknown;
  /** Shorthand for `client: { id }`. */
  readonly clientId?: string | null;
  readonly client?: TestClient | null;
}

/** Which trigger to test: a stored one by id, or a draft that is validated but not stored. */
export type TestTarget = { readonly id: string; readonly draft?: undefined } | { readonly id?: undefined; readonly draft: TriggerCreate };

/** A test run's result, with whether the trigger would run on the event at all. */
export interface TriggerTestResult extends StackRunResult {
  /** True when the trigger is active and its actions and channel pattern cover the event. */
  readonly matches: boolean;
  /** Why it would not run on the event; null when it would. */
  readonly matchNote: string | null;
}

/** The client id test events use when none is given. */
export const TEST_CLIENT_ID = "test-client";

/** Runs triggers on sample events, publishing, recording and storing nothing. */
export class TriggerTester {
  constructor(
    private readonly store: TriggerStore,
    private readonly options: TriggerRunOptions,
  ) {}

  /**
   * Runs a stored trigger or a draft on a sample event with a step trace (parents before the steps
   * they contain). State steps read the trigger's stored state but write none: the trace shows what
   * they would have written. The stack runs even when the trigger would not match the event; `matches` and
   * `matchNote` say so. Bad input (both or neither of id and draft, an invalid draft or event) fails
   * with `BAD_USER_INPUT`; an unknown id with `NOT_FOUND`.
   */
  async run(target: { id?: string | null; draft?: TriggerCreate | null }, event: TestEvent): Promise<TriggerTestResult> {
    if ((target.id == null) === (target.draft == null)) throw badInput("Give exactly one of id and draft", { field: "id" });
    const trigger = target.id != null ? this.store.require(target.id) : this.store.draft(target.draft!);
    const sample = sampleEvent(event);
    const result = await runTrigger(trigger, triggerInput(sample), { ...this.options, trace: true, dryState: true });
    const matchNote = whyNotMatching(trigger, sample);
    return { ...result, trace: parentsFirst(result.trace ?? []), matches: matchNote === null, matchNote };
  }
}

/** The channel event a test describes, built as the server would build it. */
function sampleEvent(event: TestEvent): ChannelEvent {
  assertChannelName(event.channel);
  for (const [field, value] of [
    ["payload", event.payload],
    ["commandOptions", event.commandOptions],
    ["client.extras", event.client?.extras],
  ] as const) {
    if (nestsDeeperThan(value, MAX_JSON_DEPTH))
      throw badInput(`event.${field} nests deeper than ${MAX_JSON_DEPTH} levels`, { field: `event.${field}` });
  }
  return {
    id: "test-event",
    action: event.action,
    command: commandOf[event.action],
    channel: event.channel,
    payload: event.payload ?? null,
    commandOptions: event.commandOptions ?? null,
    client: testClient(event),
    createdAt: new Date().toISOString(),
    seq: null,
  };
}

function testClient(event: TestEvent): RealtimeClient {
  const given = event.client ?? {};
  if (event.clientId != null && given.id != null && event.clientId !== given.id) {
    throw badInput("event.clientId and event.client.id differ: give one of them", { field: "event.clientId" });
  }
  const authenticated = given.authenticated ?? false;
  const extras = given.extras ?? null;
  if (extras !== null && (typeof extras !== "object" || Array.isArray(extras))) {
    throw badInput("event.client.extras must be a JSON object (the token's claims)", { field: "event.client.extras" });
  }
  if (extras !== null && !authenticated) {
    throw badInput("event.client.extras needs authenticated: true (anonymous clients have no claims)", { field: "event.client.extras" });
  }
  const id = event.clientId ?? given.id ?? TEST_CLIENT_ID;
  if (id.length === 0) throw badInput("event.client.id must not be empty", { field: "event.client.id" });
  return { id, authenticated, extras: extras as ClientExtras | null };
}

/** Why the trigger would not run on the event, or null when it would. */
function whyNotMatching(trigger: LoadedTrigger, event: ChannelEvent): string | null {
  const { config, pattern } = trigger;
  if (!config.actions.includes(event.action)) {
    return `this trigger runs on ${listed(config.actions)} only, not on ${event.action}`;
  }
  if (!pattern.matches(event.channel)) return `${config.channel} does not match ${event.channel}`;
  if (!config.active) return "this trigger is inactive: it runs on no event until it is made active";
  return null;
}

function listed(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? "nothing") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/** `stack[2].then[0]` as comparable parts: indexes as numbers, `then` before `else`. */
function pathKey(path: string): (string | number)[] {
  return path
    .split(/[.[\]]+/)
    .filter(Boolean)
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

function comparePaths(a: string, b: string): number {
  const left = pathKey(a);
  const right = pathKey(b);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i]!;
    const y = right[i]!;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) === "then" ? -1 : String(y) === "then" ? 1 : String(x).localeCompare(String(y));
  }
  return left.length - right.length;
}

/**
 * A trace in stack order: the engine records a step when it ends, so an `if` comes after the steps
 * it ran; each step runs at most once, so ordering by path puts every parent before its children.
 */
function parentsFirst(trace: readonly StepTrace[]): StepTrace[] {
  return [...trace].sort((a, b) => comparePaths(a.path, b.path));
}
