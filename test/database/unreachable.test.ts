import { once } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isDatabaseUnreachable, isDriverUnreachable, openDatabase } from "../../src/db.js";

/**
 * A PostgreSQL server that refuses every connection at startup with the given SQLSTATE, as a real
 * one does while it starts up (57P03) or shuts down (57P01): it reads the startup message and
 * answers with an ErrorResponse, then closes.
 */
async function refusingPostgres(code: string, message: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.once("data", () => {
      const fields = [`SFATAL`, `VFATAL`, `C${code}`, `M${message}`].map((field) => Buffer.from(`${field}\0`));
      const body = Buffer.concat([...fields, Buffer.from([0])]);
      const header = Buffer.alloc(5);
      header.write("E", 0);
      header.writeInt32BE(body.length + 4, 1);
      socket.end(Buffer.concat([header, body]));
    });
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/test`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** What Prisma and the pg driver each throw for `SELECT 1` against a server that refuses with `code`. */
async function errorsFrom(code: string, message: string): Promise<{ prismaError: unknown; driverError: unknown }> {
  const server = await refusingPostgres(code, message);
  closers.push(server.close);
  const database = await openDatabase(server.url);
  closers.push(() => database.close());
  if (database.driver.provider !== "postgresql") throw new Error("expected PostgreSQL");
  const failure = (error: unknown) => error;
  const prismaError = await database.prisma.$queryRawUnsafe("SELECT 1").then(() => null, failure);
  const driverError = await database.driver.pool.query("SELECT 1").then(() => null, failure);
  return { prismaError, driverError };
}

describe("a database error", () => {
  it.each([
    ["57P03", "the database system is starting up"],
    ["57P01", "terminating connection due to administrator command"],
    ["08006", "connection failure"],
  ])("from a PostgreSQL server that answers %s counts as unreachable, through Prisma and through the driver", async (code, message) => {
    const { prismaError, driverError } = await errorsFrom(code, message);
    expect(prismaError).toBeInstanceOf(Error);
    expect(isDatabaseUnreachable(prismaError)).toBe(true);
    expect((driverError as { code?: string }).code).toBe(code);
    expect(isDriverUnreachable(driverError)).toBe(true);
  });

  it("of a query that failed on a reachable server does not count as unreachable", async () => {
    const { prismaError, driverError } = await errorsFrom("42P01", 'relation "missing" does not exist');
    expect(prismaError).toBeInstanceOf(Error);
    expect(isDatabaseUnreachable(prismaError)).toBe(false);
    expect((driverError as { code?: string }).code).toBe("42P01");
    expect(isDriverUnreachable(driverError)).toBe(false);
  });
});
