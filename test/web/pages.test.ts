import { request } from "node:http";
import { beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let origin: string;
beforeAll(async () => {
  server = await startServer();
  origin = new URL(server.httpUrl).origin;
});

/** The asset URLs a page refers to. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]!);
}

/** A raw GET (fetch would decompress and hide content-encoding). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; length: number }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (response) => {
      let length = 0;
      response.on("data", (chunk: Buffer) => (length += chunk.length));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, length }));
    })
      .on("error", reject)
      .end();
  });
}

describe("the web pages", () => {
  it.each(["/demo", "/admin"])("serves %s as HTML that is revalidated, with a strict content security policy", async (path) => {
    const response = await fetch(origin + path);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://${new URL(origin).host}`);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await response.text();
    expect(html).toContain('<html lang="en">');
    expect(assetsOf(html)).toHaveLength(2); // a content-hashed stylesheet and script

    const again = await fetch(origin + path, { headers: { "if-none-match": response.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${origin}${path}/`)).status).toBe(200);
  });

  it("serves content-hashed bundles as immutable, gzipped when asked", async () => {
    const html = await (await fetch(`${origin}/demo`)).text();
    for (const asset of assetsOf(html)) {
      expect(asset).toMatch(/^\/assets\/(demo|style)-[A-Z0-9]+\.(js|css)$/);
      const response = await fetch(origin + asset);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe(
        asset.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
      );
      expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const plain = await rawGet(origin + asset, {});
      const gzipped = await rawGet(origin + asset, { "accept-encoding": "gzip" });
      expect(plain.headers["content-encoding"]).toBeUndefined();
      expect(gzipped.headers["content-encoding"]).toBe("gzip");
      expect(gzipped.length).toBeLessThan(plain.length);
    }
    const script = await (await fetch(origin + assetsOf(html).find((asset) => asset.endsWith(".js"))!)).text();
    expect(script).toContain("graphql-transport-ws"); // the graphql-ws client is bundled in
  });

  it("answers unknown assets with 404 and other methods with 405, and leaves every other path alone", async () => {
    expect((await fetch(`${origin}/assets/nothing-here.js`)).status).toBe(404);
    const post = await fetch(`${origin}/demo`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${origin}/demonstration`)).status).toBe(404); // not a page: Yoga's 404
    expect((await fetch(`${origin}/health`)).status).toBe(200);
    const graphql = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(await graphql.json()).toEqual({ data: { __typename: "Query" } });
  });
});
