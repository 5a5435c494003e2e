-- Injects one message per input, carrying the input's `seq` field as an integer field, so a
-- test can tell which inputs the filter processed. `busy_ms` (config) makes it slow: it spins
-- until the process has used that many more milliseconds of CPU time (a clock, so that a JIT
-- cannot make the wait shorter).
local busy_ms = read_config("busy_ms") or 0

function process_message()
    local seq = read_message("Fields[seq]")
    if not seq then return -1 end
    if busy_ms > 0 then
        local started = os.clock()
        while (os.clock() - started) * 1000 < busy_ms do end
    end
    inject_message({Type = "numbered", Fields = {seq = {value = seq, value_type = 2}}})
    return 0
end

function timer_event(ns)
end
