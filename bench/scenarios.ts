/**
 * The benchmark's scenarios, one fresh server each: what the load generator is told to do
 * (bench/load.ts) for every scenario of {@link BenchOptions}.
 */
import type { IdleConfig, IdleResult, LadderConfig, LadderResult } from "./load.js";
import type { RoomsConfig, RoomsResult } from "./load-rooms.js";
import { type BenchOptions, CHANNEL, KEEP_UP_SLACK_MS, LADDER, P99_LIMIT_MS } from "./options.js";
import type { Processes, RunningServer, StartServerOptions } from "./processes.js";
import type { SystemId } from "./shared.js";

/** Rounds of the paired per-message measurement: one step of each system per round. */
export const PAIRED_ROUNDS = 5;

/** The P+T trigger of the rooms workload is attached to every room. */
export const ROOMS_TRIGGER_CHANNEL = "room:*";

/** Runs scenarios against fresh servers started by `processes`. */
export class Scenarios {
  constructor(
    private readonly options: BenchOptions,
    private readonly processes: Processes,
  ) {}

  /** The load generator's configuration for a ladder on the bench channel. */
  ladderConfig(system: SystemId, server: RunningServer, subscribers: number, rates: readonly number[] = LADDER): Omit<LadderConfig, "out"> {
    const o = this.options;
    return {
      mode: "ladder",
      system,
      url: server.wsUrl,
      serverPid: server.pid,
      channel: CHANNEL,
      subscribers,
      rates,
      stepSeconds: o.stepSeconds,
      drainSeconds: o.drainSeconds,
      warmupSeconds: o.warmupSeconds,
      refineSteps: o.refineSteps,
      p99LimitMs: P99_LIMIT_MS,
      keepUpSlackMs: KEEP_UP_SLACK_MS,
      retryAboveOtherCores: 0.5,
      setupDeadlineSeconds: o.setupDeadlineSeconds,
      deadlineSeconds: o.ladderDeadlineSeconds,
      halfMaxStep: false,
    };
  }

  /** The load generator's configuration for the rooms workload. */
  roomsConfig(system: SystemId, server: RunningServer): Omit<RoomsConfig, "out"> {
    const { clients, roomSize, messages, warmupMessages, inFlight } = this.options.rooms;
    return {
      mode: "rooms",
      system,
      url: server.wsUrl,
      serverPid: server.pid,
      clients,
      roomSize,
      messages,
      warmupMessages,
      inFlight,
      deadlineSeconds: this.options.roomsDeadlineSeconds,
    };
  }

  /** The single-channel rate ladder at `subscribers` (then a step at half its max). */
  async ladder(system: SystemId, subscribers: number): Promise<LadderResult> {
    const server = await this.processes.startServer(system);
    const config = { ...this.ladderConfig(system, server, subscribers), halfMaxStep: true };
    return this.processes.runLoad(`${system}-ladder-${subscribers}`, config, server, config.setupDeadlineSeconds + config.deadlineSeconds);
  }

  /** Setup only: {@link BenchOptions.setupSubscribers} subscribers joining one channel until all are live. */
  async setup(system: SystemId): Promise<LadderResult> {
    const subscribers = this.options.setupSubscribers;
    const server = await this.processes.startServer(system);
    const config = { ...this.ladderConfig(system, server, subscribers, []), warmupSeconds: 0, refineSteps: 0 };
    return this.processes.runLoad(`${system}-setup-${subscribers}`, config, server, config.setupDeadlineSeconds + 30);
  }

  /** Idle connections: RSS per connection after the handshake, then with one subscription each. */
  async idle(system: SystemId): Promise<IdleResult> {
    const server = await this.processes.startServer(system);
    const config: Omit<IdleConfig, "out"> = {
      mode: "idle",
      system,
      url: server.wsUrl,
      serverPid: server.pid,
      connections: this.options.idleConnections,
      deadlineSeconds: this.options.idleDeadlineSeconds,
    };
    return this.processes.runLoad(`${system}-idle`, config, server, config.deadlineSeconds);
  }

  /**
   * The rooms workload (P+T: the trigger on `room:*`). `serverOptions` and `beforeStop` let the
   * profiler run the server under `--cpu-prof` and end it before it is killed.
   */
  async rooms(
    system: SystemId,
    serverOptions: StartServerOptions = {},
    beforeStop?: (server: RunningServer) => Promise<void>,
  ): Promise<RoomsResult> {
    const server = await this.processes.startServer(system, { ...serverOptions, triggerChannel: ROOMS_TRIGGER_CHANNEL });
    const config = this.roomsConfig(system, server);
    return this.processes.runLoad(
      `${system}-rooms`,
      config,
      server,
      config.deadlineSeconds,
      () => beforeStop?.(server) ?? Promise.resolve(),
    );
  }

  /** P or P+T alone: 1 subscriber at 1,000 messages/s, three steps: server CPU per published message. */
  async perMessage(system: SystemId): Promise<LadderResult> {
    const server = await this.processes.startServer(system);
    const config = { ...this.ladderConfig(system, server, 1, [1000, 1000, 1000]), refineSteps: 0 };
    return this.processes.runLoad(`${system}-per-message`, config, server, config.setupDeadlineSeconds + config.deadlineSeconds);
  }

  /**
   * P and P+T side by side: both servers run (pinned to the same core) while one step of 1
   * subscriber at 1,000 messages/s alternates between them, {@link PAIRED_ROUNDS} rounds, the first
   * server of a round alternating too. Measured minutes apart, the two costs differed by more
   * than the trigger's cost whenever other work on the machine changed in between; paired steps
   * share that noise. Each system's result holds its steps of every round.
   */
  async perMessagePaired(): Promise<Record<"P" | "PT", LadderResult>> {
    const servers = { P: await this.processes.startServer("P"), PT: await this.processes.startServer("PT") };
    try {
      const results: Partial<Record<"P" | "PT", LadderResult>> = {};
      for (let round = 0; round < PAIRED_ROUNDS; round++) {
        for (const system of round % 2 === 0 ? (["P", "PT"] as const) : (["PT", "P"] as const)) {
          const server = servers[system];
          const config = { ...this.ladderConfig(system, server, 1, [1000]), refineSteps: 0 };
          const result = await this.processes.runLoad<LadderResult>(
            `${system}-per-message-${round}`,
            config,
            server,
            config.setupDeadlineSeconds + config.deadlineSeconds,
            undefined,
            { keepServer: true },
          );
          const earlier = results[system];
          results[system] = earlier ? { ...earlier, steps: [...earlier.steps, ...result.steps] } : result;
        }
      }
      return results as Record<"P" | "PT", LadderResult>;
    } finally {
      await Promise.all([servers.P.stop(), servers.PT.stop()]);
    }
  }
}
