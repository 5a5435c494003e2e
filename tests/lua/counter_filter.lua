-- Counts messages by Type and reports the counts (and the running total) every tick.
-- Global state, so preserve_data keeps it across restarts.
_PRESERVATION_VERSION = 1

counts = {}
total = 0

function process_message()
    local t = read_message("Type")
    counts[t] = (counts[t] or 0) + 1
    total = total + 1
    return 0
end

function timer_event(ns)
    local names = {}
    for name in pairs(counts) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
        add_to_payload(string.format("%s\t%d\n", name, counts[name]))
    end
    add_to_payload("total\t", total, "\n")
    inject_payload("tsv", "counts_by_type")
end
