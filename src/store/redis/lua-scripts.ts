// The Redis store's multi-step writes, each one Lua script so that Redis runs it atomically
// (docs/design/redis-store.md).
import type { RedisClient } from './connection.ts';

// Fixed window: the first increment opens the window; a counter found without a TTL gets one,
// or it would lock a client out for ever.
const INCREMENT_LUA = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

// Adds members (ARGV[2..]); the set lives at least ARGV[1] more ms, never shortened.
const ADD_TO_SET_LUA = `
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
`;

// The value, and its companion written (NX) when ARGV[4] is given, otherwise only re-timed.
const SET_WITH_COMPANION_LUA = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if #ARGV >= 4 and redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3], 'NX') then return 1 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

// A consumed marker, written once and only while its payload exists, to outlive it by a margin.
const SET_IF_ABSENT_ALONGSIDE_LUA = `
local remaining = redis.call('PTTL', KEYS[2])
if remaining == -2 then return 'missing' end
if remaining < 0 then remaining = 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', remaining + tonumber(ARGV[2]), 'NX') then return 'written' end
return 'exists'
`;

// A node's marker (data-loss.ts): what it held (nil once Redis lost it) and how many keys Redis has
// evicted so far, then the marker's next value.
const MARKER_LUA = `
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local evicted = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)')
return {previous or false, evicted or '0'}
`;

/** At most this many members go into one SADD (Lua's unpack has a stack limit of about 8,000). */
export const SET_ADDITIONS_PER_COMMAND = 1000;

export interface ScriptedCommands {
  tesseraSetIfAbsentAlongside(key: string, companion: string, value: string, marginMs: string): Promise<'written' | 'exists' | 'missing'>;
  tesseraIncrement(key: string, windowMs: string): Promise<[number, number]>;
  tesseraAddToSet(key: string, ttlMs: string, ...members: string[]): Promise<number>;
  tesseraSetWithCompanion(key: string, companion: string, value: string, ttlMs: string, companionTtlMs: string, companionValue?: string): Promise<number>;
  tesseraMarker(key: string, next: string, ttlMs: string): Promise<[string | null, string]>;
}

/** Registers the scripts on a client as commands of their own. */
export function defineScripts(client: RedisClient): ScriptedCommands {
  client.defineCommand('tesseraIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
  client.defineCommand('tesseraAddToSet', { numberOfKeys: 1, lua: ADD_TO_SET_LUA });
  client.defineCommand('tesseraSetIfAbsentAlongside', { numberOfKeys: 2, lua: SET_IF_ABSENT_ALONGSIDE_LUA });
  client.defineCommand('tesseraSetWithCompanion', { numberOfKeys: 2, lua: SET_WITH_COMPANION_LUA });
  client.defineCommand('tesseraMarker', { numberOfKeys: 1, lua: MARKER_LUA });
  return client as unknown as ScriptedCommands;
}
