#!lua flags=allow-oom
-- read_job.lua — one job's record for one caller: the status and PDF routes' round trip.
-- KEYS[1] job hash      agentlink:job:<job_id>
-- KEYS[2] rate bucket   agentlink:rate:<scope>   (used when opts.rate_limit > 0)
-- ARGV[1] options, JSON: rate_limit (requests per period, 0 = off), rate_period_ms,
--         owner (the caller's tenant scope; '' = the caller may read every job)
-- A job belongs to the tenant that created it (its `owner` field); to anyone else it does
-- not exist. Jobs without an owner (made before owners were recorded) are everyone's.
-- Returns {'limited', retry after ms} | {'missing'} | {'found', field, value, ...}
--!include gcra.lua

local opts = cjson.decode(ARGV[1])

if opts.rate_limit > 0 then
  local allowed, retry_ms = gcra(KEYS[2], opts.rate_limit, opts.rate_period_ms)
  if not allowed then return {'limited', retry_ms} end
end

local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {'missing'} end
if opts.owner ~= '' then
  for i = 1, #flat, 2 do
    if flat[i] == 'owner' and flat[i + 1] ~= '' and flat[i + 1] ~= opts.owner then
      return {'missing'}
    end
  end
end
table.insert(flat, 1, 'found')
return flat
