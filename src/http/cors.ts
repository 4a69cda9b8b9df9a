import type { CORSOptions } from "graphql-yoga";
import { corsOrigins, type Env } from "../env.js";

/**
 * Yoga's CORS settings from `CORS_ORIGINS` and `CORS_CREDENTIALS`. The API authenticates with bearer
 * tokens, not cookies, so `Access-Control-Allow-Credentials` is only sent when configured. A request
 * from an origin that is not listed gets no CORS headers at all (rather than `Allow-Origin: null`,
 * which sandboxed pages, whose origin is `null`, would satisfy).
 */
export function corsSettings(env: Pick<Env, "CORS_ORIGINS" | "CORS_CREDENTIALS">): (request: Request) => CORSOptions {
  const origins = corsOrigins(env.CORS_ORIGINS);
  const credentials = env.CORS_CREDENTIALS;
  if (origins === "*") return () => ({ origin: "*", credentials });
  return (request) => {
    const origin = request.headers.get("origin");
    return origin !== null && origins.includes(origin) ? { origin: [origin], credentials } : false;
  };
}
