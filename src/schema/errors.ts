import { randomUUID } from "node:crypto";
import { GraphQLError } from "graphql";
import { isDatabaseUnreachable, isDriverUnreachable } from "../db.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";
import { isRedisUnreachable } from "../realtime/redis.js";
import type { ServiceOutages } from "../services.js";

/**
 * Turns errors into what clients may see: `AppError`s keep their message and code, GraphQL's own
 * errors (syntax, validation) pass through, an unreachable database or Redis is `SERVICE_UNAVAILABLE`, and
 * everything else becomes a masked error whose id is logged with the real cause.
 */
export function createErrorMasker(logger: Logger, development: boolean, outages: ServiceOutages) {
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
        extensions: { ...extensions, code: extensions.code ?? ErrorCode.BadUserInput },
      });
    }
    const errorId = randomUUID();
    const unreachable = isRedisUnreachable(original)
      ? "redis"
      : isDatabaseUnreachable(original) || isDriverUnreachable(original)
        ? "database"
        : null;
    if (unreachable) {
      // An outage, not a bug: say so, and leave the logging to the outage log (one line each way).
      const outage = unreachable === "database" ? outages.database : outages.redis;
      outage?.failed(original instanceof Error ? original.message.trim().split("\n").at(-1) : undefined);
      return new GraphQLError(
        unreachable === "database" ? "The database is unreachable; try again shortly" : "Redis is unreachable; try again shortly",
        {
          nodes: error instanceof GraphQLError ? error.nodes : undefined,
          path: error instanceof GraphQLError ? error.path : undefined,
          extensions: { code: ErrorCode.ServiceUnavailable, errorId },
        },
      );
    }
    logger.error({ err: original, errorId }, "unexpected error");
    return new GraphQLError(development && original instanceof Error ? original.message : message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: ErrorCode.InternalServerError, errorId },
    });
  };
}
