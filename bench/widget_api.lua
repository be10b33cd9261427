-- wrk script for bench/widget_api.py: one scenario per run, chosen by the first argument.
--
--   wrk ... -s bench/widget_api.lua URL -- MODE PATH ORIGIN PAGE_URL DATA_FILE THREADS
--
-- MODE is one of:
--   bare               POST PATH (the bare Django JSON view) with a session-sized JSON body
--   session_new        POST PATH/sessions as a new visitor
--   session_returning  POST PATH/sessions with a visitor_id and visitor_state from DATA_FILE
--                      (one "visitor_id visitor_state" pair per line);
--                      the response must carry the same visitor_id back
--   answer             POST PATH/conversations/<id>/answers for conversations in DATA_FILE
--                      ("<id> <token> <card_id> <step>" per line)
--
-- Every response is checked: a status other than 200/201, or a body without what the
-- endpoint must return, counts as an error. For "answer", each conversation is used by one
-- request at a time (a conversation takes answers in order), so a thread keeps a queue of idle
-- conversations: request() takes one, response() reads the conversation id and the next step
-- from the body and puts it back. The flow loops on one question, so any answer is valid.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- Per-thread state (each wrk thread runs its own copy of this script).
ok = 0
bad_status = 0
bad_body = 0
starved = 0
sample = ""

local mode, base, origin, page_url
local static_request
local visitors, next_visitor, known_visitors = {}, 1, {}
local idle, idle_head, idle_tail = {}, 1, 0
local by_id, any_conversation = {}, nil
local expect

local function push(conversation)
   idle_tail = idle_tail + 1
   idle[idle_tail] = conversation
end

local function pop()
   if idle_head > idle_tail then
      return nil
   end
   local conversation = idle[idle_head]
   idle[idle_head] = nil
   idle_head = idle_head + 1
   return conversation
end

local function json_headers()
   return { ["Origin"] = origin, ["Content-Type"] = "application/json" }
end

local function my_lines(path, nthreads)
   -- This thread's share of the data file: lines tid, tid + nthreads, ...
   local lines, i = {}, 0
   for line in io.lines(path) do
      if line ~= "" then
         if i % nthreads == tid then
            table.insert(lines, line)
         end
         i = i + 1
      end
   end
   return lines
end

function init(args)
   mode, base, origin, page_url = args[1], args[2], args[3], args[4]
   local data_file, nthreads = args[5], tonumber(args[6])
   local session_body = string.format('{"page_url": "%s"}', page_url)
   if mode == "bare" then
      static_request = wrk.format("POST", base, json_headers(), session_body)
      expect = '{"ok": true}'
   elseif mode == "session_new" then
      static_request = wrk.format("POST", base .. "/sessions", json_headers(), session_body)
      expect = '"dialogue": {"id": '
   elseif mode == "session_returning" then
      for _, line in ipairs(my_lines(data_file, nthreads)) do
         local visitor_id, state = line:match("^(%S+) (%S+)$")
         local body = string.format(
            '{"visitor_id": "%s", "visitor_state": "%s", "page_url": "%s"}',
            visitor_id, state, page_url)
         table.insert(visitors, wrk.format("POST", base .. "/sessions", json_headers(), body))
         known_visitors[visitor_id] = true
      end
      expect = '"dialogue": {"id": '
   elseif mode == "answer" then
      for _, line in ipairs(my_lines(data_file, nthreads)) do
         local id, token, card_id, step = line:match("^(%S+) (%S+) (%S+) (%d+)$")
         local conversation = {
            path = base .. "/conversations/" .. id .. "/answers",
            auth = "Bearer " .. token,
            card_id = card_id,
            step = tonumber(step),
         }
         by_id[id] = conversation
         any_conversation = any_conversation or conversation
         push(conversation)
      end
   else
      error("unknown mode " .. tostring(mode))
   end
end

function request()
   if static_request then
      return static_request
   end
   if mode == "session_returning" then
      local req = visitors[next_visitor]
      next_visitor = next_visitor % #visitors + 1
      return req
   end
   local conversation = pop()
   if conversation == nil then
      -- More connections than idle conversations: should not happen (the pool is larger than
      -- the connection count). Send a stale answer; it is refused and counted as an error.
      starved = starved + 1
      conversation = any_conversation
   end
   local headers = json_headers()
   headers["Authorization"] = conversation.auth
   local body = string.format(
      '{"card_id": "%s", "step": %d, "value": "good"}', conversation.card_id, conversation.step)
   return wrk.format("POST", conversation.path, headers, body)
end

function response(status, headers, body)
   if status ~= 200 and status ~= 201 then
      bad_status = bad_status + 1
      if sample == "" then
         sample = status .. " " .. string.sub(body, 1, 300)
      end
      return
   end
   if mode == "answer" then
      local id = body:match('"conversation_id": "([%x%-]+)"')
      local card_id, step = body:match('"prompt": {"card_id": "([^"]+)", "step": (%d+)')
      local conversation = id and by_id[id]
      if conversation and step then
         conversation.card_id = card_id
         conversation.step = tonumber(step)
         push(conversation)
         ok = ok + 1
      else
         bad_body = bad_body + 1
         if sample == "" then
            sample = "unexpected body: " .. string.sub(body, 1, 300)
         end
      end
   elseif mode == "session_returning" then
      -- Recognised: the session keeps the visitor_id we sent (an unknown one gets a new one).
      local visitor_id = body:match('"visitor_id": "([^"]+)"')
      if body:find(expect, 1, true) and visitor_id and known_visitors[visitor_id] then
         ok = ok + 1
      else
         bad_body = bad_body + 1
         if sample == "" then
            sample = "visitor not recognised: " .. string.sub(body, 1, 300)
         end
      end
   elseif body:find(expect, 1, true) then
      ok = ok + 1
   else
      bad_body = bad_body + 1
      if sample == "" then
         sample = "unexpected body: " .. string.sub(body, 1, 300)
      end
   end
end

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

function done(summary, latency, requests)
   local totals = { ok = 0, bad_status = 0, bad_body = 0, starved = 0 }
   local samples = {}
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
      local s = thread:get("sample")
      if s and s ~= "" then
         table.insert(samples, json_string(s))
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}, '
         .. '"checked_ok": %d, "bad_status": %d, "bad_body": %d, "starved": %d, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"samples": [%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max,
      totals.ok, totals.bad_status, totals.bad_body, totals.starved,
      e.connect, e.read, e.write, e.timeout,
      table.concat(samples, ", ")))
end
