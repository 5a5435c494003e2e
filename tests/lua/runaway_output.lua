-- Writes more payload than any output limit allows.
function process_message()
    for i = 1, 1e9 do add_to_payload("flood ", i, "\n") end
    return 0
end
