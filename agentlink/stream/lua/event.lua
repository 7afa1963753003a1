#!lua flags=allow-oom
-- event.lua — add one event to a job's timeline (no other change).
-- KEYS[1] job hash   agentlink:job:<job_id>
-- ARGV[1] options, JSON: event (the timeline event), cap, fold (1: a repeat of the last
--         event only bumps its count)
-- Nothing is written for a job that does not exist. Returns 1 if the event was added.
--!include timeline.lua

local opts = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
append_event(KEYS[1], opts.event, opts.cap, opts.fold == 1)
return 1
