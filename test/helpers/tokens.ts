import { SignJWT } from "jose";

/** What a test client token carries besides its subject, and until when it is valid. */
export interface ClientTokenOptions {
  /** Custom claims (the server hands them to triggers as `client.extras`). */
  claims?: Record<string, unknown>;
  /** When it expires: a span from now as jose reads it ("1h", "1d") or seconds since the epoch. One hour by default. */
  expires?: string | number;
}

/** A client token for `sub`, signed with the HS256 `secret` a test server has as `JWT_SECRET`. */
export function clientToken(secret: string, sub: string, { claims = {}, expires = "1h" }: ClientTokenOptions = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(secret));
}
