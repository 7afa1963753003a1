#!lua flags=allow-oom
-- renew.lua — keep the lease on an entry this consumer works on.
-- KEYS[1] stream          agentlink:reports (or agentlink:callbacks)
-- KEYS[2] job hash        agentlink:job:<job_id>, or any absent key for a callback entry
-- ARGV[1] options, JSON: group, consumer, entry_id, idle_ms (0: renew; a lease: hand the
--         entry back, reclaimable at once), event (a timeline event, e.g. the folded
--         'renewed'; {} for none), cap, gate (1: also say whether storing may go ahead)
-- Resets the entry's idle time only while this consumer still owns it: a plain XCLAIM
-- would steal it back from a consumer that reclaimed it after a stall. A deleted entry is
-- left alone: XCLAIM would silently drop it from the PEL, where XAUTOCLAIM reports it.
-- Returns 1 renewed, 0 another consumer owns it (or it was acked), -1 deleted from the
-- stream; after renewing, 2 when the job's cancel was requested, and with `gate` 3 when
-- the job already has an outcome (another consumer recorded it).
--!include ownership.lua
--!include job_status.lua
--!include timeline.lua

local opts = cjson.decode(ARGV[1])
if owner(KEYS[1], opts.group, opts.entry_id) ~= opts.consumer then return 0 end
if not exists(KEYS[1], opts.entry_id) then return -1 end
redis.call('XCLAIM', KEYS[1], opts.group, opts.consumer, 0, opts.entry_id,
  'IDLE', opts.idle_ms, 'JUSTID')
local job = redis.call('HMGET', KEYS[2], 'status', 'cancel_requested')
if not job[1] then return 1 end
if opts.gate == 1 and finished(job[1]) then return 3 end
if job[2] then return 2 end
if opts.event.event and not finished(job[1]) then
  append_event(KEYS[2], opts.event, opts.cap, opts.event.event == 'renewed')
end
return 1
