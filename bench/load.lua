-- wrk script for bench/load.py: one request shape per run, fed from files, non-2xx counted, results as JSON.
--
-- wrk -s bench/load.lua URL -- METHOD PATH HEADERS_FILE BODY_FILE VALUES_FILE MODE THREADS
--   HEADERS_FILE  "Name: value" lines
--   BODY_FILE     the request body; "{{VALUE}}" in it is replaced by the next value ("-": no body)
--   VALUES_FILE   one value a line, or "-" for a fixed request
--   MODE          "consume": each value is sent once (single-use refresh tokens and codes; a thread that runs out
--                 stops and the run reports it), "cycle": the values are sent round and round (usernames)
--   THREADS       wrk's -t
-- Each thread takes every n-th value, so no two threads ever send the same single-use value. (wrk calls request()
-- once on the first thread to check the script, so that thread's first value is drawn and never sent.)

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("thread_id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local function read_file(path)
   local handle = assert(io.open(path, "rb"))
   local content = handle:read("*a")
   handle:close()
   return content
end

function init(args)
   method, path, mode = args[1], args[2], args[6]
   headers = {}
   for line in io.lines(args[3]) do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then headers[name] = value end
   end
   template = nil
   if args[4] ~= "-" then template = read_file(args[4]) end
   values = nil
   if args[5] ~= "-" then
      values = {}
      local index, threads_total = 0, tonumber(args[7])
      for line in io.lines(args[5]) do
         if index % threads_total == thread_id then values[#values + 1] = line end
         index = index + 1
      end
   end
   next_value = 1
   non2xx = 0
   exhausted = 0
   statuses = ""
   status_counts = {}
   fixed = nil
   if values == nil then fixed = wrk.format(method, path, headers, template) end
end

function request()
   if fixed then return fixed end
   local value
   if next_value > #values and mode == "consume" then
      -- Never resend a spent value (a reused refresh token revokes its family): stop this thread, and send a
      -- marker the server refuses for the requests wrk still asks for while stopping. The run reports both.
      exhausted = exhausted + 1
      wrk.thread:stop()
      value = "bench-values-exhausted"
   else
      if next_value > #values then next_value = 1 end
      value = values[next_value]
      next_value = next_value + 1
   end
   local body = template:gsub("{{VALUE}}", (value:gsub("%%", "%%%%")))
   return wrk.format(method, path, headers, body)
end

function response(status, response_headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      local key = tostring(status)
      status_counts[key] = (status_counts[key] or 0) + 1
      local parts = {}
      for code, count in pairs(status_counts) do parts[#parts + 1] = code .. "=" .. count end
      statuses = table.concat(parts, ",")
   end
end

function done(summary, latency, requests)
   local bad, ran_out, codes = 0, 0, {}
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
      ran_out = ran_out + thread:get("exhausted")
      local seen = thread:get("statuses")
      if seen ~= "" then codes[#codes + 1] = seen end
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, "exhausted": %d, '
         .. '"statuses": "%s", "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes, bad, ran_out, table.concat(codes, ","),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
