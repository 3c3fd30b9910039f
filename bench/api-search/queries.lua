-- wrk script: the requests of a wrk thread (all connections, with -t 1) go through the queries
-- of the file named by $API_SEARCH_QUERIES (one path a line) in turn. ../run appends
-- bench/lib/report.lua (wrk takes one script).
local file = assert(os.getenv("API_SEARCH_QUERIES"), "API_SEARCH_QUERIES is not set")
local paths = {}
for line in io.lines(file) do
  if line ~= "" then paths[#paths + 1] = line end
end
assert(#paths > 0, "no queries in " .. file)
local next_index = 0
function request()
  next_index = next_index % #paths + 1
  return wrk.format("GET", paths[next_index], { ["Accept"] = "application/json" })
end
