use super::{pack, size, unpack, Unpacked};
use crate::sandbox::tests::Harness;
use crate::sandbox::{Sandbox, SandboxKind};

fn sandbox(harness: &Harness) -> Sandbox {
    harness.sandbox(
        SandboxKind::Filter,
        "require 'struct'\nfunction process_message() return 0 end",
    )
}

#[test]
fn known_byte_strings() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness);
    let code = r#"
        assert(struct.pack("<i2", 258) == "\2\1")
        assert(struct.pack(">i2", 258) == "\1\2")
        assert(struct.pack("<I4", 1) == "\1\0\0\0")
        assert(struct.pack(">i4", -2) == "\255\255\255\254")
        assert(struct.pack("b", -1) == "\255")
        assert(struct.pack("B", 255) == "\255")
        assert(struct.pack("<h", -2) == "\254\255")
        assert(struct.pack("<l", 1) == "\1\0\0\0\0\0\0\0")
        assert(struct.pack(">d", 1.5) == "\63\248\0\0\0\0\0\0")
        assert(struct.pack("<f", 1.0) == "\0\0\128\63")
        assert(struct.pack("s", "ab") == "ab\0")
        assert(struct.pack("c3", "abcdef") == "abc")
        assert(struct.pack("c0", "abcdef") == "abcdef")
        assert(struct.pack("bxb", 1, 2) == "\1\0\2")
        -- alignment: none by default, up to !n otherwise
        assert(struct.pack("<bi4", 1, 2) == "\1\2\0\0\0")
        assert(struct.pack("<!4bi4", 1, 2) == "\1\0\0\0\2\0\0\0")
        assert(struct.pack("<!2bi4", 1, 2) == "\1\0\2\0\0\0")
        assert(struct.pack("<!bd", 1, 0) == "\1" .. string.rep("\0", 15))
        -- a float is truncated toward zero; numeric strings are numbers
        assert(struct.pack("<i2", 2.9) == "\2\0" and struct.pack("<i2", "3") == "\3\0")
        -- wider values keep their low bytes
        assert(struct.pack("<B", 257) == "\1")
        assert(struct.size("<!4bi4") == 8 and struct.size("bhld") == 19 and struct.size("c10x") == 11)
        assert(struct.size("") == 0)
    "#;
    sandbox.lua.load(code).exec().unwrap();
}

#[test]
fn unpack_returns_the_values_then_the_next_position() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness);
    let code = r#"
        local a, b, nxt = struct.unpack("<i2>I2", "\2\1\1\2")
        assert(a == 258 and b == 258 and nxt == 5)
        local s, n, after = struct.unpack("sB", "hello\0\7")
        assert(s == "hello" and n == 7 and after == 8)
        -- the optional start position
        local v, p = struct.unpack("<h", "xx\254\255", 3)
        assert(v == -2 and p == 5)
        -- c0 takes its length from the value before it, which it replaces
        local text, q = struct.unpack("Bc0", "\3abcde")
        assert(text == "abc" and q == 5)
        local x, y = struct.unpack("bxb", "\1\0\2")
        assert(x == 1 and y == 2)
        assert(struct.unpack("<L", "\255\255\255\255\255\255\255\255") == 2^64)
        assert(struct.unpack("<l", "\255\255\255\255\255\255\255\255") == -1)
        assert(math.type(struct.unpack("<i4", "\1\0\0\0")) == "integer")
        assert(struct.unpack(">d", struct.pack(">d", -0.1)) == -0.1)
    "#;
    sandbox.lua.load(code).exec().unwrap();
}

#[test]
fn round_trips_every_option() {
    let format = b"<!8 b B h H l L T i I i1 I3 i8 f d s c4 x c0";
    let values: Vec<mlua::Value> = vec![
        mlua::Value::Integer(-5),
        mlua::Value::Integer(200),
        mlua::Value::Integer(-30_000),
        mlua::Value::Integer(60_000),
        mlua::Value::Integer(i64::MIN),
        mlua::Value::Integer(i64::MAX),
        mlua::Value::Integer(12),
        mlua::Value::Integer(-123_456),
        mlua::Value::Integer(4_000_000_000),
        mlua::Value::Integer(-128),
        mlua::Value::Integer(0xff_ffff),
        mlua::Value::Integer(-1),
        mlua::Value::Number(0.5),
        mlua::Value::Number(-1e300),
    ];
    let lua = mlua::Lua::new();
    let mut all = values.clone();
    for text in ["zero terminated", "four", "whole"] {
        all.push(mlua::Value::String(lua.create_string(text).unwrap()));
    }
    let packed = pack(format, &all, usize::MAX).unwrap();
    for big in [false, true] {
        let format: Vec<u8> = if big {
            format
                .iter()
                .map(|&b| if b == b'<' { b'>' } else { b })
                .collect()
        } else {
            format.to_vec()
        };
        let packed = if big {
            pack(&format, &all, usize::MAX).unwrap()
        } else {
            packed.clone()
        };
        // c0 reads its length from a value in front of it: give it one.
        let mut data = packed.clone();
        let split = data.len() - 5;
        data.insert(split, 5);
        let unpack_format = [&format[..format.len() - 2], b"B c0"].concat();
        let (got, next) = unpack(&unpack_format, &data, 0).unwrap();
        assert_eq!(next, data.len());
        let expected_ints = [
            -5,
            200,
            -30_000,
            60_000,
            i64::MIN,
            i64::MAX,
            12,
            -123_456,
            4_000_000_000,
            -128,
            0xff_ffff,
            -1,
        ];
        for (index, want) in expected_ints.iter().enumerate() {
            assert_eq!(
                got[index],
                Unpacked::Integer(*want),
                "item {index}, big {big}"
            );
        }
        assert_eq!(got[12], Unpacked::Number(0.5));
        assert_eq!(got[13], Unpacked::Number(-1e300));
        assert_eq!(got[14], Unpacked::Bytes(b"zero terminated".to_vec()));
        assert_eq!(got[15], Unpacked::Bytes(b"four".to_vec()));
        assert_eq!(got[16], Unpacked::Bytes(b"whole".to_vec()));
    }
}

#[test]
fn bad_formats_and_arguments_raise_lua_errors() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness);
    for (code, expected) in [
        ("struct.pack('q', 1)", "invalid format option 'q'"),
        ("struct.pack('i9', 1)", "integer size 9 is out of range"),
        ("struct.pack('i0', 1)", "integer size 0 is out of range"),
        (
            "struct.pack('!3i', 1)",
            "alignment must be 1, 2, 4, 8 or 16",
        ),
        (
            "struct.pack('c99999999999', 'x')",
            "size in format is larger than",
        ),
        ("struct.pack('i4')", "bad argument #2 to 'pack' (no value)"),
        (
            "struct.pack('i4i4', 1)",
            "bad argument #3 to 'pack' (no value)",
        ),
        ("struct.pack('i4', {})", "number expected"),
        ("struct.pack('s', 5)", "string expected"),
        ("struct.pack('c5', 'abc')", "string too short"),
        ("struct.unpack('i4', 'abc')", "data string too short"),
        ("struct.unpack('s', 'abc')", "unfinished string"),
        ("struct.unpack('c0', 'abc')", "needs a non-negative length"),
        (
            "struct.unpack('bc0', '\\255abc')",
            "needs a non-negative length",
        ),
        ("struct.unpack('Bc0', '\\9abc')", "data string too short"),
        ("struct.unpack('b', 'abc', 5)", "offset out of string"),
        ("struct.unpack('b', 'abc', 0)", "offset out of string"),
        ("struct.size('s')", "undefined sizes"),
        ("struct.size('c0')", "undefined sizes"),
    ] {
        let error = sandbox.lua.load(code).exec().unwrap_err().to_string();
        assert!(error.contains(expected), "{code}: {error}");
    }
}

#[test]
fn a_packed_string_is_bounded_by_the_memory_limit() {
    let harness = Harness::new();
    let mut config = harness.config(
        "big",
        "require 'struct' big = string.rep('x', 300000) function process_message() local s = struct.pack('c0c0c0c0c0c0c0c0', big, big, big, big, big, big, big, big) return 0 end",
    );
    config.memory_limit = 1024 * 1024;
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Big", &config, &harness.host).unwrap();
    let record = crate::sandbox::tests::sample();
    let mut sink = Vec::new();
    let view = crate::message::MessageView::Proto(crate::message::ProtoView::new(&record));
    let terminated = sandbox.process_message(&view, &mut sink).unwrap_err();
    assert!(
        terminated.reason.contains("memory_limit exceeded"),
        "{terminated:?}"
    );
    assert_eq!(size(b"c1073741824c1073741824").unwrap(), 1 << 31);
}
