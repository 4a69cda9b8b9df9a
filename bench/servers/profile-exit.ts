/**
 * Preloaded (`--import`) into a server profiled with `node --cpu-prof`: SIGUSR2 exits at once, so
 * V8 writes the profile without the server's graceful shutdown (which, with 1,000 subscribers,
 * would publish a LEAVE per socket to every remaining subscriber first).
 */
process.once("SIGUSR2", () => process.exit(0));
