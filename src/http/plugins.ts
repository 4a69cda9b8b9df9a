import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, Lexer, NoSchemaIntrospectionCustomRule, Source, TokenKind } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Env } from "../env.js";
import { ErrorCode } from "../errors.js";
import { nestsDeeperThan } from "../validation.js";

/** Content types a browser may POST cross-site without a preflight: refused, so CORS protects every mutation. */
const SIMPLE_CONTENT_TYPES = new Set(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]);

/**
 * CSRF prevention: a POST with a "simple" content type (one a hostile page can send from a form or
 * `fetch` without a CORS preflight) is refused with 415. JSON requests always need a preflight, and
 * Yoga already refuses mutations over GET.
 */
const csrfPrevention: Plugin = {
  onRequest({ request, endResponse, fetchAPI }) {
    if (request.method !== "POST") return;
    const type = (request.headers.get("content-type") ?? "text/plain").split(";")[0]!.trim().toLowerCase();
    if (!SIMPLE_CONTENT_TYPES.has(type)) return;
    endResponse(
      new fetchAPI.Response(
        JSON.stringify({ errors: [{ message: "POST requests must be sent as application/json", extensions: { code: "CSRF_PREVENTED" } }] }),
        { status: 415, headers: { "content-type": "application/json" } },
      ),
    );
  },
};

/** How deeply brackets may nest in a GraphQL document (the parser recurses per level). */
const MAX_DOCUMENT_NESTING = 128;

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * True when brackets (`{`, `[`, `(`) nest deeper than `limit` in a document, as graphql-js's own
 * lexer reads it: strings, block strings, escapes and comments are tokens like any other, so their
 * contents cannot hide or fake a bracket. Stops at the first level past `limit`. A document the
 * lexer cannot read is left to the parser, which stops at the same place, no deeper than counted.
 */
export function nestsDeeperThanLimit(source: string, limit: number): boolean {
  const lexer = new Lexer(new Source(source));
  let depth = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (OPENING.has(token.kind)) {
        if (++depth > limit) return true;
      } else if (CLOSING.has(token.kind)) depth--;
    }
  } catch {
    // A syntax error: the parser reports it, having recursed no deeper than the depth reached here.
  }
  return false;
}

/**
 * Refuses documents nested too deeply before graphql-js parses them: its recursive parser would
 * otherwise run out of stack on a few thousand nested brackets, well within the token limit.
 */
const nestingLimit: Plugin = {
  onParse({ params }) {
    const source = typeof params.source === "string" ? params.source : params.source.body;
    if (nestsDeeperThanLimit(source, MAX_DOCUMENT_NESTING)) {
      throw new GraphQLError(`Syntax Error: the document nests deeper than ${MAX_DOCUMENT_NESTING} levels`, {
        extensions: { code: ErrorCode.BadUserInput, http: { status: 400 } },
      });
    }
  },
};

/**
 * How deeply an operation's variables may nest: a backstop far above what a valid value reaches
 * (JSON values are refused past 64 levels (`MAX_JSON_DEPTH`), with their field's name, where they
 * are used), so that no variable deep enough to overflow a recursive walk reaches any code at all.
 */
export const MAX_VARIABLES_DEPTH = 1000;

/** True when an operation's variables nest deeper than {@link MAX_VARIABLES_DEPTH}. */
export function variablesTooDeep(variables: unknown): boolean {
  return nestsDeeperThan(variables, MAX_VARIABLES_DEPTH);
}

/** The error for variables that nest too deeply; they are refused before anything reads them. */
export function deepVariablesError(): GraphQLError {
  return new GraphQLError(`Variables nest deeper than ${MAX_VARIABLES_DEPTH} levels`, { extensions: { code: ErrorCode.BadUserInput } });
}

/** Refuses operations whose variables nest absurdly deep (the WebSocket checks the same). */
const variablesLimit: Plugin = {
  onParams({ params, setResult }) {
    if (variablesTooDeep(params.variables)) setResult({ errors: [deepVariablesError()] });
  },
};

const disableIntrospection: Plugin = {
  onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
};

/**
 * The Yoga plugins that harden the GraphQL endpoint, over HTTP and the WebSocket alike: GraphQL
 * Armor's depth, alias, directive, token and cost limits; CSRF prevention; introspection when
 * allowed; no field suggestions outside development (they leak the schema).
 */
export function hardeningPlugins(env: Env, development: boolean): Plugin[] {
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: env.GRAPHQL_MAX_DEPTH },
    maxAliases: { n: env.GRAPHQL_MAX_ALIASES },
    maxDirectives: { n: env.GRAPHQL_MAX_DIRECTIVES },
    maxTokens: { n: env.GRAPHQL_MAX_TOKENS },
    costLimit: { maxCost: env.GRAPHQL_MAX_COST },
    blockFieldSuggestion: { enabled: !development },
  }) as Plugin;
  return [nestingLimit, variablesLimit, armor, csrfPrevention, ...(env.INTROSPECTION ? [] : [disableIntrospection])];
}
