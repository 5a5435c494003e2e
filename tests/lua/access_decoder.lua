-- Parses a common-log-format line (its newline, if the splitter kept it, too) with an lpeg
-- grammar into a message with fields:
--   1.2.3.4 - alice [10/Oct/2000:13:55:36 +0000] "GET /index.html HTTP/1.1" 200 2326
require "lpeg"
require "string"

local l = lpeg
local space = l.P" "
local token = (1 - space)^1
local ip = l.C((l.R"09" + ".")^1)
local quoted = l.P'"' * l.C((1 - l.P'"')^0) * l.P'"'
local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
local function d(n) return l.R"09"^n / tonumber end

-- Days since the epoch for a civil date (proleptic Gregorian).
local function days(y, m, day)
    if m <= 2 then y = y - 1 end
    local era = y // 400
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = (153 * mp + 2) // 5 + day - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
end

local timestamp = l.P"[" * d(2) * "/" * l.C(l.R"AZ" * l.R"az"^2) * "/" * d(4) * ":" * d(2)
    * ":" * d(2) * ":" * d(2) * space * l.S"+-" * d(4) * "]"
    / function(day, month, year, hour, min, sec)
        return ((days(year, months[month], day) * 86400) + hour * 3600 + min * 60 + sec) * 1e9
    end

local request = l.Ct(l.Cg(l.C(l.R"AZ"^1), "method") * space * l.Cg(l.C(token), "path")
    * space * l.Cg(l.C((1 - l.S' "')^1), "protocol"))

local line = l.Ct(
    l.Cg(ip, "remote_addr") * space * token * space * l.Cg(l.C(token), "remote_user") * space
    * l.Cg(timestamp, "time") * space
    * l.P'"' * l.Cg(request, "request") * l.P'"' * space
    * l.Cg(d(3), "status") * space * l.Cg(d(1) + l.P"-" / function() return 0 end, "body_bytes_sent")
    * l.P"\n"^-1 * l.P(-1))

-- The message Type: `type` in [name.config], as Heka's access decoders took it.
local msg = { Type = read_config("type") or "nginx.access", Fields = {} }

function process_message()
    local fields = line:match(read_message("Payload"))
    if not fields then return -1, "line does not match the access log grammar" end
    msg.Timestamp = fields.time
    msg.Fields.remote_addr = fields.remote_addr
    msg.Fields.remote_user = fields.remote_user
    msg.Fields.method = fields.request.method
    msg.Fields.path = fields.request.path
    msg.Fields.status = { value = fields.status, value_type = 2 }
    msg.Fields.body_bytes_sent = { value = fields.body_bytes_sent, value_type = 2, representation = "B" }
    inject_message(msg)
    return 0
end
