-- gcra.lua — fragment: the rate limit shared by every script that takes a request.
-- GCRA (a leaky bucket kept as one timestamp, the "theoretical arrival time"): a burst of
-- up to `limit` requests, then one every period/limit ms. Redis's clock is the one clock
-- all API processes share.
-- gcra(key, limit, period_ms[, peek]) -> allowed (boolean), retry after ms, requests remaining
-- With peek, nothing is counted: the answer is what counting one more would say.
--!include time.lua
local function gcra(key, limit, period_ms, peek)
  local now = now_ms()
  local interval = period_ms / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - period_ms > now then
    return false, math.ceil(new_tat - period_ms - now), 0
  end
  if peek then
    return true, 0, math.floor((period_ms - (new_tat - now)) / interval)
  end
  -- At least 1 ms: with a huge limit the interval vanishes below a double's precision.
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
  return true, 0, math.floor((period_ms - (new_tat - now)) / interval)
end
