/**
 * Property runs for every fast-check test: a fresh seed each time (`PROPERTY_SEED` replays one, and
 * `PROPERTY_PATH` goes straight to a counterexample, except for fc.commands, which replay from the
 * seed), a time limit that fails the test when it cuts the run short instead of passing after
 * whatever ran, and a failure message that says how to replay.
 */
import { randomInt } from "node:crypto";
import fc from "fast-check";
import { expect } from "vitest";

/** This file's seed: `PROPERTY_SEED`, else a fresh one (each test file draws its own). */
export const PROPERTY_SEED = process.env.PROPERTY_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.PROPERTY_SEED);

/** What a test may set; the seed, the path and the handling of a time limit are the helper's. */
export type PropertyOptions<Ts> = Omit<
  fc.Parameters<Ts>,
  "seed" | "path" | "markInterruptAsFailure" | "skipAllAfterTimeLimit" | "reporter" | "asyncReporter"
>;

/**
 * Runs a property like `fc.assert`, with {@link PROPERTY_SEED}. A run cut short by
 * `interruptAfterTimeLimit` fails. A failure reports the seed, the counterexample and the command
 * that replays it.
 */
export function assertProperty<Ts>(property: fc.IProperty<Ts>, options?: PropertyOptions<Ts>): void;
export function assertProperty<Ts>(property: fc.IAsyncProperty<Ts>, options?: PropertyOptions<Ts>): Promise<void>;
export function assertProperty<Ts>(
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  options: PropertyOptions<Ts> = {},
): void | Promise<void> {
  const parameters: fc.Parameters<Ts> = {
    ...options,
    seed: PROPERTY_SEED,
    path: process.env.PROPERTY_PATH,
    markInterruptAsFailure: true,
  };
  const { currentTestName, testPath } = expect.getState();
  const details = fc.check(property as fc.IAsyncProperty<Ts>, parameters) as fc.RunDetails<Ts> | Promise<fc.RunDetails<Ts>>;
  if (details instanceof Promise) return details.then((done) => report(done, testPath, currentTestName));
  report(details, testPath, currentTestName);
}

function report<Ts>(details: fc.RunDetails<Ts>, testPath: string | undefined, testName: string | undefined): void {
  if (!details.failed) return;
  const file = testPath === undefined ? "<test file>" : testPath.replace(`${process.cwd()}/`, "");
  const path =
    details.counterexamplePath === null
      ? ""
      : `\n(PROPERTY_PATH=${details.counterexamplePath} as well goes straight to the counterexample, except in fc.commands sequences)`;
  const name = testName
    ?.split(" > ")
    .at(-1)
    ?.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replaceAll("'", "'\\''");
  const filter = name === undefined ? "" : ` -t '${name}'`;
  const summary = fc.defaultReportMessage(details) ?? `failed with seed ${details.seed}`;
  throw new Error(`${summary}\nReplay: PROPERTY_SEED=${details.seed} npx vitest run ${file}${filter}${path}`, {
    cause: details.errorInstance,
  });
}
