import { createServer } from "node:net";

/**
 * A TCP port that was free a moment ago on 127.0.0.1. Shared by the tests (test/helpers), the
 * benchmark and the soak test (bench/), which start servers on ports of their own.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
