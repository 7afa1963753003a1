-- ownership.lua — fragment: who holds a pending entry.
-- owner(stream, group, entry_id) -> the consumer the entry is pending on (false if none)
local function owner(stream, group, entry_id)
  local p = redis.call('XPENDING', stream, group, entry_id, entry_id, 1)
  if #p == 0 then return false end
  return p[1][2]
end

-- exists(stream, entry_id) -> true while the entry is still in the stream
local function exists(stream, entry_id)
  return #redis.call('XRANGE', stream, entry_id, entry_id) > 0
end
