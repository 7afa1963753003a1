-- backlog.lua — fragment: where the consumer group stands, for wait estimates.
-- group_state(stream, group) -> undelivered entries (lag), pending entries, last delivered id
-- Redis 7 knows the lag unless entries were deleted past the group's position; then the
-- undelivered entries are counted (at most 10,000: an estimate needs no more).
local function group_state(stream, group)
  if redis.call('EXISTS', stream) == 0 then return 0, 0, '0-0' end
  for _, row in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local g = {}
    for i = 1, #row, 2 do g[row[i]] = row[i + 1] end
    if g['name'] == group then
      local lag = g['lag']
      if type(lag) ~= 'number' then
        lag = #redis.call('XRANGE', stream, '(' .. g['last-delivered-id'], '+', 'COUNT', 10000)
      end
      return lag, g['pending'], g['last-delivered-id']
    end
  end
  return 0, 0, '0-0'
end

-- position(stream, group, entry_id) -> entries ahead of a queued entry: the pending ones
-- plus the undelivered ones older than it (0 once it has been delivered).
local function position(stream, group, entry_id)
  local _, pending, last = group_state(stream, group)
  local lms, lseq = string.match(last, '(%d+)-(%d+)')
  local ems, eseq = string.match(entry_id, '(%d+)-(%d+)')
  if not ems then return 0 end
  lms, lseq, ems, eseq = tonumber(lms), tonumber(lseq), tonumber(ems), tonumber(eseq)
  if ems < lms or (ems == lms and eseq <= lseq) then return 0 end
  local older = #redis.call('XRANGE', stream, '(' .. last, '(' .. entry_id, 'COUNT', 10000)
  return older + pending
end
