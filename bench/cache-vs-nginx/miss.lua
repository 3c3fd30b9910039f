-- wrk script for the miss scenario: every request asks for a key no request asked before, the
-- URL's path with ?miss=RUN-THREAD-N. RUN comes after `--` on wrk's command line, so the
-- warm-up and the measured run never share a key. ../run appends bench/lib/report.lua.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local prefix, counter = "", 0
init = function(args)
  prefix = wrk.path .. "?miss=" .. (args[1] or "run") .. "-" .. tostring(id) .. "-"
end

request = function()
  counter = counter + 1
  return wrk.format(nil, prefix .. counter)
end
