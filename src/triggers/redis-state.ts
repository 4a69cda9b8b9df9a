import type { RedisConnection } from "../realtime/redis.js";
import { notWholeNumber, type TriggerStateEntry, type TriggerStateStore, tooManyKeys } from "./state.js";

/*
 * Each trigger's state under `<REDIS_PREFIX>tstate:<triggerId>:`: a string key `v:<key>` per value
 * (JSON text, with Redis's own expiry, so an expired key reads as null at once), a sorted set `exp`
 * of keys by expiry time (+inf for none) that counts live keys and finds expired ones, and a sorted
 * set `keys` (all scores 0) that lists keys by prefix in order. Every write is one Lua script, so it
 * is atomic across instances; each script first drops up to 1000 expired keys from both sets, and
 * a background purge does the same for triggers that stopped writing.
 */

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

/** KEYS: value, exp, keys; ARGV: key, json, ttl ms (0 for none), max keys. */
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

/** KEYS: value, exp, keys; ARGV: key, by, ttl ms (0 for none), max keys. */
const INCR = `${PURGE}${CREATE}
local current = redis.call('GET', KEYS[1])
if current then
  if not string.match(current, '^%-?%d+$') then return redis.error_reply('NOT_INTEGER') end
  return redis.call('INCRBY', KEYS[1], ARGV[2])
end
local failed = create(ARGV[2])
if failed then return failed end
return tonumber(ARGV[2])
`;

/** KEYS: exp, keys, then value keys; ARGV: their members. Returns how many values existed. */
const REMOVE = `
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('DEL', KEYS[i + 2])
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return removed
`;

/** Members fetched per round when clearing. */
const PAGE = 500;

/** How often each instance drops expired keys from the sets of triggers that have not written since. */
const PURGE_INTERVAL_MS = 60_000;

/** Trigger state in Redis, shared by every instance (see the layout above). */
export class RedisStateStore implements TriggerStateStore {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly redis: RedisConnection) {
    this.timer = setInterval(() => void this.purge().catch(() => {}), PURGE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Drops expired keys from every trigger's sets (values expire by themselves). */
  async purge(): Promise<void> {
    const pattern = `${this.redis.prefix.replace(/[*?[\]\\]/g, "\\$&")}tstate:*:exp`;
    let cursor = "0";
    do {
      const [next, found] = await this.redis.commands.scan(cursor, "MATCH", pattern, "COUNT", 500);
      cursor = next;
      for (const exp of found) await this.redis.commands.eval(PURGE, 3, "", exp, `${exp.slice(0, -"exp".length)}keys`);
    } while (cursor !== "0");
  }

  private base(triggerId: string): string {
    return `${this.redis.prefix}tstate:${triggerId}:`;
  }

  private keysOf(triggerId: string, key: string): [string, string, string] {
    const base = this.base(triggerId);
    return [`${base}v:${key}`, `${base}exp`, `${base}keys`];
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
    const [value, exp, keys] = this.keysOf(triggerId, key);
    return Number(await this.redis.commands.eval(REMOVE, 3, exp, keys, value, key)) > 0;
  }

  async list(triggerId: string, prefix: string, first: number): Promise<TriggerStateEntry[]> {
    if (first <= 0) return [];
    const [, exp, keys] = this.keysOf(triggerId, "");
    await this.redis.commands.eval(PURGE, 3, "", exp, keys);
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
    const [, exp, keys] = this.keysOf(triggerId, "");
    let removed = 0;
    for (;;) {
      const members = await this.redis.commands.zrangebylex(keys, ...lexRange(prefix), "LIMIT", 0, PAGE);
      if (members.length === 0) return removed;
      const values = members.map((member) => this.keysOf(triggerId, member)[0]);
      removed += Number(await this.redis.commands.eval(REMOVE, 2 + values.length, exp, keys, ...values, ...members));
    }
  }

  async forget(triggerId: string): Promise<void> {
    await this.clear(triggerId, "");
    const [, exp, keys] = this.keysOf(triggerId, "");
    await this.redis.commands.del(exp, keys);
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
      throw error;
    }
  }
}

/** The ZRANGEBYLEX bounds of the members starting with `prefix` (members are at most 200 characters, never byte 0xff). */
function lexRange(prefix: string): [string | Buffer, string | Buffer] {
  if (prefix === "") return ["-", "+"];
  return [`[${prefix}`, Buffer.concat([Buffer.from(`(${prefix}`), Buffer.from([0xff])])];
}
