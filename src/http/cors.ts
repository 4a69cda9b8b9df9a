import type { CORSOptions, Plugin } from "graphql-yoga";
import { corsOrigins, type Env } from "../env.js";

type CorsEnv = Pick<Env, "CORS_ORIGINS" | "CORS_CREDENTIALS">;

/**
 * Yoga's CORS settings from `CORS_ORIGINS` and `CORS_CREDENTIALS`. The API authenticates with bearer
 * tokens, not cookies, so `Access-Control-Allow-Credentials` is only sent when configured. A request
 * from an origin that is not listed gets no CORS headers at all (rather than `Allow-Origin: null`,
 * which sandboxed pages, whose origin is `null`, would satisfy).
 */
export function corsSettings(env: CorsEnv): (request: Request) => CORSOptions {
  const origins = corsOrigins(env.CORS_ORIGINS);
  const credentials = env.CORS_CREDENTIALS;
  if (origins === "*") return () => ({ origin: "*", credentials });
  return (request) => {
    const origin = request.headers.get("origin");
    return origin !== null && origins.includes(origin) ? { origin: [origin], credentials } : false;
  };
}

/**
 * With listed origins, CORS headers depend on the request's `Origin`: say so with `Vary: Origin`,
 * so a shared cache never serves one origin's answer to another.
 */
export function varyOnOrigin(env: CorsEnv): Plugin {
  if (corsOrigins(env.CORS_ORIGINS) === "*") return {}; // Yoga's CORS already sends Vary: Origin
  return {
    onResponse({ response }) {
      const vary = response.headers.get("vary") ?? "";
      if (!/(^|,)\s*origin\s*(,|$)/i.test(vary)) response.headers.set("vary", vary ? `${vary}, Origin` : "Origin");
    },
  };
}
