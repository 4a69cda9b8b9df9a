import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { NoSchemaIntrospectionCustomRule } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Env } from "../env.js";

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
  return [armor, csrfPrevention, ...(env.INTROSPECTION ? [] : [disableIntrospection])];
}
