-- Encodes a message as one text line; messages of Type "skip" produce no output.
require "string"

function process_message()
    local t = read_message("Type")
    if t == "skip" then return -2 end
    if t == "broken" then return -1, "cannot encode broken messages" end
    local status = read_message("Fields[status]") or "-"
    inject_payload("txt", "", string.format("%s %s status=%s\n", t, read_message("Payload"), status))
    return 0
end
