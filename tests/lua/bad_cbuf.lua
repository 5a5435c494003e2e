-- Injects a payload that claims to be a circular buffer but is not one (its cell is a word),
-- every tick: a dashboard must refuse it and count it.
function process_message()
    return 0
end

function timer_event(ns)
    add_to_payload('{"time":0,"rows":1,"columns":1,"seconds_per_row":1}\nword\n')
    inject_payload("cbuf", "broken")
end
