-- Counts responses per status class per minute, in the style of the Heka-era status graphs,
-- and leans on what Heka's Lua 5.1 host gave such scripts:
--   * the class column is `status / 100`, a float (4.04 for a 404) that the circular buffer
--     truncates, as Lua 5.1 did;
--   * the class names come from an array in [name.config];
--   * the status is found by walking the fields with read_next_field;
--   * compute() answers with the sum and the number of rows that hold data.
require "circular_buffer"

local names = read_config("classes")
local rows = read_config("rows") or 60
local counts = circular_buffer.new(rows, #names, 60)
for column, name in ipairs(names) do counts:set_header(column, name) end

local function status_field()
    while true do
        local value_type, name, value = read_next_field()
        if not value_type then return nil end
        if name == "status" then return value end
    end
end

function process_message()
    local status = status_field()
    if not status then return -1 end
    counts:add(read_message("Timestamp"), status / 100, 1)
    return 0
end

function timer_event(ns)
    for column, name in ipairs(names) do
        local sum, active = counts:compute("sum", column)
        add_to_payload(string.format("%s=%d/%d ", name, sum, active))
    end
    inject_payload("txt", "status_classes")
end
