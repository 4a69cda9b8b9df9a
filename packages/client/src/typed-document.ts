import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";

/**
 * A GraphQL operation as a string that carries its result and variables types: what the client preset
 * of GraphQL Code Generator writes with `documentMode: "string"` (its `TypedDocumentString`). Any
 * app's generated documents fit, since only the shape counts; the operation is sent as `String(document)`,
 * so no GraphQL parser or printer ends up in the bundle.
 */
// biome-ignore lint/complexity/noBannedTypes: the preset's TypedDocumentString extends String, the object
export type TypedDocument<TResult, TVariables> = DocumentTypeDecoration<TResult, TVariables> & String;
