import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Logger } from "../logger.js";

/** The pages: URL path → HTML template under `web/`. */
const PAGES: Readonly<Record<string, string>> = { "/demo": "demo/index.html", "/admin": "admin/index.html" };

/** What esbuild bundles; a template refers to an entry as `/assets/<name>.<js|css>`. */
const ENTRY_POINTS: Readonly<Record<string, string>> = { demo: "demo/main.ts", admin: "admin/main.ts", style: "style.css" };

const ASSET_PREFIX = "/assets/";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

interface Asset {
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly type: string;
  readonly etag: string;
  /** Content-hashed assets never change under their URL; pages are revalidated on every load. */
  readonly immutable: boolean;
}

interface Bundle {
  readonly pages: ReadonlyMap<string, Asset>;
  readonly assets: ReadonlyMap<string, Asset>;
}

export interface WebHandlerOptions {
  /** Rebuilds on every page load (so edits under `web/` show without a restart), unminified, with source maps. */
  readonly development?: boolean;
  readonly logger?: Logger;
  /** The `web/` folder; found next to the sources (or the compiled `dist/`) by default. */
  readonly webDir?: string;
}

/**
 * Serves the browser pages: the demo chat room at `/demo`, the admin console at `/admin`, and their
 * bundles under `/assets/`. The TypeScript under `web/` is bundled with esbuild on the first request
 * (in memory, nothing to build beforehand) and kept; asset URLs carry a content hash, so assets are
 * cached for good and pages are revalidated with an ETag.
 *
 * @returns a request listener that answers and returns true for those paths, and returns false
 * (having done nothing) for any other request
 */
export function createWebHandler(options: WebHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const webDir = options.webDir ?? findWebDir();
  let bundle: Promise<Bundle> | null = null;
  const load = (page: boolean): Promise<Bundle> => {
    if (!bundle || (page && options.development)) {
      const building = buildBundle(webDir, options.development ?? false);
      bundle = building;
      building.catch(() => {
        if (bundle === building) bundle = null; // try again on the next request
      });
    }
    return bundle;
  };

  return (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const page = PAGES[path.replace(/\/(index\.html)?$/, "")] ? path.replace(/\/(index\.html)?$/, "") : null;
    if (page === null && !path.startsWith(ASSET_PREFIX)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("Method not allowed\n");
      return true;
    }
    load(page !== null).then(
      (built) => {
        const asset = page !== null ? built.pages.get(page) : built.assets.get(path);
        if (!asset) res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found\n");
        else send(req, res, asset, page !== null);
      },
      (error: unknown) => {
        options.logger?.error({ err: error }, "could not bundle the web pages");
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("The web pages could not be built; see the server log.\n");
      },
    );
    return true;
  };
}

function send(req: IncomingMessage, res: ServerResponse, asset: Asset, page: boolean): void {
  const headers: Record<string, string> = {
    "content-type": asset.type,
    etag: asset.etag,
    "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    "x-content-type-options": "nosniff",
    vary: "accept-encoding",
  };
  if (page) {
    headers["content-security-policy"] = contentSecurityPolicy(req.headers.host);
    headers["referrer-policy"] = "no-referrer";
    headers["x-frame-options"] = "DENY";
  }
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const gzip = asset.gzip && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzip ? asset.gzip! : asset.body;
  if (gzip) headers["content-encoding"] = "gzip";
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Scripts, styles and connections to this server only (the WebSocket named explicitly for older browsers). */
function contentSecurityPolicy(host: string | undefined): string {
  const sockets = host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? ` ws://${host} wss://${host}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

async function buildBundle(webDir: string, development: boolean): Promise<Bundle> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: webDir,
    entryPoints: ENTRY_POINTS,
    entryNames: "[name]-[hash]",
    outdir: "out", // nothing is written: outputs stay in memory
    write: false,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: !development,
    sourcemap: development ? "inline" : false,
    legalComments: "none",
    metafile: true,
    logLevel: "silent",
    tsconfig: join(webDir, "tsconfig.json"),
  });
  const assets = new Map<string, Asset>();
  const urls = new Map<string, string>(); // "/assets/demo.js" → "/assets/demo-<hash>.js"
  for (const file of result.outputFiles) {
    const url = ASSET_PREFIX + basename(file.path);
    assets.set(url, asset(Buffer.from(file.contents), extname(file.path), true));
  }
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    const entry = Object.entries(ENTRY_POINTS).find(([, source]) => source === meta.entryPoint)?.[0];
    if (entry) urls.set(`${ASSET_PREFIX}${entry}${extname(output)}`, ASSET_PREFIX + basename(output));
  }
  const pages = new Map<string, Asset>();
  for (const [path, template] of Object.entries(PAGES)) {
    let html = await readFile(join(webDir, template), "utf8");
    for (const [logical, hashed] of urls) html = html.replaceAll(`"${logical}"`, `"${hashed}"`);
    pages.set(path, asset(Buffer.from(html), ".html", false));
  }
  return { pages, assets };
}

function asset(body: Buffer, extension: string, immutable: boolean): Asset {
  return {
    body,
    gzip: body.length > 1024 ? gzipSync(body) : null,
    type: CONTENT_TYPES[extension] ?? "application/octet-stream",
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
    immutable,
  };
}

/** `web/` beside `src/` (running from source) or beside `dist/` (running the compiled server). */
function findWebDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "..", "..", "web"), join(here, "..", "..", "..", "web")];
  return candidates.find((dir) => existsSync(join(dir, "demo", "index.html"))) ?? candidates[0]!;
}
