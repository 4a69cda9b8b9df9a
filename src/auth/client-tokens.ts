import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { Env } from "../env.js";
import { AppError, ErrorCode } from "../errors.js";
import { flatString } from "../ids.js";
import type { ClientExtras, RealtimeClient } from "../realtime/types.js";

/** Where the keys that sign client tokens come from, and what the tokens must say. */
/** A client without credentials: a fresh id, known for as long as its connection or request lasts. */
export function anonymousClient(): RealtimeClient {
  return { id: flatString(randomUUID()), authenticated: false, extras: null };
}

export interface ClientTokenSettings {
  /** Shared HS256 secret (at least 32 characters). Excludes `jwksUrl` and `jwksFile`. */
  secret?: string;
  /** `http(s)://` URL of a JWKS, fetched and cached by `jose`. Excludes `secret` and `jwksFile`. */
  jwksUrl?: string;
  /** Path of a JWKS file `{ "keys": [...] }`, read once when the verifier is created. */
  jwksFile?: string;
  /** Required `iss` claim, when set. */
  issuer?: string;
  /** Required `aud` claim (or one of its values), when set. */
  audience?: string;
  /** Allowed clock skew for `exp`/`nbf`/`iat`, in seconds. Default 5. */
  clockToleranceSeconds?: number;
}

/** A verified token's client, and when the token stops being valid. */
export interface VerifiedClient {
  readonly client: RealtimeClient;
  /** The token's `exp` in ms since the epoch; absent when it has none. */
  readonly expiresAt?: number;
}

/** Turns client JWTs into {@link RealtimeClient}s. */
export interface ClientTokenVerifier {
  /** False when no key source is configured; `verify` then refuses every token. */
  readonly enabled: boolean;
  /**
   * Verifies a token and returns its client: `id` = `sub`, `authenticated` = true, `extras` = the
   * non-registered claims.
   * @throws AppError `UNAUTHENTICATED` with a short message that never includes the token or key
   */
  verify(token: string): Promise<RealtimeClient>;
  /** {@link ClientTokenVerifier.verify}, also telling when the token expires. */
  verifyToken(token: string): Promise<VerifiedClient>;
}

/** Algorithms accepted with a JWKS: asymmetric only, so a public key can never act as an HMAC secret. */
export const JWKS_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** Shortest accepted `JWT_SECRET`: 256 bits, as RFC 7518 asks of HS256 keys. */
export const MIN_SECRET_LENGTH = 32;

/** Longest accepted `sub`, which becomes the client id. */
export const MAX_SUBJECT_LENGTH = 255;

/** Tokens longer than this are refused unparsed. */
const MAX_TOKEN_LENGTH = 16_384;

/** Nesting deeper than this in the claims is refused. */
const MAX_CLAIM_DEPTH = 32;

const REGISTERED_CLAIMS = new Set(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]);
const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Reads the client-token settings from the parsed environment. */
export function clientTokenSettingsFromEnv(
  env: Pick<Env, "JWT_SECRET" | "JWT_JWKS_URL" | "JWT_JWKS_FILE" | "JWT_ISSUER" | "JWT_AUDIENCE">,
): ClientTokenSettings {
  return {
    secret: env.JWT_SECRET,
    jwksUrl: env.JWT_JWKS_URL,
    jwksFile: env.JWT_JWKS_FILE,
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
  };
}

/**
 * Builds the verifier. Always returns one: with no key source it is `enabled: false` and refuses
 * every token, so a caller that passes on whatever token it got can never downgrade it to anonymous.
 * @throws Error on bad settings (two key sources, short secret, unreadable or invalid JWKS file)
 */
export function createClientTokenVerifier(settings: ClientTokenSettings): ClientTokenVerifier {
  const sources = [settings.secret, settings.jwksUrl, settings.jwksFile].filter((value) => value);
  if (sources.length > 1) throw new Error("Client tokens: set only one of secret, JWKS URL and JWKS file");
  if (sources.length === 0) {
    const refuse = () => Promise.reject(unauthenticated("Token authentication is not configured"));
    return { enabled: false, verify: refuse, verifyToken: refuse };
  }

  const options = {
    issuer: settings.issuer || undefined,
    audience: settings.audience || undefined,
    clockTolerance: settings.clockToleranceSeconds ?? 5,
  };
  let verifyJwt: (token: string) => Promise<JWTPayload>;
  if (settings.secret) {
    if (settings.secret.length < MIN_SECRET_LENGTH) {
      throw new Error(`Client tokens: the secret must be at least ${MIN_SECRET_LENGTH} characters`);
    }
    const key = new TextEncoder().encode(settings.secret);
    verifyJwt = async (token) => (await jwtVerify(token, key, { ...options, algorithms: ["HS256"] })).payload;
  } else {
    const keys: JWTVerifyGetKey = settings.jwksUrl
      ? createRemoteJWKSet(new URL(settings.jwksUrl))
      : createLocalJWKSet(readJwksFile(settings.jwksFile!));
    verifyJwt = async (token) => (await jwtVerify(token, keys, { ...options, algorithms: [...JWKS_ALGORITHMS] })).payload;
  }

  const verifyToken = async (token: string): Promise<VerifiedClient> => {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw unauthenticated("Invalid token");
    }
    let payload: JWTPayload;
    try {
      payload = await verifyJwt(token);
    } catch (error) {
      throw refusal(error);
    }
    const { sub } = payload;
    if (typeof sub !== "string" || sub.length === 0) throw unauthenticated("Token is missing the sub claim");
    if (sub.length > MAX_SUBJECT_LENGTH) throw unauthenticated("Token sub claim is too long");
    const client = { id: sub, authenticated: true, extras: extrasOf(payload) };
    return typeof payload.exp === "number" ? { client, expiresAt: payload.exp * 1000 } : { client };
  };
  return { enabled: true, verifyToken, verify: async (token) => (await verifyToken(token)).client };
}

/** Reads and checks a JWKS file: JSON `{ keys: [...] }` holding public keys only. */
function readJwksFile(path: string): JSONWebKeySet {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`Client tokens: cannot read the JWKS file ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse messages quote the text; keep file contents out of logs.
    throw new Error(`Client tokens: the JWKS file ${path} is not valid JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new Error(`Client tokens: the JWKS file ${path} must be JSON { "keys": [...] } with at least one key`);
  }
  for (const key of keys as Array<Record<string, unknown> | null>) {
    if (typeof key !== "object" || key === null || key.kty === "oct" || "d" in key) {
      throw new Error(`Client tokens: the JWKS file ${path} must hold public keys only`);
    }
  }
  return parsed as JSONWebKeySet;
}

function unauthenticated(message: string): AppError {
  return new AppError(ErrorCode.Unauthenticated, message);
}

/** Maps a verification failure to a short, safe refusal; the original stays on `cause` for logs. */
function refusal(error: unknown): AppError {
  let message = "Invalid token";
  if (error instanceof errors.JWTExpired) message = "Token expired";
  else if (error instanceof errors.JWSSignatureVerificationFailed) message = "Invalid token signature";
  else if (error instanceof errors.JWKSNoMatchingKey) message = "Unknown token signing key";
  else if (error instanceof errors.JOSEAlgNotAllowed) message = "Token algorithm not allowed";
  else if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") message = "Token is not yet valid";
    else if (error.claim === "iss") message = "Invalid token issuer";
    else if (error.claim === "aud") message = "Invalid token audience";
  } else if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || !(error instanceof errors.JOSEError)) {
    // The key source failed (JWKS unreachable or broken): still a refusal, never a downgrade.
    message = "Token could not be verified";
  }
  const refused = unauthenticated(message);
  refused.cause = error;
  return refused;
}

/** The token's own claims: everything but the registered ones, deep-copied without prototype keys. */
function extrasOf(payload: JWTPayload): ClientExtras {
  const extras: ClientExtras = {};
  for (const [key, value] of Object.entries(payload)) {
    if (REGISTERED_CLAIMS.has(key) || UNSAFE_KEYS.has(key)) continue;
    extras[key] = safeCopy(value, 1);
  }
  return extras;
}

function safeCopy(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_CLAIM_DEPTH) throw unauthenticated("Invalid token");
  if (Array.isArray(value)) return value.map((item) => safeCopy(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!UNSAFE_KEYS.has(key)) copy[key] = safeCopy(item, depth + 1);
  }
  return copy;
}
