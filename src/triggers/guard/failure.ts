/**
 * Which bound a failed run hit; the run's error message names it after the step's path. (`regex`
 * is also how a pattern RE2 cannot run is refused when the stack is compiled.)
 */
export type GuardReason = "timeout" | "memory" | "size" | "regex";

/** A run stopped by one of its bounds. */
export class GuardFailure extends Error {
  constructor(
    readonly reason: GuardReason,
    message: string,
  ) {
    super(message);
  }
}
