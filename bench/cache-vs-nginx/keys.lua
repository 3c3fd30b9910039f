-- wrk script for the many-keys scenario: each request asks for one of N keys chosen at random,
-- the URL's path with ?k=1 .. ?k=N; N comes after `--` on wrk's command line. ../run warms
-- every key first and appends bench/lib/report.lua.
local keys = 10000
init = function(args)
  keys = tonumber(args[1]) or keys
  math.randomseed(os.time() + (id or 0))
end

local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end

request = function()
  return wrk.format(nil, wrk.path .. "?k=" .. math.random(keys))
end
