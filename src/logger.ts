import { type Logger, pino } from "pino";

/** Creates the server's structured logger. Credentials are redacted wherever they appear. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: undefined,
    redact: {
      paths: ["authorization", "*.authorization", "*.headers.authorization", "authToken", "*.authToken", "adminToken", "*.adminToken"],
      censor: "[redacted]",
    },
  });
}

export type { Logger };
