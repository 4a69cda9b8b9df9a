import type { RedisConnection } from "../../realtime/redis.js";
import {
  beyondMaxCount,
  notWholeNumber,
  type StatePurgeOptions,
  type TriggerStateEntry,
  type TriggerStateStore,
  tooManyKeys,
} from "./state.js";
import { MAX_COUNT } from "./statements.js";

/*
 * Trigger state under `<REDIS_PREFIX>trigger-state:`, the kind of key first, so that no key a client
 * chooses can pass for another kind or another trigger's key:
 *
 * - `expiry:<triggerId>`: a sorted set of the trigger's keys by expiry time (+inf for none), which
 *   counts live keys and finds expired ones;
 * - `keys:<triggerId>`: a sorted set of the same keys (all scores 0), listing them by prefix in order;
 * - `value:<triggerId>:<key>`: a string per key (JSON text, with Redis's own expiry, so an expired
 *   key reads as null at once). Trigger ids hold no `:`, so the key is whatever follows the second `:`.
 *
 * A client's text only ever follows `value:<triggerId>:`, so it never matches the purge's pattern
 * (`expiry:*`) nor names a set. Every write is one Lua script, so it is atomic across instances;
 * each script first drops up to 1000 expired keys from both sets, and a background purge does the
 * same for triggers that stopped writing. Versions before this layout kept `tstate:<triggerId>:exp`,
 * `tstate:<triggerId>:keys` and `tstate:<triggerId>:v:<key>`: {@link RedisStateStore.moveLegacyKeys}
 * moves them.
 */

const ROOT = "trigger-state:";

const PURGE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
`;

/** Creates KEYS[1] (member ARGV[1]) with value `v` and expiry ARGV[3] ms, unless the trigger is full. */
const CREATE = `
local function create(v)
  if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[4]) then return redis.error_reply('TOO_MANY_KEYS') end
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], v, 'PX', ttl)
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
  else
    redis.call('SET', KEYS[1], v)
    redis.call('ZADD', KEYS[2], 'inf', ARGV[1])
  end
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  return nil
end
`;

/** KEYS: value, expiry, keys; ARGV: key, json, ttl ms (0 for none), max keys. */
const PUT = `${PURGE}${CREATE}
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[1])
end
local failed = create(ARGV[2])
if failed then return failed end
return 1
`;

/** KEYS: value, expiry, keys; ARGV: key, by, ttl ms (0 for none), max keys. */
const INCR = `${PURGE}${CREATE}
local current = redis.call('GET', KEYS[1])
if current then
  if not string.match(current, '^%-?%d+$') or #current > 17 or math.abs(tonumber(current)) > ${MAX_COUNT} then
    return redis.error_reply('NOT_INTEGER')
  end
  if math.abs(tonumber(current) + tonumber(ARGV[2])) > ${MAX_COUNT} then return redis.error_reply('BEYOND_MAX') end
  return redis.call('INCRBY', KEYS[1], ARGV[2])
end
local failed = create(ARGV[2])
if failed then return failed end
return tonumber(ARGV[2])
`;

/** KEYS: expiry, keys, then value keys; ARGV: their members. Returns how many values existed. */
const REMOVE = `
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('DEL', KEYS[i + 2])
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return removed
`;

/**
 * Moves some keys of a trigger from the legacy layout. KEYS: legacy expiry set, legacy keys set,
 * expiry set, keys set, then per member its legacy value key and its value key; ARGV: the members.
 * A value a current instance wrote meanwhile wins over the legacy one; a legacy value keeps its
 * expiry. Removes the legacy sets once they are empty.
 */
const MOVE = `
for i = 1, #ARGV do
  local legacy, current = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  if redis.call('EXISTS', legacy) == 1 and redis.call('EXISTS', current) == 0 then
    redis.call('RENAME', legacy, current)
    local at = redis.call('PEXPIRETIME', current)
    if at > 0 then redis.call('ZADD', KEYS[3], at, ARGV[i]) else redis.call('ZADD', KEYS[3], 'inf', ARGV[i]) end
    redis.call('ZADD', KEYS[4], 0, ARGV[i])
  else
    redis.call('DEL', legacy)
  end
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
`;

/** Members fetched per round when clearing or moving. */
const PAGE = 500;

/** How often each instance drops expired keys from the sets of triggers that have not written since. */
const PURGE_INTERVAL_MS = 60_000;

/** A Redis glob pattern matching `text` literally. */
function literal(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** Trigger state in Redis, shared by every instance (see the layout above). */
export class RedisStateStore implements TriggerStateStore {
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly root: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly purging: StatePurgeOptions = {},
  ) {
    this.root = `${redis.prefix}${ROOT}`;
    if (purging.background !== false) {
      this.timer = setInterval(() => void this.purge(), PURGE_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /**
   * Drops expired keys from every trigger's sets (values expire by themselves). A trigger whose sets
   * cannot be purged is reported to `onFailure` and the purge goes on with the others; returns how
   * many failed (a failed scan counts as one and ends the round).
   */
  async purge(): Promise<number> {
    const expiryRoot = `${this.root}expiry:`;
    let failures = 0;
    let cursor = "0";
    do {
      let found: string[];
      try {
        [cursor, found] = await this.redis.commands.scan(cursor, "MATCH", `${literal(expiryRoot)}*`, "COUNT", 500);
      } catch (error) {
        this.purging.onFailure?.({ triggerId: null, error });
        return failures + 1;
      }
      for (const expiry of found) {
        const triggerId = expiry.slice(expiryRoot.length);
        try {
          await this.redis.commands.eval(PURGE, 3, "", expiry, this.keysOf(triggerId, "")[2]);
        } catch (error) {
          failures++;
          this.purging.onFailure?.({ triggerId, error });
        }
      }
    } while (cursor !== "0");
    return failures;
  }

  /**
   * Moves the state that versions before this layout kept (under `<REDIS_PREFIX>tstate:`) into this
   * layout, trigger by trigger, and returns how many triggers had some. Safe to run on several
   * instances at once and again later: what was moved is gone from the legacy keys.
   */
  async moveLegacyKeys(): Promise<number> {
    const legacyRoot = `${this.redis.prefix}tstate:`;
    const triggers = new Set<string>();
    let cursor = "0";
    do {
      const [next, found] = await this.redis.commands.scan(cursor, "MATCH", `${literal(legacyRoot)}*`, "COUNT", 1000);
      cursor = next;
      for (const key of found) {
        // `tstate:<triggerId>:keys`: the trigger id holds no ":", so a value key ending in ":keys" has more after it.
        const rest = key.slice(legacyRoot.length);
        const colon = rest.indexOf(":");
        if (colon > 0 && rest.slice(colon + 1) === "keys") triggers.add(rest.slice(0, colon));
      }
    } while (cursor !== "0");
    for (const triggerId of triggers) {
      const legacy = `${legacyRoot}${triggerId}:`;
      const [, expiry, keys] = this.keysOf(triggerId, "");
      for (;;) {
        const members = await this.redis.commands.zrange(`${legacy}keys`, 0, PAGE - 1);
        if (members.length === 0) break;
        const values = members.flatMap((member) => [`${legacy}v:${member}`, this.keysOf(triggerId, member)[0]]);
        await this.redis.commands.eval(MOVE, 4 + values.length, `${legacy}exp`, `${legacy}keys`, expiry, keys, ...values, ...members);
      }
      await this.redis.commands.del(`${legacy}exp`);
    }
    return triggers.size;
  }

  /** The value key of `key`, and the trigger's expiry and keys sets. */
  private keysOf(triggerId: string, key: string): [string, string, string] {
    return [`${this.root}value:${triggerId}:${key}`, `${this.root}expiry:${triggerId}`, `${this.root}keys:${triggerId}`];
  }

  async get(triggerId: string, key: string): Promise<string | null> {
    return this.redis.commands.get(this.keysOf(triggerId, key)[0]);
  }

  async put(triggerId: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<void> {
    await this.script(PUT, this.keysOf(triggerId, key), [key, json, String(ttlMs ?? 0), String(maxKeys)], key, maxKeys);
  }

  async incr(triggerId: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number> {
    return Number(
      await this.script(INCR, this.keysOf(triggerId, key), [key, String(by), String(ttlMs ?? 0), String(maxKeys)], key, maxKeys),
    );
  }

  async delete(triggerId: string, key: string): Promise<boolean> {
    const [value, expiry, keys] = this.keysOf(triggerId, key);
    return Number(await this.redis.commands.eval(REMOVE, 3, expiry, keys, value, key)) > 0;
  }

  async list(triggerId: string, prefix: string, first: number): Promise<TriggerStateEntry[]> {
    if (first <= 0) return [];
    const [, expiry, keys] = this.keysOf(triggerId, "");
    await this.redis.commands.eval(PURGE, 3, "", expiry, keys);
    const members = await this.redis.commands.zrangebylex(keys, ...lexRange(prefix), "LIMIT", 0, first);
    if (members.length === 0) return [];
    const pipeline = this.redis.commands.pipeline();
    for (const member of members) pipeline.get(this.keysOf(triggerId, member)[0]).pexpiretime(this.keysOf(triggerId, member)[0]);
    const replies = (await pipeline.exec()) ?? [];
    const entries: TriggerStateEntry[] = [];
    members.forEach((key, index) => {
      const value = replies[2 * index]?.[1] as string | null;
      const expiresAt = Number(replies[2 * index + 1]?.[1]);
      if (value !== null) entries.push({ key, value: JSON.parse(value), expiresAt: expiresAt > 0 ? new Date(expiresAt) : null });
    });
    return entries;
  }

  async clear(triggerId: string, prefix: string): Promise<number> {
    const [, expiry, keys] = this.keysOf(triggerId, "");
    let removed = 0;
    for (;;) {
      const members = await this.redis.commands.zrangebylex(keys, ...lexRange(prefix), "LIMIT", 0, PAGE);
      if (members.length === 0) return removed;
      const values = members.map((member) => this.keysOf(triggerId, member)[0]);
      removed += Number(await this.redis.commands.eval(REMOVE, 2 + values.length, expiry, keys, ...values, ...members));
    }
  }

  async forget(triggerId: string): Promise<void> {
    await this.clear(triggerId, "");
    const [, expiry, keys] = this.keysOf(triggerId, "");
    await this.redis.commands.del(expiry, keys);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }

  private async script(source: string, keys: string[], args: string[], key: string, maxKeys: number): Promise<unknown> {
    try {
      return await this.redis.commands.eval(source, keys.length, ...keys, ...args);
    } catch (error) {
      const message = (error as Error).message;
      if (message.includes("TOO_MANY_KEYS")) throw tooManyKeys(maxKeys);
      if (message.includes("NOT_INTEGER") || message.includes("not an integer")) throw notWholeNumber(key);
      if (message.includes("BEYOND_MAX")) throw beyondMaxCount(key);
      throw error;
    }
  }
}

/** The ZRANGEBYLEX bounds of the members starting with `prefix` (members are at most 200 characters, never byte 0xff). */
function lexRange(prefix: string): [string | Buffer, string | Buffer] {
  if (prefix === "") return ["-", "+"];
  return [`[${prefix}`, Buffer.concat([Buffer.from(`(${prefix}`), Buffer.from([0xff])])];
}
