import { type GraphQLErrorLike, RealtimeError } from "./graphql-errors.js";
import type { TypedDocument } from "./typed-document.js";

/** Where and as whom to run an operation over HTTP. */
export interface HttpRequestOptions {
  /** The GraphQL endpoint; defaults to `/graphql` (the page's own server). */
  readonly url?: string;
  /** Sent as `Authorization: Bearer <token>`: the admin token, or a client JWT. */
  readonly token?: string | null;
  readonly signal?: AbortSignal;
}

/**
 * Runs a typed query or mutation with `POST /graphql` and returns its data. `document` is any
 * generated document of the client preset with `documentMode: "string"` (see {@link TypedDocument}).
 * @throws RealtimeError with the server's errors, or `HTTP_ERROR` when there is no GraphQL response
 */
export async function requestGraphQL<TResult, TVariables>(
  document: TypedDocument<TResult, TVariables>,
  variables: TVariables,
  options: HttpRequestOptions = {},
): Promise<TResult> {
  const response = await fetch(options.url ?? "/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: JSON.stringify({ query: document.toString(), variables }),
    signal: options.signal ?? null,
  });
  let body: { data?: TResult | null; errors?: GraphQLErrorLike[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new RealtimeError(`HTTP ${response.status} without a GraphQL response`, "HTTP_ERROR");
  }
  if (body.errors?.length) throw RealtimeError.fromErrors(body.errors);
  if (body.data == null) throw new RealtimeError(`HTTP ${response.status} without data`, "HTTP_ERROR");
  return body.data;
}
