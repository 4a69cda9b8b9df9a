import type { Delivery, Exit } from "./cluster.js";
import type { Member, Observation, SendRecord } from "./workload.js";

/** A history entry as read back at the end of a run. */
export interface StoredEvent {
  readonly id: string;
  readonly seq: number | null;
  readonly n: number | null;
}

/** Everything the checker reads: what clients saw, what was stored, what the receiver got. */
export interface RunRecord {
  readonly sends: readonly SendRecord[];
  readonly observations: readonly Observation[];
  /** Per history channel, its history, oldest first. */
  readonly history: Readonly<Record<string, readonly StoredEvent[]>>;
  readonly historyChannels: readonly string[];
  readonly deliveries: readonly Delivery[];
  /** The BEFORE trigger's state counter of each channel (`count:<channel>`), or null when absent. */
  readonly counters: Readonly<Record<string, number | null>>;
  /** The AFTER trigger's state counter of each channel (`after:<channel>`): one per attempt, so at least the acknowledged. */
  readonly afterCounters: Readonly<Record<string, number | null>>;
  /** Per instance, per channel: the client ids `presence` lists. */
  readonly presence: readonly Readonly<Record<string, readonly string[]>>[];
  readonly members: readonly Member[];
  readonly exits: readonly Exit[];
}

/** One invariant's verdict. */
export interface Verdict {
  readonly invariant: string;
  readonly held: boolean;
  /** How many things were checked, and how many broke it. */
  readonly checked: number;
  readonly violations: number;
  /** A few violations, described. */
  readonly examples: readonly string[];
}

const EXAMPLES = 5;

function verdict(invariant: string, checked: number, problems: readonly string[]): Verdict {
  return { invariant, held: problems.length === 0, checked, violations: problems.length, examples: problems.slice(0, EXAMPLES) };
}

/** Counts of each key. */
function tally<T>(items: readonly T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** Checks every invariant of a run; see "Delivery guarantees" in docs/cluster.md for what each means. */
export function check(run: RunRecord): Verdict[] {
  const historyChannels = new Set(run.historyChannels);
  const acked = run.sends.filter((send) => send.outcome === "ack");
  const refused = run.sends.filter((send) => send.outcome === "error");
  const storedNs = new Map<string, Map<number, number>>();
  for (const [channel, events] of Object.entries(run.history)) {
    storedNs.set(channel, tally(events.flatMap((event) => (event.n === null ? [] : [event.n]))));
  }

  // 1. Acknowledged means stored, exactly once.
  const ackedOnHistory = acked.filter((send) => historyChannels.has(send.channel));
  const missing: string[] = [];
  for (const send of ackedOnHistory) {
    const count = storedNs.get(send.channel)?.get(send.n) ?? 0;
    if (count === 0)
      missing.push(`message ${send.n} on ${send.channel} (instance ${send.instance}, ${send.door}) acknowledged but not in history`);
  }
  const twice: string[] = [];
  for (const [channel, counts] of storedNs) {
    for (const [n, count] of counts) if (count > 1) twice.push(`message ${n} stored ${count} times in ${channel}`);
  }

  // 2. A message whose sender got an error reached nobody (and was not stored).
  const observedNs = tally(run.observations.flatMap((observation) => (observation.n === null ? [] : [observation.n])));
  const leaked: string[] = [];
  for (const send of refused) {
    const seen = observedNs.get(send.n) ?? 0;
    const stored = storedNs.get(send.channel)?.get(send.n) ?? 0;
    if (seen > 0 || stored > 0)
      leaked.push(
        `message ${send.n} on ${send.channel}: the sender got ${send.code}, yet it was received ${seen} times and stored ${stored} times`,
      );
  }

  // 3. Every acknowledged event's AFTER run delivered at least once, every attempt of a run under one webhook-id.
  const deliveredNs = new Map<number, Set<string>>();
  for (const delivery of run.deliveries) {
    const n = delivery.body.n;
    if (typeof n !== "number") continue;
    const ids = deliveredNs.get(n) ?? new Set<string>();
    ids.add(delivery.webhookId);
    deliveredNs.set(n, ids);
  }
  const undelivered: string[] = [];
  const splitRuns: string[] = [];
  for (const send of acked) {
    const ids = deliveredNs.get(send.n);
    if (!ids) undelivered.push(`message ${send.n} on ${send.channel} acknowledged, its AFTER run never reached the receiver`);
    else if (ids.size > 1) splitRuns.push(`message ${send.n} reached the receiver under ${ids.size} webhook-ids: ${[...ids].join(", ")}`);
  }
  const refusedRuns = refused
    .filter((send) => deliveredNs.has(send.n))
    .map((send) => `message ${send.n} refused (${send.code}), yet its AFTER run ran`);

  // 4. Per history channel, seq strictly increasing and unique in history.
  const disorder: string[] = [];
  for (const [channel, events] of Object.entries(run.history)) {
    const seqs = events.map((event) => event.seq);
    for (let i = 1; i < seqs.length; i++) {
      const [before, after] = [seqs[i - 1] ?? null, seqs[i] ?? null];
      if (before === null || after === null || after <= before) disorder.push(`${channel}: seq ${before} then ${after} in history`);
    }
  }

  // 5. No subscription receives one event twice; every gap a subscriber saw on a history channel is filled from history.
  const bySubscription = new Map<string, Observation[]>();
  for (const observation of run.observations) {
    const list = bySubscription.get(observation.subscription) ?? [];
    list.push(observation);
    bySubscription.set(observation.subscription, list);
  }
  const duplicates: string[] = [];
  const unfilled: string[] = [];
  const ackedBySeq = new Map<string, SendRecord>();
  for (const send of ackedOnHistory) if (typeof send.seq === "number") ackedBySeq.set(`${send.channel}#${send.seq}`, send);
  const storedSeqs = new Map<string, Set<number>>();
  for (const [channel, events] of Object.entries(run.history)) {
    storedSeqs.set(channel, new Set(events.flatMap((event) => (event.seq === null ? [] : [event.seq]))));
  }
  let gapsChecked = 0;
  for (const [subscription, observations] of bySubscription) {
    for (const [eventId, count] of tally(observations.map((observation) => observation.eventId))) {
      if (count > 1) duplicates.push(`${subscription} received event ${eventId} ${count} times`);
    }
    const channel = observations[0]!.channel;
    if (!historyChannels.has(channel)) continue;
    const seqs = observations.flatMap((observation) =>
      observation.action === "MESSAGE" && observation.seq !== null ? [observation.seq] : [],
    );
    if (seqs.length === 0) continue;
    const seen = new Set(seqs);
    for (let seq = Math.min(...seqs) + 1; seq < Math.max(...seqs); seq++) {
      if (seen.has(seq)) continue;
      gapsChecked++;
      const send = ackedBySeq.get(`${channel}#${seq}`);
      if (send && !storedSeqs.get(channel)?.has(seq))
        unfilled.push(`${subscription} missed ${channel} seq ${seq} (message ${send.n}, acknowledged) and history does not have it`);
    }
  }

  // 6. Presence converges: every instance lists exactly the subscribers connected at the end.
  const expected = new Map<string, Set<string>>();
  for (const member of run.members) {
    const set = expected.get(member.channel) ?? new Set<string>();
    set.add(member.clientId);
    expected.set(member.channel, set);
  }
  const diverged: string[] = [];
  let presenceChecked = 0;
  run.presence.forEach((perChannel, instance) => {
    for (const [channel, clients] of Object.entries(perChannel)) {
      presenceChecked++;
      const want = expected.get(channel) ?? new Set<string>();
      const got = new Set(clients);
      const extra = [...got].filter((id) => !want.has(id));
      const absent = [...want].filter((id) => !got.has(id));
      if (extra.length > 0 || absent.length > 0)
        diverged.push(
          `instance ${instance}, ${channel}: listed but gone: ${extra.join(" ") || "none"}; connected but not listed: ${absent.join(" ") || "none"}`,
        );
    }
  });

  // 7. No instance exits unless it was killed.
  const unexpectedExits = run.exits
    .filter((exit) => !exit.expected)
    .map(
      (exit) =>
        `instance ${exit.instance} exited on its own (code ${exit.code}, signal ${exit.signal}) at ${new Date(exit.at).toISOString()}`,
    );

  // 8. A trigger's `incr` counter counts every acknowledged event that ran it. It may count more: a
  // send whose outcome its sender never learnt, and one refused for an outage after its triggers ran
  // (state changes are made when the trigger runs; see "Delivery guarantees" in docs/cluster.md).
  const counterProblems: string[] = [];
  const ackedPerChannel = tally(acked.map((send) => send.channel));
  const uncertainPerChannel = tally(
    run.sends.filter((send) => send.outcome === "unknown" || send.code === "SERVICE_UNAVAILABLE").map((send) => send.channel),
  );
  for (const [channel, counter] of Object.entries(run.counters)) {
    const least = ackedPerChannel.get(channel) ?? 0;
    const most = least + (uncertainPerChannel.get(channel) ?? 0);
    const value = counter ?? 0;
    if (value < least || value > most) counterProblems.push(`${channel}: counter ${counter ?? "absent"}, expected ${least}..${most}`);
  }

  // 9. An AFTER trigger's `incr` runs at least once per acknowledged event (once per attempt).
  const afterProblems: string[] = [];
  for (const [channel, counter] of Object.entries(run.afterCounters)) {
    const least = ackedPerChannel.get(channel) ?? 0;
    if ((counter ?? 0) < least) afterProblems.push(`${channel}: AFTER counter ${counter ?? "absent"}, acknowledged messages ${least}`);
  }

  // 10. The workload sends only valid messages: every refusal is an outage's, SERVICE_UNAVAILABLE (worth retrying).
  const untrue = refused
    .filter((send) => send.code !== "SERVICE_UNAVAILABLE")
    .map(
      (send) => `message ${send.n} on ${send.channel} (instance ${send.instance}, ${send.door}) refused with ${send.code}: ${send.message}`,
    );

  return [
    verdict("acknowledged messages are in history", ackedOnHistory.length, missing),
    verdict("no message is stored twice", ackedOnHistory.length, twice),
    verdict("a message whose sender got an error reached nobody", refused.length, leaked),
    verdict("every acknowledged event's AFTER run reached the receiver", acked.length, undelivered),
    verdict("an AFTER run's attempts share one webhook-id", acked.length, splitRuns),
    verdict("no AFTER run for a refused message", refused.length, refusedRuns),
    verdict(
      "seq strictly increases in history",
      Object.values(run.history).reduce((sum, events) => sum + events.length, 0),
      disorder,
    ),
    verdict("no subscription receives an event twice", run.observations.length, duplicates),
    verdict("every gap a subscriber saw is filled from history", gapsChecked, unfilled),
    verdict("presence converges to the connected subscribers", presenceChecked, diverged),
    verdict("no instance exits unless killed", run.exits.length, unexpectedExits),
    verdict("state counters count every acknowledged message", Object.keys(run.counters).length, counterProblems),
    verdict("AFTER triggers' state counters count every acknowledged message", Object.keys(run.afterCounters).length, afterProblems),
    verdict("every refusal is SERVICE_UNAVAILABLE (worth retrying)", refused.length, untrue),
  ];
}
