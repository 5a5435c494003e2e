#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/), a few small real inputs
each: Heka messages and frames, queue records, syslog lines, statsd datagrams, Fluentd Forward
frames (tests/fixtures/fluent), HTTP requests, matcher expressions and configs. Run it from the
repository root after changing a format; the files are committed."""

import hashlib
import hmac
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(tag, wire):
    return varint(tag << 3 | wire)


def field_bytes(tag, value):
    return key(tag, 2) + varint(len(value)) + value


def field_int(tag, value):
    return key(tag, 0) + varint(value & 0xFFFFFFFFFFFFFFFF)


def heka_field(name, value_type=None, strings=(), integers=(), doubles=(), bools=(), rep=None):
    out = field_bytes(1, name)
    if value_type is not None:
        out += field_int(2, value_type)
    if rep is not None:
        out += field_bytes(3, rep)
    for s in strings:
        out += field_bytes(4, s)
    if integers:
        out += field_bytes(6, b"".join(varint(i & 0xFFFFFFFFFFFFFFFF) for i in integers))
    if doubles:
        out += field_bytes(7, b"".join(struct.pack("<d", d) for d in doubles))
    if bools:
        out += field_bytes(8, bytes(1 if b else 0 for b in bools))
    return out


def message(payload=b"GET / 200", fields=()):
    out = field_bytes(1, bytes(range(16)))
    out += field_int(2, 1_428_773_426_113_040_228)
    out += field_bytes(3, b"nginx.access")
    out += field_bytes(4, b"tail")
    out += field_int(5, 6)
    out += field_bytes(6, payload)
    out += field_int(8, 99)
    out += field_bytes(9, b"web1")
    for f in fields:
        out += field_bytes(10, f)
    return out


MESSAGES = [
    message(),
    message(b"", [heka_field(b"status", 2, integers=[200, 404])]),
    message(b"x" * 40, [
        heka_field(b"tags", strings=[b"a", b"b"]),
        heka_field(b"tags", strings=[b"c"], rep=b"label"),
        heka_field(b"ratio", 3, doubles=[0.5, -1.25]),
        heka_field(b"ok", 4, bools=[True, False]),
        heka_field(b"blob", 1, strings=[]) + field_bytes(5, b"\x00\x01\x02"),
    ]),
]


def frame(msg, signer=None):
    header = field_int(1, len(msg))
    if signer:
        name, version, secret = signer
        header += field_int(3, 1)
        header += field_bytes(4, name)
        header += field_int(5, version)
        header += field_bytes(6, hmac.new(secret, msg, hashlib.sha1).digest())
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f" + msg


def control(kind, value):
    header = b"\x08\x00" + bytes([14 << 3, kind, 12 << 3]) + varint(value)
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f"


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(msg, count=0):
    header = b"\x08" + varint(len(msg))
    if count:
        header += b"\x68" + varint(count)
    header += b"\x7d" + struct.pack("<I", crc32c(msg))
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f" + msg


def write(target, name, data):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    # splitter: [kind][size][read count + sizes][stream]
    stream = b"".join(frame(m) for m in MESSAGES)
    signed = frame(MESSAGES[0], (b"fuzzer", 1, b"key"))
    for kind in range(6):
        write("splitter", f"frames-{kind}", bytes([kind, 200, 2, 7, 64]) + control(1, 1) + stream + signed)
        write("splitter", f"lines-{kind}", bytes([kind, 8, 0]) + b"one\ntwo\n\x1e\x1e\x1ethree\n" + b"x" * 80 + b"\nlast")
        write("splitter", f"syslog-{kind}", bytes([kind, 60, 1, 5]) + b"13 <34>1 - - - - hi12 <13>just text\n")
    # framing: a frame, a signed frame, each control frame
    write("framing", "unsigned", frame(MESSAGES[1]))
    write("framing", "signed", signed)
    for kind in range(1, 5):
        write("framing", f"control-{kind}", control(kind, 300))
    # message_view and json_inject
    for i, m in enumerate(MESSAGES):
        write("message_view", f"message-{i}", m)
    write("json_inject", "full", json.dumps({
        "Uuid": "AAECAwQFBgcICQoLDA0ODw==", "Timestamp": 1428773426113040228,
        "Type": "nginx.access", "Logger": "tail", "Severity": 6, "Payload": "GET / 200",
        "EnvVersion": "1", "Pid": 99, "Hostname": "web1",
        "Fields": {"status": 200, "tags": ["a", "b"], "ratio": 0.5, "ok": True}}).encode())
    write("json_inject", "typed", json.dumps({
        "Payload": "x", "Fields": [
            {"name": "n", "value_type": "INTEGER", "value": [1, 2]},
            {"name": "b", "value_type": "BYTES", "value": "AAE=", "representation": "raw"},
            {"name": "d", "value_type": "DOUBLE", "value": 1.5}]}).encode())
    # matcher: [dialect][expression]
    for i, (dialect, text) in enumerate([
        (0, "Type == 'nginx.access' && Fields[status] >= 200"),
        (0, "Payload =~ /^GET \\/\\d+/ || Fields[tags][1] == 'b' || Fields[ratio][0][0] < 1.5"),
        (0, "(Severity < 7 && Hostname != NIL) || Fields[ok] == TRUE || Logger !~ /x/"),
        (0, "TRUE && !(Uuid == NIL) && Timestamp > 0 && Pid == 99 && EnvVersion == NIL"),
        (1, "Type == 'nginx.access' && Fields[status] >= 200 && Payload =~ '^GET%s'"),
        (1, "Fields[tags][1] == 'b' || Uuid < '\\\\' || Hostname !~ 'web%d'"),
    ]):
        write("matcher", f"expression-{i}", bytes([dialect]) + text.encode())
    # config
    write("config", "tcp-file", b"""[hekad]
maxprocs = 2

[tcp_in]
type = "TcpInput"
address = "127.0.0.1:5565"
splitter = "HekaFramingSplitter"

[out]
type = "FileOutput"
message_matcher = "Type == 'nginx.access'"
path = "/tmp/gyges-fuzz-out.log"
encoder = "PayloadEncoder"
""")
    write("config", "syslog-stats", b"""[syslog]
type = "SyslogInput"
address = "127.0.0.1:5514"

[statsd]
type = "StatsdInput"
address = "127.0.0.1:8125"
stat_accum_name = "stat_accum"

[stat_accum]
type = "StatAccumInput"
ticker_interval = 5

[regex]
type = "PayloadRegexDecoder"
match_regex = '^(?P<Verb>\\w+) (?P<Path>\\S+)'
[regex.message_fields]
Type = "web"
Path = "%Path%"

[drop]
type = "LogOutput"
message_matcher = "Fields[Path] == '/'"
""")
    # statsd
    write("statsd", "datagram", b"hits:1|c\nlatency:320|ms|@0.1\ngauge:+4|g\nusers:alice|s\nmulti:1|c:2|c\n")
    write("statsd", "bad", b"nocolon\n:1|c\nbad name:1|c\nx:1|q\ny:abc|c\n")
    # syslog: [zone][line]
    for i, line in enumerate([
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][x@1 a="b\\"c"] \xef\xbb\xbfAn application event',
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        b"<13>Dec  1 23:59:59 host prog[123]: hello",
        b"<0>1 - - - - - -",
        b"12 <13>1 - - - - - x 5 <0>1 -",
        b"not syslog at all",
    ]):
        write("syslog", f"line-{i}", bytes([128 + i * 10]) + line)
    # fluent: [size][read count + sizes][frame]
    fixtures = os.path.join(os.path.dirname(ROOT), "..", "tests", "fixtures", "fluent")
    for name in ["forward.bin", "message.bin", "packed.bin", "compressed.bin"]:
        with open(os.path.join(fixtures, name), "rb") as f:
            write("fluent", name.replace(".bin", ""), bytes([40, 1, 9]) + f.read())
    # http
    write("http", "post", b"POST /logs?x=1&y=two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Request-Id: 7\r\n"
          b"Authorization: Basic dXNlcjpwYXNz\r\nUser-Agent: curl\r\n\r\nhello")
    write("http", "chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n")
    write("http", "get", b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n")
    # queue: [chunk][checkpoint length][checkpoint][segment]
    segment = b"".join(record(m) for m in MESSAGES) + record(MESSAGES[0], 3)
    body = b"gyges-checkpoint 1 segment=0 offset=%d seq=1" % len(record(MESSAGES[0]))
    checkpoint = body + b" crc32c=%08x\n" % crc32c(body)
    write("queue", "segment", bytes([31, len(checkpoint)]) + checkpoint + segment)
    torn = segment[:-7]
    write("queue", "torn", bytes([200, 0]) + torn)
    journal = b"logstreamer 1 device=1 inode=2 head_bytes=3 head_crc=4 offset=5 modified_ns=6 path=/var/log/x.log\n"
    write("queue", "journal", bytes([64, len(journal)]) + journal + segment[:60])
    damaged = bytearray(segment)
    damaged[40] ^= 0xFF
    write("queue", "damaged", bytes([7, len(checkpoint)]) + checkpoint + bytes(damaged))


if __name__ == "__main__":
    main()
