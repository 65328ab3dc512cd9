"""The Lua scripts of the Redis engine. Each runs atomically inside Redis.

Keys of one deployment share the hash tag ``{aiops}``: a detector change appends to two channels
and the simulator's fencing token is checked in the same script, so these keys must live on one
Redis (one shard of a cluster). docs/scaling.md explains the layout.

``EMIT`` is the only writer of channels. Layout of its arguments:

KEYS: 1 state hash, 2 version hash, 3 fence key, 4 command key, 5 resolved zset, then per channel
three keys: meta hash, stream, idempotency key.

ARGV: 1 fencing token ('' = none), 2 entity id, 3 entity payload ('' = no state write), 4 entity
version, 5 expected current version ('' = no check), 6 command outcome ('' = none), 7 command ttl,
8 history size, 9 history ttl (ms), 10 meta ttl (s), 11 epoch for a new stream, 12 idempotency
ttl (s), 13 now (ms), 14 PUB/SUB channel, 15 '1' if the entity is now resolved, 16 how many
resolved entities to keep; then per channel three values: name, data, '1' to use idempotency.

Replies: ``{'ok', offset1, epoch1, ...}``, ``{'fenced'}``, ``{'conflict', current_version}``,
``{'cmd', remembered_outcome}``, ``{'dup', 'offset:epoch'}``.
"""

from __future__ import annotations

EMIT = """
local NK, NA = 5, 16
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return {'fenced'}
end
if ARGV[6] ~= '' then
  local seen = redis.call('GET', KEYS[4])
  if seen then return {'cmd', seen} end
end
if ARGV[5] ~= '' then
  local current = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
  if current ~= tonumber(ARGV[5]) then return {'conflict', tostring(current)} end
end
local n = (#KEYS - NK) / 3
for i = 1, n do
  if ARGV[NA + 3 * i] == '1' then
    local seen = redis.call('GET', KEYS[NK + 3 * i])
    if seen then return {'dup', seen} end
  end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  if ARGV[15] == '1' then
    redis.call('ZADD', KEYS[5], ARGV[13], ARGV[2])
    local extra = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[16])
    if extra > 0 then
      local old = redis.call('ZRANGE', KEYS[5], 0, extra - 1)
      for _, id in ipairs(old) do
        redis.call('HDEL', KEYS[1], id)
        redis.call('HDEL', KEYS[2], id)
      end
      redis.call('ZREMRANGEBYRANK', KEYS[5], 0, extra - 1)
    end
  end
end
local out = {'ok'}
local keep = tonumber(ARGV[8]) > 0 and tonumber(ARGV[9]) > 0
for i = 1, n do
  local meta, log, idem = KEYS[NK + 3 * i - 2], KEYS[NK + 3 * i - 1], KEYS[NK + 3 * i]
  local name, data = ARGV[NA + 3 * i - 2], ARGV[NA + 3 * i - 1]
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = ARGV[11]
    redis.call('HSET', meta, 'e', epoch)
    redis.call('DEL', log)
  end
  local offset = redis.call('HINCRBY', meta, 's', 1)
  if keep then
    redis.call('XADD', log, 'MAXLEN', ARGV[8], offset .. '-0', 'd', data, 't', ARGV[13])
    redis.call('PEXPIRE', log, ARGV[9])
  end
  redis.call('EXPIRE', meta, ARGV[10])
  if ARGV[NA + 3 * i] == '1' then
    redis.call('SET', idem, offset .. ':' .. epoch, 'EX', ARGV[12])
  end
  redis.call('PUBLISH', ARGV[14],
    name .. '\\n' .. offset .. '\\n' .. epoch .. '\\n' .. ARGV[13] .. '\\n' .. data)
  out[#out + 1] = tostring(offset)
  out[#out + 1] = epoch
end
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[4], ARGV[6], 'EX', ARGV[7])
end
return out
"""

#: KEYS: meta, stream. ARGV: epoch for a new stream, meta ttl (s), since offset ('' = no
#: history), '1' to create the stream if missing. Reply ``{epoch, top, entries}``.
READ = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  if ARGV[4] ~= '1' then return {'', '0', {}} end
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
end
local top = redis.call('HGET', KEYS[1], 's') or '0'
local entries = {}
if ARGV[3] ~= '' then
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-0', '+')
end
return {epoch, top, entries}
"""

#: KEYS: detector state, anomaly state, health state, then meta and stream of ``detectors``,
#: ``anomalies``, ``health``. ARGV: epoch for a new stream, meta ttl (s).
#: Reply ``{detectors (flat hash), anomalies (flat hash), health or '', e1, s1, e2, s2, e3, s3}``:
#: the keyed state and the channel positions it was read at, in one atomic step.
SNAPSHOT = """
local out = {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
             redis.call('HGET', KEYS[3], 'health') or ''}
for i = 0, 2 do
  local meta, log = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', meta, 'e', epoch)
    redis.call('EXPIRE', meta, ARGV[2])
    redis.call('DEL', log)
  end
  out[#out + 1] = epoch
  out[#out + 1] = redis.call('HGET', meta, 's') or '0'
end
return out
"""

#: KEYS: lease, fence. ARGV: node id, ttl (ms), '1' if the caller is about to (re)start its
#: source. Take or renew the lease; a new holder, and a holder that starts a source again (after
#: it stopped during an outage, with its lease still in Redis), gets a new fencing token: a
#: source's anomaly ids carry its token, so a restarted one must never reuse the old one.
#: Reply: the token if this node holds the lease, else ''.
#: Tokens never repeat, also after Redis lost its data (restarted without persistence): a fresh
#: counter starts at Redis's clock in milliseconds, above every token of its previous life
#: unless that life handed out more tokens than milliseconds passed since its first one.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return '' end
if holder and ARGV[3] ~= '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return redis.call('GET', KEYS[2]) or ''
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local token = redis.call('INCR', KEYS[2])
if token == 1 then
  local now = redis.call('TIME')
  token = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', token))
end
return string.format('%d', token)
"""

#: KEYS: lease. ARGV: node id. Give the lease up if this node holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
