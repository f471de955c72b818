-- One record of the online features in Redis (riskops.features.online_store.RedisStore).
-- KEYS: per query a sorted set of events and a hash {last, floor} (2 keys per query).
-- ARGV: t, record, retention, ttl ms, meta ttl ms, then per query: lower bound of its longest
-- window, previous, member, number of aggregates, then per aggregate: lower, code, position.
-- Members are "<random id>\31<field>\31<field>..." with fields "" (null), "f<float>", "s<text>".
-- Scores are integer microseconds (< 2^53, exact as doubles); '%.0f' keeps them integral in
-- commands and '%.17g' keeps sums and maxima exact in the reply (tostring would print 14 digits).
local t = tonumber(ARGV[1])
local record = ARGV[2] == '1'
local retention = tonumber(ARGV[3])
local below = '(' .. ARGV[1]
local out = {}
local at = 6
for i = 1, #KEYS / 2 do
  local zkey, mkey = KEYS[2 * i - 1], KEYS[2 * i]
  local since, want_prev, member = ARGV[at], ARGV[at + 1] == '1', ARGV[at + 2]
  local n = tonumber(ARGV[at + 3])
  at = at + 4
  local times, rows, nums, starts = {}, {}, {}, {}
  if n > 0 then
    local events = redis.call('ZRANGEBYSCORE', zkey, since, below, 'WITHSCORES')
    for j = 1, #events, 2 do
      local fields, text, from = {}, events[j], 1
      while true do
        local stop = string.find(text, '\31', from, true)
        if not stop then fields[#fields + 1] = string.sub(text, from); break end
        fields[#fields + 1] = string.sub(text, from, stop - 1)
        from = stop + 1
      end
      times[#times + 1] = tonumber(events[j + 1])
      rows[#rows + 1] = fields
    end
  end
  local values = {}
  for a = 1, n do
    local lower, code, col = tonumber(ARGV[at]), ARGV[at + 1], tonumber(ARGV[at + 2]) + 2
    at = at + 3
    local first = starts[lower]
    if not first then  -- the first event at or after the window's lower bound
      local lo, hi = 1, #times + 1
      while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if times[mid] < lower then lo = mid + 1 else hi = mid end
      end
      first = lo
      starts[lower] = first
    end
    local count, total, best, seen = 0, 0.0, nil, {}
    if code == 'n' then
      count = #times - first + 1
    elseif code == 's' or code == 'm' then
      local cache = nums[col]
      if not cache then
        cache = {}
        for j = 1, #times do
          local f = rows[j][col]
          cache[j] = (f ~= '') and tonumber(string.sub(f, 2)) or false
        end
        nums[col] = cache
      end
      for j = first, #times do
        local x = cache[j]
        if x then
          if code == 's' then
            total = total + x
          elseif best == nil or x > best then
            best = x
          end
        end
      end
    else
      for j = first, #times do
        local f = rows[j][col]
        if f ~= '' then
          if code == 'c' then
            count = count + 1
          elseif not seen[f] then
            seen[f] = true
            count = count + 1
          end
        end
      end
    end
    if code == 's' then
      values[a] = string.format('%.17g', total)
    elseif code == 'm' then
      values[a] = best and string.format('%.17g', best) or ''
    else
      values[a] = tostring(count)
    end
  end
  local size = redis.call('ZCARD', zkey)
  local prev = ''
  if want_prev then
    local p = redis.call('ZREVRANGEBYSCORE', zkey, below, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #p > 0 then
      prev = p[2]
    else
      local c = redis.call('HGET', mkey, size == 0 and 'last' or 'floor')
      if c and tonumber(c) < t then prev = c end
    end
  end
  if record then
    if want_prev then
      local last = redis.call('HGET', mkey, 'last')
      if size == 0 and last then redis.call('HSET', mkey, 'floor', last) end
      if (not last) or tonumber(last) < t then redis.call('HSET', mkey, 'last', ARGV[1]) end
    end
    redis.call('ZADD', zkey, ARGV[1], member)
    local newest = tonumber(redis.call('ZREVRANGE', zkey, 0, 0, 'WITHSCORES')[2])
    local horizon = '(' .. string.format('%.0f', newest - retention)
    if want_prev then
      local gone = redis.call('ZREVRANGEBYSCORE', zkey, horizon, '-inf',
        'WITHSCORES', 'LIMIT', 0, 1)
      if #gone > 0 then
        local floor = redis.call('HGET', mkey, 'floor')
        if (not floor) or tonumber(floor) < tonumber(gone[2]) then
          redis.call('HSET', mkey, 'floor', gone[2])
        end
      end
      redis.call('PEXPIRE', mkey, ARGV[5])
    end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', horizon)
    redis.call('PEXPIRE', zkey, ARGV[4])
  end
  values[n + 1] = prev
  out[i] = values
end
return out
