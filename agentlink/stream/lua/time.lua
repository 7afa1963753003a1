-- time.lua — fragment: Redis's clock, the one clock every process shares.
-- now_ms() -> milliseconds since the epoch
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
