-- Injects one message per input, carrying the input's `seq` field as an integer field, so a
-- test can tell which inputs the filter processed. `spin` (config) busy-loops that many
-- iterations first, to make the filter slow.
local spin = read_config("spin") or 0

function process_message()
    local seq = read_message("Fields[seq]")
    if not seq then return -1 end
    for _ = 1, spin do end
    inject_message({Type = "numbered", Fields = {seq = {value = seq, value_type = 2}}})
    return 0
end

function timer_event(ns)
end
