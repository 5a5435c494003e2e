-- Never returns.
function process_message()
    local n = 0
    while true do n = n + 1 end
end
