import { AppError, ErrorCode } from "../../errors.js";
import type { EventMiddleware } from "../../realtime/publisher.js";
import type { ChannelEvent } from "../../realtime/types.js";
import type { TriggerState } from "../state/state.js";
import type { LoadedTrigger, TriggerStore } from "../store/trigger-store.js";
import { type RunOptions, runStack, type StackRunResult, type TriggerInput } from "./engine.js";
import type { TriggerRunRecorder } from "./recorder.js";

/** Options for trigger runs on a server: the engine's, and where the triggers' state lives. */
export interface TriggerRunOptions extends RunOptions {
  /** Trigger state; without it, state steps fail. */
  readonly triggerState?: TriggerState;
  /** Keep state writes in the run only (test runs): reads see the stored state, nothing is written. */
  readonly dryState?: boolean;
}

/** Every field of {@link RunOptions}, so that a field added there is not left out when the options are passed on. */
type EveryRunOption = { readonly [Key in keyof Required<RunOptions>]: RunOptions[Key] };

/** The input a trigger's stack sees for an event. */
export function triggerInput(event: ChannelEvent): TriggerInput {
  return {
    action: event.command,
    command: event.command,
    channel: event.channel,
    commandOptions: event.commandOptions,
    payload: event.payload,
    client: { id: event.client.id, authenticated: event.client.authenticated, extras: event.client.extras },
  };
}

/** Runs one trigger's stack on an input; a stack that no longer compiles counts as a failed run. */
export async function runTrigger(trigger: LoadedTrigger, input: TriggerInput, options: TriggerRunOptions): Promise<StackRunResult> {
  if ("error" in trigger.stack) {
    return {
      outcome: "FAILED",
      payload: input.payload,
      commandOptions: input.commandOptions,
      error: { code: ErrorCode.TriggerFailed, message: trigger.stack.error },
      log: [],
      durationMs: 0,
      trace: [],
    };
  }
  const { triggerState, dryState } = options;
  const id = trigger.config.id;
  const state = triggerState && (dryState ? triggerState.dry(id) : triggerState.live(id));
  // Named fields rather than a spread of `options`: the spread cost about a quarter of a simple run.
  const { timeoutMs, trace, webhooks, maxMemoryBytes } = options;
  const runOptions: EveryRunOption = { timeoutMs, trace, webhooks, maxMemoryBytes, state };
  return runStack(trigger.stack, input, runOptions);
}

/**
 * The trigger middleware: for each event, runs the active triggers matching its channel and action in
 * order, each receiving the previous one's output, and records every run. A drop stops the event
 * quietly; a reject refuses it with the trigger's code and message; a failure follows the trigger's
 * `onError` policy (REJECT fails closed with `TRIGGER_FAILED`, or `SERVICE_UNAVAILABLE` when the run
 * failed because its state store could not be reached). A LEAVE cannot be refused, so it is
 * always delivered: a LEAVE trigger's changes apply, but when it drops, rejects or fails (recorded
 * in its run as usual) the LEAVE goes on as that trigger received it, to the next trigger and out.
 */
export function createTriggerMiddleware(
  store: TriggerStore,
  recorder: Pick<TriggerRunRecorder, "record">,
  options: TriggerRunOptions,
): EventMiddleware {
  return async (event) => {
    const triggers = store.matching(event.channel, event.action);
    let current = event;
    const leave = event.action === "LEAVE";
    for (const trigger of triggers) {
      const result = await runTrigger(trigger, triggerInput(current), options);
      recorder.record({
        triggerId: trigger.config.id,
        action: event.action,
        channel: event.channel,
        outcome: result.outcome,
        durationMs: result.durationMs,
        error: result.error?.message ?? null,
        log: result.log,
        clientId: current.client.id,
        revision: trigger.config.revision,
        input: { payload: current.payload, commandOptions: current.commandOptions },
        output: { payload: result.payload, commandOptions: result.commandOptions },
      });
      switch (result.outcome) {
        case "DELIVERED":
        case "MODIFIED":
          current = { ...current, payload: result.payload, commandOptions: result.commandOptions };
          break;
        case "DROPPED":
          if (leave) break; // the LEAVE goes on unchanged
          return { deliver: false };
        case "REJECTED":
          if (leave) break;
          throw new AppError(result.error!.code, result.error!.message, { trigger: trigger.config.name });
        case "FAILED":
          if (leave || trigger.config.onError === "DELIVER") break;
          if (trigger.config.onError === "DROP") return { deliver: false };
          // An outage (its state store unreachable) is not the trigger's fault: worth retrying.
          if (result.error?.code === ErrorCode.ServiceUnavailable) {
            throw new AppError(
              ErrorCode.ServiceUnavailable,
              `Trigger "${trigger.config.name}" could not reach its state; try again shortly`,
              {
                trigger: trigger.config.name,
              },
            );
          }
          throw new AppError(ErrorCode.TriggerFailed, `Trigger "${trigger.config.name}" failed`, { trigger: trigger.config.name });
      }
    }
    return { deliver: true, event: current };
  };
}
