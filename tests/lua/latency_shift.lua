-- Flags a shift in a metric as the Heka-era anomaly filters did: the last `window` rows of a
-- circular buffer against the `window` rows before them, with cb:mannwhitneyu. Each message's
-- Payload is "<second> <value>"; the second counts from `base_ns` (in [name.config]).
require "circular_buffer"
require "string"

local window = read_config("window") or 5
local base = read_config("base_ns")
local rows = window * 2
local latency = circular_buffer.new(rows, 1, 1)
latency:set_header(1, "latency", "ms", "max")
local seen, reported = 0, false

function process_message()
    local second, value = string.match(read_message("Payload"), "^(%d+) (%d+)")
    if not second then return -1 end
    latency:set(base + tonumber(second) * 1e9, 1, tonumber(value))
    seen = seen + 1
    return 0
end

function timer_event(ns)
    if reported or seen < rows then return end
    local split = base + window * 1e9
    local last = base + (rows - 1) * 1e9
    local u, p = latency:mannwhitneyu(1, base, split - 1e9, split, last)
    if u then
        local verdict = "steady"
        if p < 0.05 then verdict = "shift" end
        add_to_payload(string.format("%s U=%g p=%.4f", verdict, u, p))
        inject_payload("alert", "latency_shift")
    end
    reported = true
end
