import type { ExecutionResult, GraphQLError } from "graphql";
import { handleStreamOrSingleExecutionResult, type Plugin } from "graphql-yoga";
import type { createErrorMasker } from "./errors.js";

/** Turns an error into what a client may see: the server's error masker. */
type MaskError = ReturnType<typeof createErrorMasker>;

/** The message of masked errors, as Yoga words it. */
export const MASKED_MESSAGE = "Unexpected error.";

/** A result carrying only `error`, masked: what a client gets instead of a result that cannot be sent. */
export function maskedResult(error: unknown, maskError: MaskError): ExecutionResult {
  return { data: null, errors: [maskError(error, MASKED_MESSAGE) as GraphQLError] };
}

/**
 * JSON for a result, or, when it cannot be serialized (a value nested too deeply overflows
 * `JSON.stringify`'s stack), the JSON of a masked error: the cause is logged, never sent.
 */
export function stringifyResult(result: unknown, maskError: MaskError): string {
  try {
    return JSON.stringify(result);
  } catch (error) {
    const { errors } = maskedResult(error, maskError);
    return JSON.stringify({ data: null, errors: errors!.map((masked) => masked.toJSON()) });
  }
}

/**
 * `result` when it serializes to JSON, otherwise a result with the masked error. For transports
 * that serialize results themselves (graphql-ws), at the cost of one extra serialization.
 */
export function serializableResult(result: ExecutionResult, maskError: MaskError): ExecutionResult {
  try {
    JSON.stringify(result);
    return result;
  } catch (error) {
    return maskedResult(error, maskError);
  }
}

/**
 * Makes Yoga serialize every result over HTTP and SSE with {@link stringifyResult} (through the
 * results' `stringify`, which Yoga's result processors use), so a result that cannot be serialized
 * becomes a masked error instead of an exception in the response stream.
 */
export function safeSerialization(maskError: MaskError): Plugin {
  const stringify = (result: unknown) => stringifyResult(result, maskError);
  const withStringify = ({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) =>
    setResult({ ...result, stringify } as ExecutionResult);
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, withStringify) }),
    onSubscribe: () => ({ onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, withStringify) }),
  };
}
