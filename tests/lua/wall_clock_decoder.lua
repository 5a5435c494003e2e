-- Takes the record as a wall-clock time in nanoseconds, the way a zoneless grammar
-- (an RFC 3164 date, a local access-log time) hands a decoder its reading.
function process_message()
    local wall = tonumber(read_message("Payload"))
    if not wall then return -1 end
    inject_message({Type = "wall.clock", Timestamp = wall, Payload = "read"})
    return 0
end
