import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keptUrl, MAX_RESPONSE_EXCERPT_BYTES, textExcerpt } from "../../src/triggers/run/records.js";
import { assertProperty } from "../helpers/property.js";

// What an AFTER run's attempt record keeps of each webhook call: a response excerpt of at most 1 KiB
// cut between characters, and the URL without anything that may hold a secret.

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

describe("attempt records of AFTER runs", () => {
  it("keeps the longest prefix of a body that fits in the excerpt's bytes, cut between characters", () => {
    assertProperty(
      fc.property(
        fc.string({
          unit: fc.oneof(fc.constantFrom("a", "é", "€", "😀", "\ud800", "\udc00"), fc.string({ unit: "binary" })),
          maxLength: 1500,
        }),
        fc.integer({ min: 0, max: 64 }),
        (text, maxBytes) => {
          const { text: kept, truncated } = textExcerpt(text, maxBytes);
          expect(text.startsWith(kept)).toBe(true);
          expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(maxBytes);
          expect(truncated).toBe(kept.length < text.length);
          if (truncated) {
            // Never inside a surrogate pair, and nothing more would fit.
            if (kept.length > 0)
              expect(isHighSurrogate(kept.charCodeAt(kept.length - 1)) && isLowSurrogate(text.charCodeAt(kept.length))).toBe(false);
            const next = String.fromCodePoint(text.codePointAt(kept.length)!);
            expect(Buffer.byteLength(kept + next)).toBeGreaterThan(maxBytes);
          }
        },
      ),
    );
    expect(MAX_RESPONSE_EXCERPT_BYTES).toBe(1024);
    expect(textExcerpt("x".repeat(1024))).toEqual({ text: "x".repeat(1024), truncated: false });
    expect(textExcerpt("x".repeat(1025))).toEqual({ text: "x".repeat(1024), truncated: true });
    expect(textExcerpt(`${"x".repeat(1022)}😀`)).toEqual({ text: "x".repeat(1022), truncated: true });
  });

  it("keeps a URL's origin and path only: no userinfo, query string or fragment", () => {
    expect(keptUrl("https://user:pass@hooks.example.com:8443/a/b?token=s3cret&x=1#frag")).toBe("https://hooks.example.com:8443/a/b");
    expect(keptUrl("http://127.0.0.1:9/hook?key=k")).toBe("http://127.0.0.1:9/hook");
    expect(keptUrl("HTTP://Example.COM")).toBe("http://example.com/");
    for (const bad of ["not a url", "", "ftp://example.com/x?secret=1", "javascript:alert(1)", null]) {
      expect(keptUrl(bad)).toBe("(not a valid http URL)");
    }
    expect(keptUrl(`https://example.com/${"p".repeat(5000)}`)).toBe(`https://example.com/${"p".repeat(2047)}…`);
    assertProperty(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string(), (url, secret) => {
        const parsed = new URL(url);
        parsed.username = "someone";
        parsed.searchParams.set("secret", secret);
        const kept = keptUrl(parsed.href);
        expect(kept).not.toContain("?");
        expect(kept).not.toContain("#");
        expect(kept).not.toContain("someone@");
        expect(kept.startsWith(parsed.origin)).toBe(true);
      }),
    );
  });
});
