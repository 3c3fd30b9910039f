-- wrk script: every request POSTs the JSON body in the file named by $WAF_LATENCY_BODY.
-- ../run appends bench/lib/report.lua (wrk takes one script).
local file = assert(io.open(assert(os.getenv("WAF_LATENCY_BODY"), "WAF_LATENCY_BODY is not set"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
