import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientTokenSettings, type ClientTokenVerifier, createClientTokenVerifier } from "../../src/auth/client-tokens.js";
import { parseEnv } from "../../src/env.js";
import { AppError } from "../../src/errors.js";

const SECRET = "test-secret-that-is-long-enough-0123456789";
const secretKey = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function hs256(payload: JWTPayload, secret: Uint8Array = secretKey): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secret);
}

/** Runs `verify` expecting a refusal; checks it is a safe `UNAUTHENTICATED` AppError and returns it. */
async function refusal(verifier: ClientTokenVerifier, token: string): Promise<AppError> {
  const error = await verifier.verify(token).then(
    () => expect.fail("token was accepted"),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  expect(appError.code).toBe("UNAUTHENTICATED");
  expect(appError.details).toEqual({});
  if (token) expect(appError.message).not.toContain(token);
  expect(appError.message).not.toContain(SECRET);
  return appError;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "client-tokens-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("HS256 with a secret", () => {
  const verifier = createClientTokenVerifier({ secret: SECRET });

  it("turns a valid token into an authenticated client carrying only the custom claims", async () => {
    const token = await new SignJWT({ role: "editor", team: { id: 7, tags: ["a"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("user-42")
      .setIssuer("issuer")
      .setAudience("aud")
      .setIssuedAt()
      .setNotBefore("0s")
      .setExpirationTime("5m")
      .setJti("jti-1")
      .sign(secretKey);
    expect(verifier.enabled).toBe(true);
    await expect(verifier.verify(token)).resolves.toEqual({
      id: "user-42",
      authenticated: true,
      extras: { role: "editor", team: { id: 7, tags: ["a"] } },
    });
  });

  it("refuses an expired token", async () => {
    const token = await hs256({ sub: "u", exp: now() - 3600 });
    expect((await refusal(verifier, token)).message).toBe("Token expired");
  });

  it("refuses a token that is not valid yet", async () => {
    const token = await hs256({ sub: "u", nbf: now() + 3600 });
    expect((await refusal(verifier, token)).message).toBe("Token is not yet valid");
  });

  it("refuses a token signed with another secret", async () => {
    const token = await hs256({ sub: "u" }, new TextEncoder().encode("another-secret-that-is-long-enough-9876"));
    expect((await refusal(verifier, token)).message).toBe("Invalid token signature");
  });

  it("refuses a token whose payload was changed after signing", async () => {
    const [header, , signature] = (await hs256({ sub: "u" })).split(".");
    const forged = Buffer.from(JSON.stringify({ sub: "admin" })).toString("base64url");
    expect((await refusal(verifier, `${header}.${forged}.${signature}`)).message).toBe("Invalid token signature");
  });

  it("refuses a token without a usable sub", async () => {
    expect((await refusal(verifier, await hs256({ role: "x" }))).message).toBe("Token is missing the sub claim");
    expect((await refusal(verifier, await hs256({ sub: "" }))).message).toBe("Token is missing the sub claim");
    expect((await refusal(verifier, await hs256({ sub: "x".repeat(256) }))).message).toBe("Token sub claim is too long");
    await refusal(verifier, await hs256({ sub: 12 } as unknown as JWTPayload));
    await expect(verifier.verify(await hs256({ sub: "x".repeat(255) }))).resolves.toMatchObject({ id: "x".repeat(255) });
  });

  it("refuses unsigned (alg none) tokens", async () => {
    const unsecured = new UnsecuredJWT({ sub: "u" }).encode();
    expect((await refusal(verifier, unsecured)).message).toBe("Token algorithm not allowed");
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const payload = Buffer.from(JSON.stringify({ sub: "u" })).toString("base64url");
    expect((await refusal(verifier, `${header}.${payload}.`)).message).toBe("Token algorithm not allowed");
    const [, , signature] = (await hs256({ sub: "u" })).split(".");
    await refusal(verifier, `${header}.${payload}.${signature}`);
  });

  it("refuses malformed tokens", async () => {
    for (const token of ["", "not-a-jwt", "a.b.c", "x".repeat(20_000)]) {
      expect((await refusal(verifier, token)).message).toBe("Invalid token");
    }
    const deep = JSON.parse("[".repeat(40) + "]".repeat(40)) as unknown;
    expect((await refusal(verifier, await hs256({ sub: "u", deep }))).message).toBe("Invalid token");
  });

  it("does not let __proto__ or constructor claims pollute anything", async () => {
    const claims = JSON.parse(
      '{"sub":"u","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},' +
        '"nested":{"__proto__":{"polluted":true},"ok":1},"list":[{"__proto__":{"polluted":true}}]}',
    ) as JWTPayload;
    const client = await verifier.verify(await hs256(claims));
    const extras = client.extras as Record<string, unknown>;
    expect(Object.getPrototypeOf(extras)).toBe(Object.prototype);
    expect(Object.keys(extras).sort()).toEqual(["list", "nested"]);
    expect(extras).toEqual({ nested: { ok: 1 }, list: [{}] });
    expect(Object.hasOwn(extras.nested as object, "__proto__")).toBe(false);
    expect(extras.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A later Object.assign of the extras must not reach a prototype either.
    expect((Object.assign({}, extras.nested) as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("checks issuer and audience when configured", async () => {
    const strict = createClientTokenVerifier({ secret: SECRET, issuer: "https://id.example", audience: "realtime" });
    const good = await hs256({ sub: "u", iss: "https://id.example", aud: ["other", "realtime"] });
    await expect(strict.verify(good)).resolves.toMatchObject({ id: "u", extras: {} });
    const wrongIssuer = await hs256({ sub: "u", iss: "https://evil.example", aud: "realtime" });
    expect((await refusal(strict, wrongIssuer)).message).toBe("Invalid token issuer");
    const wrongAudience = await hs256({ sub: "u", iss: "https://id.example", aud: "other" });
    expect((await refusal(strict, wrongAudience)).message).toBe("Invalid token audience");
    expect((await refusal(strict, await hs256({ sub: "u" }))).message).toBe("Invalid token issuer");
  });

  it("refuses a secret shorter than 32 characters", () => {
    expect(() => createClientTokenVerifier({ secret: "short" })).toThrow(/at least 32 characters/);
  });
});

describe("without a key source", () => {
  it("is disabled and refuses every token instead of downgrading it", async () => {
    const verifier = createClientTokenVerifier({});
    expect(verifier.enabled).toBe(false);
    const error = await refusal(verifier, await hs256({ sub: "u" }));
    expect(error.message).toBe("Token authentication is not configured");
  });

  it("refuses two key sources at once", () => {
    expect(() => createClientTokenVerifier({ secret: SECRET, jwksFile: "/nowhere.json" })).toThrow(/only one/);
    expect(() => createClientTokenVerifier({ jwksUrl: "http://127.0.0.1/", jwksFile: "/nowhere.json" })).toThrow(/only one/);
  });
});

describe.each(["RS256", "ES256"] as const)("%s with a JWKS file", (alg) => {
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let settings: ClientTokenSettings;

  beforeAll(async () => {
    keys = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: "k1", alg, use: "sig" };
    const file = join(dir, `${alg}.json`);
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    settings = { jwksFile: file };
  });

  it("accepts a token signed with the private key", async () => {
    const verifier = createClientTokenVerifier(settings);
    const token = await new SignJWT({ plan: "pro" })
      .setProtectedHeader({ alg, kid: "k1" })
      .setSubject("device-9")
      .setExpirationTime("1m")
      .sign(keys.privateKey);
    await expect(verifier.verify(token)).resolves.toEqual({ id: "device-9", authenticated: true, extras: { plan: "pro" } });
  });

  it("refuses an HS256 token signed with the public key's bytes", async () => {
    const verifier = createClientTokenVerifier(settings);
    const publicPem = await exportSPKI(keys.publicKey);
    const publicJwk = JSON.stringify(await exportJWK(keys.publicKey));
    for (const bytes of [publicPem, publicJwk]) {
      const token = await new SignJWT({ sub: "admin" })
        .setProtectedHeader({ alg: "HS256", kid: "k1" })
        .sign(new TextEncoder().encode(bytes));
      expect((await refusal(verifier, token)).message).toBe("Token algorithm not allowed");
    }
  });

  it("refuses a token signed by another key", async () => {
    const verifier = createClientTokenVerifier(settings);
    const other = await generateKeyPair(alg);
    const token = await new SignJWT({ sub: "u" }).setProtectedHeader({ alg, kid: "k1" }).sign(other.privateKey);
    expect((await refusal(verifier, token)).message).toBe("Invalid token signature");
  });
});

describe("JWKS file checks at start", () => {
  it("refuses missing, malformed, symmetric and private-key files", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const cases: Record<string, string> = {
      "not-json.json": "{ nope",
      "no-keys.json": JSON.stringify({ keys: [] }),
      "oct.json": JSON.stringify({ keys: [{ kty: "oct", k: Buffer.from(SECRET).toString("base64url") }] }),
      "private.json": JSON.stringify({ keys: [await exportJWK(privateKey)] }),
    };
    expect(() => createClientTokenVerifier({ jwksFile: join(dir, "missing.json") })).toThrow(/cannot read.*ENOENT/);
    for (const [name, content] of Object.entries(cases)) {
      const file = join(dir, name);
      writeFileSync(file, content);
      expect(() => createClientTokenVerifier({ jwksFile: file }), name).toThrow(/JWKS file/);
    }
  });
});

describe("JWKS URL", () => {
  let server: Server;
  let url: string;
  let privateKey: CryptoKey;
  let requests = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair("ES256");
    privateKey = pair.privateKey;
    const body = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "remote", alg: "ES256" }] });
    server = createServer((_req, res) => {
      requests += 1;
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("verifies tokens with keys fetched from the URL, and caches them", async () => {
    const verifier = createClientTokenVerifier({ jwksUrl: url, issuer: "idp", audience: "realtime" });
    const sign = (sub: string) =>
      new SignJWT({ sub, iss: "idp", aud: "realtime", scope: "read" })
        .setProtectedHeader({ alg: "ES256", kid: "remote" })
        .setExpirationTime("1m")
        .sign(privateKey);
    await expect(verifier.verify(await sign("a"))).resolves.toEqual({ id: "a", authenticated: true, extras: { scope: "read" } });
    await expect(verifier.verify(await sign("b"))).resolves.toMatchObject({ id: "b" });
    expect(requests).toBe(1);
    const hs = await hs256({ sub: "a", iss: "idp", aud: "realtime" });
    expect((await refusal(verifier, hs)).message).toBe("Token algorithm not allowed");
  });

  it("refuses tokens when the JWKS cannot be fetched", async () => {
    const down = createServer();
    await new Promise<void>((resolve) => down.listen(0, "127.0.0.1", resolve));
    const port = (down.address() as AddressInfo).port;
    await new Promise<void>((resolve) => down.close(() => resolve()));
    const verifier = createClientTokenVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    const token = await new SignJWT({ sub: "u" }).setProtectedHeader({ alg: "ES256" }).sign(privateKey);
    expect((await refusal(verifier, token)).message).toBe("Token could not be verified");
  });
});

describe("environment", () => {
  it("validates the JWT variables", () => {
    expect(() => parseEnv({ JWT_SECRET: "short" })).toThrow(/JWT_SECRET: must be at least 32 characters/);
    expect(() => parseEnv({ JWT_JWKS_URL: "ftp://keys.example/jwks" })).toThrow(/JWT_JWKS_URL/);
    expect(() => parseEnv({ JWT_SECRET: SECRET, JWT_JWKS_URL: "https://keys.example/jwks" })).toThrow(/not both/);
    expect(() => parseEnv({ JWT_SECRET: SECRET, JWT_JWKS_FILE: "./jwks.json" })).toThrow(/not both/);
    expect(() => parseEnv({ JWT_JWKS_URL: "https://keys.example/jwks", JWT_JWKS_FILE: "./jwks.json" })).toThrow(/not both/);
    expect(parseEnv({ JWT_JWKS_URL: "https://keys.example/jwks", JWT_ISSUER: "idp", JWT_AUDIENCE: "rt" })).toMatchObject({
      JWT_JWKS_URL: "https://keys.example/jwks",
      JWT_ISSUER: "idp",
      JWT_AUDIENCE: "rt",
    });
  });
});
