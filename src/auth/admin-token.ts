import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError, ErrorCode } from "../errors.js";

/** Where the admin token is kept when the server generated it. */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, "admin-token");
}

/**
 * Returns the admin token: the configured one, or the one stored in the data folder, generating and
 * storing it (readable by the owner only, in a folder created owner-only) on first start; a stored
 * file is made owner-only again. `generated` tells the caller to say where it is.
 */
export function loadAdminToken(configured: string | undefined, dataDir: string): { token: string; generated: boolean } {
  if (configured) return { token: configured, generated: false };
  const path = adminTokenPath(dataDir);
  if (existsSync(path)) {
    chmodSync(path, 0o600); // a copy restored with looser permissions is tightened again
    return { token: readFileSync(path, "utf8").trim(), generated: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return { token, generated: true };
}

/** Compares a presented token with the admin token in constant time. */
export function isAdminToken(adminToken: string, presented: string | undefined | null): boolean {
  if (!presented) return false;
  const a = Buffer.from(adminToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Extracts the token from an `Authorization: Bearer <token>` header value; null when there is no
 * header. Any other header (another scheme, no scheme, no token, several tokens) is refused rather
 * than read as "no credentials": a client that meant to authenticate must not become anonymous.
 * @throws AppError `UNAUTHENTICATED` when the header is present but not exactly one bearer token
 */
export function bearerToken(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const match = /^Bearer +([^\s,]+) *$/i.exec(header);
  if (!match) throw new AppError(ErrorCode.Unauthenticated, "Malformed Authorization header: expected `Bearer <token>`");
  return match[1]!;
}
