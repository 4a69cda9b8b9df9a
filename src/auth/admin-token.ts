import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Where the admin token is kept when the server generated it. */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, "admin-token");
}

/**
 * Returns the admin token: the configured one, or the one stored in the data folder, generating and
 * storing it (readable by the owner only) on first start. `generated` tells the caller to say where it is.
 */
export function loadAdminToken(configured: string | undefined, dataDir: string): { token: string; generated: boolean } {
  if (configured) return { token: configured, generated: false };
  const path = adminTokenPath(dataDir);
  if (existsSync(path)) return { token: readFileSync(path, "utf8").trim(), generated: false };
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(32).toString("base64url");
  writeFileSync(path, token + "\n", { mode: 0o600 });
  return { token, generated: true };
}

/** Compares a presented token with the admin token in constant time. */
export function isAdminToken(adminToken: string, presented: string | undefined | null): boolean {
  if (!presented) return false;
  const a = Buffer.from(adminToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Extracts the token from an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
