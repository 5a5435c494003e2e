-- Grows without bound.
hoard = {}
function process_message()
    for i = 1, 1e9 do hoard[#hoard + 1] = string.rep("m", 1024) .. i end
    return 0
end
