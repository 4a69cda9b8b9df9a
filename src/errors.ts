/**
 * Errors meant for clients. The realtime core and the trigger engine throw these; the GraphQL layer
 * turns them into GraphQL errors carrying `extensions.code`. Every other error is treated as
 * unexpected and masked before it reaches a client.
 */
export class AppError extends Error {
  override readonly name = "AppError";

  /**
   * @param code - machine-readable code, sent to clients as `extensions.code` (e.g. `BAD_USER_INPUT`)
   * @param message - human-readable message, safe to show to the client
   * @param details - optional extra facts safe to show to the client (sent as extensions)
   */
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Well-known error codes used across the server. */
export const ErrorCode = {
  BadUserInput: "BAD_USER_INPUT",
  Unauthenticated: "UNAUTHENTICATED",
  Forbidden: "FORBIDDEN",
  NotFound: "NOT_FOUND",
  /** A change based on a stale version of what it changes (e.g. a trigger's `expectedRevision`). */
  Conflict: "CONFLICT",
  TriggerRejected: "TRIGGER_REJECTED",
  TriggerFailed: "TRIGGER_FAILED",
  LimitExceeded: "LIMIT_EXCEEDED",
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  RateLimited: "RATE_LIMITED",
  SlowConsumer: "SLOW_CONSUMER",
  ServiceUnavailable: "SERVICE_UNAVAILABLE",
  /** A failure of the server's own, told to the client with an `errorId` to find it in the logs. */
  InternalServerError: "INTERNAL_SERVER_ERROR",
} as const;

/** Shorthand for a `BAD_USER_INPUT` error. */
export function badInput(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError(ErrorCode.BadUserInput, message, details);
}
