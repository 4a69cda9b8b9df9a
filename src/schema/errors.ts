import { randomUUID } from "node:crypto";
import { GraphQLError } from "graphql";
import { isDatabaseUnreachable } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * Turns errors into what clients may see: `AppError`s keep their message and code, GraphQL's own
 * errors (syntax, validation) pass through, an unreachable database is `SERVICE_UNAVAILABLE`, and
 * everything else becomes a masked error whose id is logged with the real cause.
 */
export function createErrorMasker(logger: Logger, development: boolean) {
  return (error: unknown, message: string): Error => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof AppError) {
      return new GraphQLError(original.message, {
        nodes: error instanceof GraphQLError ? error.nodes : undefined,
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { ...original.details, code: original.code },
      });
    }
    if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) {
      // GraphQL's own errors (syntax, validation, variables) and GraphQL errors thrown on purpose:
      // keep the outer message, which names the argument or field, and give every one a code.
      const extensions = { ...(original as GraphQLError | undefined)?.extensions, ...error.extensions };
      return new GraphQLError(error.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { ...extensions, code: extensions.code ?? "BAD_USER_INPUT" },
      });
    }
    const errorId = randomUUID();
    if (isDatabaseUnreachable(original)) {
      // An outage, not a bug: say so, and log it once per request without the stack.
      logger.warn(
        { errorId, reason: original instanceof Error ? original.message.trim().split("\n").at(-1) : undefined },
        "database unreachable",
      );
      return new GraphQLError("The database is unreachable; try again shortly", {
        nodes: error instanceof GraphQLError ? error.nodes : undefined,
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { code: ErrorCode.ServiceUnavailable, errorId },
      });
    }
    logger.error({ err: original, errorId }, "unexpected error");
    return new GraphQLError(development && original instanceof Error ? original.message : message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: "INTERNAL_SERVER_ERROR", errorId },
    });
  };
}
