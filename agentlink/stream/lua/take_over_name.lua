#!lua flags=allow-oom
-- take_over_name.lua — free the name of a holder known to be dead (its pid is gone).
-- KEYS[1] member hash   agentlink:consumer:<name>
-- ARGV[1] the dead holder's token
-- Compare-and-delete: a holder that beat in between (it was alive after all) keeps its
-- name. Returns 1 if the name was freed.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
