import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, describe, expect, it } from "vitest";

/** The browser the suites drive: Debian's `chromium` package, or `CHROMIUM_PATH`. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Where screenshots go (gitignored); CI keeps them as artifacts. */
export const SCREENSHOT_DIR = join(process.cwd(), "test-results", "web");

const IN_CI = process.env.CI === "true";

/**
 * `describe` for suites that need Chromium. Without it the suite is skipped, by name, with a warning;
 * in CI (`CI=true`) it fails instead, since `.ci/run` installs Chromium.
 */
export function describeBrowser(name: string, suite: () => void): void {
  if (existsSync(CHROMIUM_PATH)) {
    describe(name, suite);
  } else if (IN_CI) {
    describe(name, () => {
      it("needs Chromium", () => {
        throw new Error(`Chromium is missing at ${CHROMIUM_PATH}: CI must install it (apt-get install -y chromium, see .ci/run)`);
      });
    });
  } else {
    console.warn(`skipped, Chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium): ${name}`);
    describe.skip(name, suite);
  }
}

/** Launches headless Chromium with the flags this project's machines need. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Saves a full-page screenshot as test-results/web/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/**
 * Opens pages for the suite that calls it (at its top level): one Chromium for the suite, each page in
 * a context of its own (its own storage and WebSocket) with its console errors and uncaught exceptions
 * collected; after each test, the pages it closed must have had none.
 */
export function suitePages(viewport = { width: 1200, height: 900 }): (url: string) => Promise<Page> {
  let browser: Browser | undefined;
  let errors: string[] = [];
  afterEach(() => {
    const seen = errors;
    errors = [];
    expect(seen).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
  });
  return async (url) => {
    browser ??= await launchChromium();
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const collected = pageErrors(page);
    page.on("close", () => errors.push(...collected));
    await page.goto(url);
    return page;
  };
}

/** Collects the page's console errors and uncaught exceptions, so a test can assert there were none. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  return errors;
}
