import { type Logger, pino } from "pino";
import pretty from "pino-pretty";

/** How log entries are written: JSON lines, or a readable line each (see LOG_FORMAT in docs/reference.md). */
export type LogFormat = "pretty" | "json";

/**
 * Creates the server's structured logger. Credentials are redacted wherever they appear, in both
 * formats. Pretty lines are written synchronously, like the JSON ones, so none is lost at exit.
 */
export function createLogger(level: string, format: LogFormat = "json"): Logger {
  const options = {
    level,
    base: undefined,
    redact: {
      paths: ["authorization", "*.authorization", "*.headers.authorization", "authToken", "*.authToken", "adminToken", "*.adminToken"],
      censor: "[redacted]",
    },
  };
  if (format === "json") return pino(options);
  return pino(options, pretty({ sync: true, colorize: process.stdout.isTTY === true, translateTime: "SYS:HH:MM:ss.l" }));
}

export type { Logger };
