/** A GraphQL error as it arrives over the wire. */
export interface GraphQLErrorLike {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions?: Readonly<Record<string, unknown>>;
}

/**
 * An operation that failed: the server's GraphQL errors, or a transport problem (`CONNECTION_LOST`,
 * `CLIENT_CLOSED`, `HTTP_ERROR`, ...). `code` is the first error's `extensions.code`, and `path` its
 * `extensions.path` (for stack validation errors, e.g. `stack[2].then[0].value`).
 */
export class RealtimeError extends Error {
  override readonly name = "RealtimeError";
  /** `extensions.code` of the first error, e.g. `BAD_USER_INPUT`, `FORBIDDEN`, `TRIGGER_REJECTED`. */
  readonly code: string;
  /** `extensions.path` of the first error, where the server names the part of the input at fault. */
  readonly path: string | undefined;

  constructor(
    message: string,
    code: string,
    /** Every error the server returned (empty for transport problems). */
    readonly errors: readonly GraphQLErrorLike[] = [],
  ) {
    super(message);
    this.code = code;
    const path = errors[0]?.extensions?.path;
    this.path = typeof path === "string" ? path : undefined;
  }

  /** Wraps the errors of a GraphQL response. */
  static fromErrors(errors: readonly GraphQLErrorLike[]): RealtimeError {
    const first = errors[0];
    const code = first?.extensions?.code;
    return new RealtimeError(first?.message ?? "Unknown error", typeof code === "string" ? code : "GRAPHQL_ERROR", errors);
  }
}

/** Whether a value is an array of GraphQL errors (what graphql-ws hands a sink for an operation error). */
export function isGraphQLErrors(value: unknown): value is GraphQLErrorLike[] {
  return Array.isArray(value) && value.every((item) => typeof item === "object" && item !== null && typeof item.message === "string");
}
