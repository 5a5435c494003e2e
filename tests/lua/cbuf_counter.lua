-- Graphs what it sees in a circular buffer and injects it every tick, as a dashboard graph:
-- column 1 counts messages per second, column 2 holds the largest `seq` field seen so far.
-- `cbuf_name` (config) names the graph (inject_payload's payload_name).
require "circular_buffer"

local name = read_config("cbuf_name") or "traffic"
local cb = circular_buffer.new(30, 2, 1)
cb:set_header(1, "messages", "count", "sum")
cb:set_header(2, "max_seq", "count", "max")

local pending = 0
local max_seq = 0

function process_message()
    pending = pending + 1
    local seq = tonumber(read_message("Fields[seq]"))
    if seq and seq > max_seq then max_seq = seq end
    return 0
end

function timer_event(ns)
    cb:add(ns, 1, pending)
    cb:set(ns, 2, max_seq)
    pending = 0
    inject_payload("cbuf", name, cb)
end
