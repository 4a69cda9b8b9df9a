/**
 * Membership in-process against a model: a client is a member of a channel from its first join until
 * it has left as many times as it joined (or left with `all`), and every view of the membership
 * (member, has, members, all, counts, channelsWithPrefix, channelCount) agrees with the model.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Membership } from "../../src/realtime/membership.js";
import type { RealtimeClient } from "../../src/realtime/types.js";
import { assertProperty } from "../helpers/property.js";

const CHANNELS = ["room:a", "room:b", "lobby", "roomy"];
const CLIENTS = ["c1", "c2", "c3"];

function who(id: string, version = 0): RealtimeClient {
  return { id, authenticated: version > 0, extras: { version } };
}

const operation = fc.oneof(
  fc.record({
    kind: fc.constant("add" as const),
    channel: fc.constantFrom(...CHANNELS),
    id: fc.constantFrom(...CLIENTS),
    version: fc.nat(5),
  }),
  fc.record({
    kind: fc.constant("remove" as const),
    channel: fc.constantFrom(...CHANNELS),
    id: fc.constantFrom(...CLIENTS),
    all: fc.boolean(),
  }),
);

describe("Membership", () => {
  it("agrees with a model of joins per client and channel, whatever the joins and leaves", () => {
    assertProperty(
      fc.property(
        fc.array(operation, { maxLength: 60 }),
        fc.constantFrom("", "room", "room:", "lobby", "x"),
        fc.nat(5),
        (operations, prefix, first) => {
          const membership = new Membership();
          // channel -> client id -> { client, joins }, in join order
          const model = new Map<string, Map<string, { client: RealtimeClient; joins: number }>>();
          for (const op of operations) {
            const members = model.get(op.channel);
            const current = members?.get(op.id);
            if (op.kind === "add") {
              const client = who(op.id, op.version);
              expect(membership.add(op.channel, client)).toBe(current === undefined);
              if (current) {
                current.joins += 1;
                current.client = client;
              } else {
                if (!members) model.set(op.channel, new Map());
                model.get(op.channel)!.set(op.id, { client, joins: 1 });
              }
            } else {
              const gone = current !== undefined && (op.all || current.joins === 1);
              expect(membership.remove(op.channel, op.id, op.all)).toBe(gone);
              if (current && !gone) current.joins -= 1;
              if (gone) {
                members!.delete(op.id);
                if (members!.size === 0) model.delete(op.channel);
              }
            }
          }
          let memberships = 0;
          for (const channel of CHANNELS) {
            const members = model.get(channel);
            memberships += members?.size ?? 0;
            expect(membership.members(channel)).toEqual([...(members?.values() ?? [])].map((m) => m.client));
            for (const id of CLIENTS) {
              expect(membership.has(channel, id)).toBe(members?.has(id) ?? false);
              expect(membership.member(channel, id)).toEqual(members?.get(id)?.client);
            }
          }
          expect(membership.counts()).toEqual({ channels: model.size, memberships });
          expect([...membership.all()]).toEqual(
            [...model.entries()].map(([channel, members]) => ({ channel, clients: [...members.values()].map((m) => m.client) })),
          );
          for (const id of CLIENTS) {
            expect(membership.channelCount(id)).toBe([...model.values()].filter((members) => members.has(id)).length);
          }
          const named = [...model.keys()].filter((channel) => channel.startsWith(prefix)).sort();
          expect(membership.channelsWithPrefix(prefix, first)).toEqual(
            named.slice(0, first).map((channel) => ({ channel, members: model.get(channel)!.size })),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps a client that joined twice a member after one leave, and lets it go after the second", () => {
    const membership = new Membership();
    expect(membership.add("room", who("c1"))).toBe(true);
    expect(membership.add("room", who("c1", 1))).toBe(false);
    expect(membership.remove("room", "c1")).toBe(false);
    expect(membership.member("room", "c1")).toEqual(who("c1", 1));
    expect(membership.channelCount("c1")).toBe(1);
    expect(membership.remove("room", "c1")).toBe(true);
    expect(membership.has("room", "c1")).toBe(false);
    expect(membership.member("room", "c1")).toBeUndefined();
    expect(membership.members("room")).toEqual([]);
    expect(membership.channelCount("c1")).toBe(0);
    expect(membership.counts()).toEqual({ channels: 0, memberships: 0 });
    expect(membership.remove("room", "c1")).toBe(false);
  });

  it("undoes every join at once with all, and leaves the client's other channels alone", () => {
    const membership = new Membership();
    membership.add("room", who("c1"));
    membership.add("room", who("c1"));
    membership.add("room", who("c1"));
    membership.add("hall", who("c1"));
    membership.add("room", who("c2"));
    expect(membership.remove("room", "c1", true)).toBe(true);
    expect(membership.members("room")).toEqual([who("c2")]);
    expect(membership.channelCount("c1")).toBe(1);
    expect(membership.has("hall", "c1")).toBe(true);
    expect(membership.remove("room", "c1", true)).toBe(false);
    expect(membership.remove("nowhere", "c1", true)).toBe(false);
    expect(membership.counts()).toEqual({ channels: 2, memberships: 2 });
  });

  it("lists channels by prefix in name order, at most first of them, with their member counts", () => {
    const membership = new Membership();
    membership.add("room:b", who("c1"));
    membership.add("room:a", who("c1"));
    membership.add("room:a", who("c2"));
    membership.add("lobby", who("c3"));
    membership.add("room:c", who("c3"));
    expect(membership.channelsWithPrefix("room:", 10)).toEqual([
      { channel: "room:a", members: 2 },
      { channel: "room:b", members: 1 },
      { channel: "room:c", members: 1 },
    ]);
    expect(membership.channelsWithPrefix("room:", 2)).toEqual([
      { channel: "room:a", members: 2 },
      { channel: "room:b", members: 1 },
    ]);
    expect(membership.channelsWithPrefix("lob", 0)).toEqual([]);
    expect(membership.channelsWithPrefix("", 10).map((c) => c.channel)).toEqual(["lobby", "room:a", "room:b", "room:c"]);
  });
});
