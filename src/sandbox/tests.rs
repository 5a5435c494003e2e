use std::path::Path;

use prost::Message as _;

use super::*;
use crate::message::proto::{Field, Message, ValueType};
use crate::message::{FieldValue, LineMeta, LineView, ProtoView, StrHeader};

/// A sandbox over an inline script, with its own base and share directories.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) host: HostInfo,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = HostInfo {
            hostname: "test-host".into(),
            pid: 4242,
            base_dir: dir.path().join("base"),
            share_dir: dir.path().join("share"),
            ..HostInfo::default()
        };
        std::fs::create_dir_all(&host.share_dir).unwrap();
        std::fs::create_dir_all(host.share_dir.join("lua_modules")).unwrap();
        Harness { dir, host }
    }

    pub(crate) fn config(&self, name: &str, script: &str) -> SandboxConfig {
        let path = self.host.share_dir.join(format!("{name}.lua"));
        std::fs::write(&path, script).unwrap();
        SandboxConfig::new(path)
    }

    pub(crate) fn module(&self, name: &str, source: &str) {
        std::fs::write(
            self.host
                .share_dir
                .join("lua_modules")
                .join(format!("{name}.lua")),
            source,
        )
        .unwrap();
    }

    pub(crate) fn sandbox(&self, kind: SandboxKind, script: &str) -> Sandbox {
        let config = self.config("script", script);
        Sandbox::new(kind, "TestFilter", &config, &self.host).expect("sandbox loads")
    }

    pub(crate) fn try_sandbox(
        &self,
        kind: SandboxKind,
        script: &str,
    ) -> Result<Sandbox, SandboxError> {
        let config = self.config("script", script);
        Sandbox::new(kind, "TestFilter", &config, &self.host)
    }
}

/// Runs `process_message` on [`sample`], which must succeed; what the sandbox wrote.
pub(crate) fn process_sample(sandbox: &mut Sandbox) -> Vec<u8> {
    let mut sink = Vec::new();
    let status = sandbox.process_message(&MessageView::Proto(ProtoView::new(&sample())), &mut sink);
    assert_eq!(
        status,
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
    sink
}

pub(crate) fn sample() -> Vec<u8> {
    let message = Message {
        uuid: vec![7; 16],
        timestamp: 1_428_773_426_113_040_228,
        r#type: Some("nginx.access".into()),
        logger: Some("tail".into()),
        severity: Some(6),
        payload: Some("GET / 200".into()),
        env_version: None,
        pid: Some(99),
        hostname: Some("web1".into()),
        fields: vec![
            Field {
                name: "status".into(),
                value_type: Some(ValueType::Integer as i32),
                value_integer: vec![200],
                ..Field::default()
            },
            Field {
                name: "tags".into(),
                value_string: vec!["a".into(), "b".into()],
                ..Field::default()
            },
            Field {
                name: "tags".into(),
                value_string: vec!["c".into()],
                representation: Some("label".into()),
                ..Field::default()
            },
            Field {
                name: "ratio".into(),
                value_type: Some(ValueType::Double as i32),
                value_double: vec![0.5],
                ..Field::default()
            },
            Field {
                name: "ok".into(),
                value_type: Some(ValueType::Bool as i32),
                value_bool: vec![true],
                ..Field::default()
            },
        ],
    };
    message.encode_to_vec()
}

pub(crate) fn records(sink: &[u8]) -> Vec<Message> {
    injected_records(sink)
        .map(|record| Message::decode(record).expect("valid protobuf"))
        .collect()
}

pub(crate) fn run(sandbox: &mut Sandbox, bytes: &[u8]) -> Result<CallStatus, Terminated> {
    let mut sink = Vec::new();
    sandbox.process_message(&MessageView::Proto(ProtoView::new(bytes)), &mut sink)
}

#[test]
fn filter_counts_by_type_and_injects_a_payload_per_tick() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        counts = {}
        function process_message()
            local t = read_message("Type")
            counts[t] = (counts[t] or 0) + 1
            return 0
        end
        function timer_event(ns)
            local names = {}
            for name in pairs(counts) do names[#names + 1] = name end
            table.sort(names)
            for _, name in ipairs(names) do add_to_payload(name, "\t", counts[name], "\n") end
            inject_payload("tsv", "counts")
            counts = {}
        end
        "#,
    );
    let mut sink = Vec::new();
    let meta = LineMeta {
        type_: b"syslog".to_vec().into(),
        ..LineMeta::default()
    };
    for _ in 0..3 {
        run(&mut sandbox, &sample()).unwrap();
    }
    let line = LineView {
        payload: b"x",
        uuid: [1; 16],
        timestamp: 5,
        meta: &meta,
    };
    sandbox
        .process_message(&MessageView::Line(line), &mut sink)
        .unwrap();
    assert!(sink.is_empty(), "process_message injected nothing");
    sandbox.timer_event(1_000_000_000, &mut sink).unwrap();
    let injected = records(&sink);
    assert_eq!(injected.len(), 1);
    let message = &injected[0];
    assert_eq!(message.r#type.as_deref(), Some("heka.sandbox-output"));
    assert_eq!(message.logger.as_deref(), Some("TestFilter"));
    assert_eq!(message.hostname.as_deref(), Some("test-host"));
    assert_eq!(
        message.payload.as_deref(),
        Some("nginx.access\t3\nsyslog\t1\n")
    );
    assert_eq!(message.fields[0].name, "payload_type");
    assert_eq!(message.fields[0].value_string, vec!["tsv".to_string()]);
    assert_eq!(
        message.fields[0].representation.as_deref(),
        Some("file-extension")
    );
    assert_eq!(message.fields[1].value_string, vec!["counts".to_string()]);
    assert_eq!(sandbox.stats().process_message_count, 4);
    assert_eq!(sandbox.stats().inject_message_count, 1);
}

#[test]
fn read_message_serves_headers_fields_and_raw() {
    let harness = Harness::new();
    let bytes = sample();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            assert(read_message("Type") == "nginx.access")
            assert(read_message("Logger") == "tail")
            assert(read_message("Hostname") == "web1")
            assert(read_message("Payload") == "GET / 200")
            assert(read_message("EnvVersion") == "", "absent string headers read as ''")
            assert(read_message("Severity") == 6 and math.type(read_message("Severity")) == "integer")
            assert(read_message("Pid") == 99)
            assert(read_message("Timestamp") == 1428773426113040228)
            assert(#read_message("Uuid") == 16)
            assert(read_message("Fields[status]") == 200)
            assert(math.type(read_message("Fields[status]")) == "integer")
            assert(read_message("Fields[tags]") == "a")
            assert(read_message("Fields[tags]", 0, 1) == "b")
            assert(read_message("Fields[tags]", 1) == "c")
            assert(read_message("Fields[tags]", 2) == nil)
            assert(read_message("Fields[tags]", 0, 2) == nil)
            assert(read_message("Fields[ratio]") == 0.5)
            assert(read_message("Fields[ok]") == true)
            assert(read_message("Fields[missing]") == nil)
            assert(read_message("Bogus") == nil)
            assert(read_message("size") == #read_message("raw"))
            local framed = read_message("framed")
            assert(framed:byte(1) == 0x1e and #framed == #read_message("raw") + 6)
            local msg = decode_message(read_message("raw"))
            assert(msg.Type == "nginx.access" and msg.Fields[1].name == "status")
            assert(msg.Fields[1].value[1] == 200 and msg.Fields[1].value_type == 2)
            assert(msg.Fields[2].value[2] == "b")
            assert(msg.Fields[3].representation == "label")
            local ok, err = pcall(read_message, "Fields[tags]", -1)
            assert(not ok and err:find("field index"))
            return 0
        end
        "#,
    );
    assert_eq!(
        run(&mut sandbox, &bytes),
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
}

#[test]
fn read_next_field_walks_every_field_once_per_message() {
    let harness = Harness::new();
    let bytes = sample();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        calls = 0
        function process_message()
            calls = calls + 1
            local seen = {}
            while true do
                local value_type, name, value, representation, count = read_next_field()
                if not value_type then break end
                seen[#seen + 1] = table.concat({value_type, name, tostring(value), representation, count}, "|")
            end
            local expected = {
                "2|status|200||1", "0|tags|a||2", "0|tags|c|label|1", "3|ratio|0.5||1", "4|ok|true||1",
            }
            assert(#seen == #expected, calls .. ": " .. table.concat(seen, " "))
            for i = 1, #expected do assert(seen[i] == expected[i], seen[i]) end
            assert(read_next_field() == nil, "stays at the end")
            return 0
        end
        "#,
    );
    for _ in 0..2 {
        assert_eq!(
            run(&mut sandbox, &bytes),
            Ok(CallStatus::Ok),
            "{:?}",
            sandbox.termination_reason()
        );
    }
}

#[test]
fn read_message_on_a_line_record_and_outside_a_message() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            assert(read_message("Payload") == "hello line")
            assert(read_message("Type") == "tcp")
            assert(read_message("Severity") == 7, "absent Severity reads as 7")
            assert(read_message("Timestamp") == 12345)
            return 0
        end
        function timer_event() assert(read_message("Type") == nil) end
        "#,
    );
    let meta = LineMeta {
        type_: b"tcp".to_vec().into(),
        ..LineMeta::default()
    };
    let line = LineView {
        payload: b"hello line",
        uuid: [2; 16],
        timestamp: 12345,
        meta: &meta,
    };
    let mut sink = Vec::new();
    assert_eq!(
        sandbox.process_message(&MessageView::Line(line), &mut sink),
        Ok(CallStatus::Ok)
    );
    sandbox
        .host()
        .load_record(&MessageView::Proto(ProtoView::new(&[])));
    sandbox.timer_event(0, &mut sink).unwrap();
}

#[test]
fn filter_inject_message_stamps_headers_and_encodes_both_field_forms() {
    let harness = Harness::new();
    let mut config = harness.config(
        "inject",
        r#"
        function process_message()
            inject_message({
                Type = "counter", Logger = "spoof", Hostname = "spoof", Payload = "p",
                Severity = 3, Pid = 12, Timestamp = 77,
                Fields = {
                    count = 5,
                    name = "n",
                    flag = true,
                    list = {"x", "y"},
                    bytes = {value = "\0\1", value_type = 1},
                    ms = {value = {10, 20}, value_type = 2, representation = "ms"},
                }
            })
            inject_message({Type = "arr", Fields = {{name = "a", value = 1.5}, {name = "b", value = {1, 2}, value_type = 2}}})
            return 0
        end
        "#,
    );
    let host = HostInfo {
        max_process_inject: 2,
        ..harness.host.clone()
    };
    config.memory_limit = MEMORY_LIMIT_DEFAULT;
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Stamp", &config, &host).unwrap();
    let sink = process_sample(&mut sandbox);
    let injected = records(&sink);
    assert_eq!(injected.len(), 2);
    let first = &injected[0];
    assert_eq!(first.r#type.as_deref(), Some("heka.sandbox.counter"));
    assert_eq!(first.logger.as_deref(), Some("Stamp"));
    assert_eq!(first.hostname.as_deref(), Some("test-host"));
    assert_eq!(
        (first.severity, first.pid, first.timestamp),
        (Some(3), Some(12), 77)
    );
    assert_eq!(first.uuid.len(), 16);
    let field = |name: &str| {
        first
            .fields
            .iter()
            .find(|field| field.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        field("count").value_double,
        vec![5.0],
        "Lua numbers are doubles by default"
    );
    assert_eq!(field("name").value_string, vec!["n".to_string()]);
    assert_eq!(field("flag").value_bool, vec![true]);
    assert_eq!(
        field("list").value_string,
        vec!["x".to_string(), "y".to_string()]
    );
    assert_eq!(field("bytes").value_bytes, vec![vec![0u8, 1]]);
    assert_eq!(field("ms").value_integer, vec![10, 20]);
    assert_eq!(field("ms").representation.as_deref(), Some("ms"));
    let second = &injected[1];
    assert_eq!(second.fields[0].name, "a");
    assert_eq!(second.fields[0].value_double, vec![1.5]);
    assert_eq!(second.fields[1].value_integer, vec![1, 2]);
}

#[test]
fn inject_message_from_a_protobuf_string_is_restamped() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            inject_message(read_message("raw"))
            return 0
        end
        "#,
    );
    let mut sink = Vec::new();
    sandbox
        .process_message(&MessageView::Proto(ProtoView::new(&sample())), &mut sink)
        .unwrap();
    let injected = records(&sink);
    assert_eq!(
        injected[0].r#type.as_deref(),
        Some("heka.sandbox.nginx.access")
    );
    assert_eq!(injected[0].logger.as_deref(), Some("TestFilter"));
    assert_eq!(injected[0].payload.as_deref(), Some("GET / 200"));
    assert_eq!(injected[0].fields.len(), 5, "fields are copied");
}

#[test]
fn inject_caps_terminate_the_filter() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            inject_payload("txt", "", "one")
            pcall(inject_payload, "txt", "", "two")
            return 0
        end
        "#,
    );
    let error = run(&mut sandbox, &sample()).unwrap_err();
    assert!(
        error.reason.contains("exceeded InjectMessage count"),
        "{error:?}"
    );
    assert_eq!(
        run(&mut sandbox, &sample()),
        Err(error),
        "terminated stays terminated"
    );
}

#[test]
fn return_codes_follow_hekas_contract() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            local p = read_message("Payload")
            if p == "fail" then return -1, "bad input" end
            if p == "fatal" then return 1, "gave up" end
            return 0
        end
        "#,
    );
    let message = |payload: &str| {
        Message {
            uuid: vec![1; 16],
            timestamp: 1,
            payload: Some(payload.into()),
            ..Message::default()
        }
        .encode_to_vec()
    };
    assert_eq!(run(&mut sandbox, &message("fine")), Ok(CallStatus::Ok));
    assert_eq!(run(&mut sandbox, &message("fail")), Ok(CallStatus::Failed));
    assert_eq!(sandbox.last_error(), "bad input");
    assert_eq!(sandbox.stats().process_message_failures, 1);
    let terminated = run(&mut sandbox, &message("fatal")).unwrap_err();
    assert_eq!(terminated.reason, "gave up");
    for (script, expected) in [
        (
            "function process_message() return 'x' end",
            "must return a numeric status code",
        ),
        (
            "function process_message() return 0, {} end",
            "must return a nil or string",
        ),
        ("function process_message() error('boom') end", "boom"),
        (
            "function process_message() return nil + 1 end",
            "attempt to perform arithmetic",
        ),
    ] {
        let mut sandbox = harness.sandbox(SandboxKind::Filter, script);
        let terminated = run(&mut sandbox, &sample()).unwrap_err();
        assert!(
            terminated.reason.contains(expected),
            "{script}: {terminated:?}"
        );
        assert!(terminated.reason.starts_with("process_message()") || expected == "gave up");
    }
}

// The attempts to escape the sandbox or outrun its limits, one test each, are in
// `escape_tests.rs`.

#[test]
fn lua51_names_and_modules_work() {
    let harness = Harness::new();
    harness.module(
        "legacy",
        r#"
        local string = require "string"
        local M = {}
        setfenv(1, M)
        function greet(name) return string.format("hi %s", name) end
        return M
        "#,
    );
    std::fs::create_dir_all(harness.host.share_dir.join("lua_modules/util")).unwrap();
    harness.module(
        "util/sum",
        "local M = {} function M.sum(a, b) return a + b end return M",
    );
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        local legacy = require "legacy"
        local util = require "util.sum"
        assert(require "legacy" == legacy, "modules are cached")
        assert(greet == nil, "setfenv kept the module's globals to itself")
        function process_message()
            assert(legacy.greet("x") == "hi x")
            assert(util.sum(2, 3) == 5)
            assert(unpack({1, 2}) == 1)
            assert(table.getn({1, 2, 3}) == 3)
            assert(table.maxn({[7] = 1}) == 7)
            assert(math.pow(2, 10) == 1024)
            assert(math.log10(1000) == 3)
            assert(math.mod(7, 3) == 1)
            assert(math.ldexp(1, 3) == 8)
            local m, e = math.frexp(8) assert(m == 0.5 and e == 4)
            local words = {}
            for w in string.gfind("a b c", "%a") do words[#words + 1] = w end
            assert(#words == 3)
            assert(string.format("%d", 1.5e9 / 1e3 + 0.25) == "1500000")
            assert(string.format("%d|%5.1f", 7.9, 7.9) == "7|  7.9")
            assert(string.format("%x", 255.0) == "ff")
            local ok = pcall(string.format, "%d", "x")
            assert(not ok)
            local env = getfenv(1)
            assert(env == _G)
            local lpeg = require "lpeg"
            assert(lpeg.match(lpeg.R("09")^1, "123x") == 4)
            assert(_G.lpeg == lpeg, "require sets the module global, as Lua 5.1 did")
            return 0
        end
        "#,
    );
    assert_eq!(
        run(&mut sandbox, &sample()),
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
}

#[test]
fn re_module_is_available_when_installed() {
    if !Path::new(env::RE_MODULE_PATH).exists() {
        eprintln!("skipping: {} not installed", env::RE_MODULE_PATH);
        return;
    }
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        local re = require "re"
        function process_message()
            assert(re.match("the number 423 is odd", "({%a+} / .)*") == "the")
            assert(re.find("the number 423 is odd", "[0-9]+") == 12)
            return 0
        end
        "#,
    );
    assert_eq!(
        run(&mut sandbox, &sample()),
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
}

#[test]
fn config_values_are_read() {
    let harness = Harness::new();
    let mut config = harness.config(
        "config",
        r#"
        function process_message()
            assert(read_config("s") == "text")
            assert(read_config("b") == true)
            assert(read_config("i") == 42 and math.type(read_config("i")) == "integer")
            assert(read_config("f") == 1.5)
            assert(read_config("missing") == nil)
            local hosts = read_config("hosts")
            assert(#hosts == 2 and hosts[1] == "a" and hosts[2] == "b")
            local rows = read_config("rows")
            assert(rows[1][1] == 1 and rows[2][2] == 4)
            local anomaly = read_config("anomaly")
            assert(anomaly.col == 1 and anomaly.rule == "roc" and anomaly.limits.high == 2.5)
            return 0
        end
        "#,
    );
    let table: toml::Table = toml::from_str(
        "s = 'text'\nb = true\ni = 42\nf = 1.5\nhosts = ['a', 'b']\nrows = [[1, 2], [3, 4]]\n\
         [anomaly]\ncol = 1\nrule = 'roc'\nlimits = { high = 2.5 }",
    )
    .unwrap();
    config.config = table.try_into().unwrap();
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Config", &config, &harness.host).unwrap();
    assert_eq!(
        run(&mut sandbox, &sample()),
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
}

#[test]
fn config_is_validated_with_clear_errors() {
    let parsed: Result<SandboxConfig, _> = toml::from_str("filename = 'x.lua'\nmemory_limt = 5");
    let error = parsed.unwrap_err().to_string();
    assert!(error.contains("memory_limt"), "{error}");
    let parsed: Result<SandboxConfig, _> =
        toml::from_str("filename = 'x.lua'\nconfig = { a = 1979-05-27T07:32:00Z }");
    let error = parsed.unwrap_err().to_string();
    assert!(
        error.contains("string, boolean, integer, float, array or table"),
        "{error}"
    );
    let parsed: SandboxConfig = toml::from_str("filename = 'x.lua'").unwrap();
    assert_eq!(parsed.memory_limit, MEMORY_LIMIT_DEFAULT);
    assert_eq!(parsed.output_limit, 63 * 1024);
    for (key, value) in [
        ("memory_limit", 0u64),
        ("instruction_limit", 0),
        ("output_limit", u64::MAX / 2),
    ] {
        let text = format!("filename = 'x.lua'\n{key} = {value}");
        let config: SandboxConfig = toml::from_str(&text).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains(key), "{error}");
    }
    let config = SandboxConfig {
        script_type: "go".into(),
        ..SandboxConfig::new("x.lua")
    };
    assert!(config.validate().is_err());
}

#[test]
fn load_failures_are_reported() {
    let harness = Harness::new();
    let cases = [
        ("function process_message( return 0 end", "load"),
        ("error('at load')", "load"),
        ("x = 1", "missing_function"),
        (
            "while true do end function process_message() return 0 end",
            "load",
        ),
        ("\x1bLua", "load"),
    ];
    for (script, code) in cases {
        let error = harness
            .try_sandbox(SandboxKind::Filter, script)
            .unwrap_err();
        assert_eq!(error.code(), code, "{script}: {error}");
    }
    let config = SandboxConfig::new(harness.dir.path().join("absent.lua"));
    let error = Sandbox::new(SandboxKind::Filter, "x", &config, &harness.host).unwrap_err();
    assert_eq!(error.code(), "script");
}

#[test]
fn encode_and_decode_message_round_trip() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            local pb = encode_message({Type = "t", Payload = "p", Timestamp = 5,
                Fields = {{name = "n", value = {1, 2}, value_type = 2}}})
            local msg = decode_message(pb)
            assert(msg.Type == "t" and msg.Payload == "p" and msg.Timestamp == 5)
            assert(#msg.Uuid == 16)
            assert(msg.Fields[1].value[2] == 2)
            local framed = encode_message({Type = "t"}, true)
            assert(framed:byte(1) == 0x1e and framed:byte(3) == 0x08)
            local inner = framed:sub(framed:byte(2) + 4)
            assert(decode_message(inner).Type == "t")
            assert(not pcall(decode_message, "garbage"))
            return 0
        end
        "#,
    );
    assert_eq!(
        run(&mut sandbox, &sample()),
        Ok(CallStatus::Ok),
        "{:?}",
        sandbox.termination_reason()
    );
}

#[test]
fn preserved_data_survives_a_restart_and_honours_the_version() {
    let harness = Harness::new();
    let script = r#"
        _PRESERVATION_VERSION = @VERSION@
        count = 0
        by_type = {}
        nested = {deep = {list = {1, 2.5, "three", true}}}
        alias = by_type
        weird = {["key with \"quotes\"\n"] = "\0\1\255", [1.5] = 0/0, [2] = 1/0}
        require "circular_buffer"
        cb = circular_buffer.new(4, 2, 1)
        cb:set_header(1, "Requests")
        function process_message()
            count = count + 1
            local t = read_message("Type")
            by_type[t] = (by_type[t] or 0) + 1
            cb:add(read_message("Timestamp"), 1, 1)
            cb:annotate(read_message("Timestamp"), 2, "alert", "spike / \"x\"")
            return 0
        end
    "#;
    let config_for = |version: u32| {
        let mut config = harness.config(
            "preserve",
            &script.replace("@VERSION@", &version.to_string()),
        );
        config.preserve_data = true;
        config
    };
    let bytes = Message {
        uuid: vec![1; 16],
        timestamp: 3_000_000_000,
        r#type: Some("a".into()),
        ..Message::default()
    }
    .encode_to_vec();
    {
        let mut sandbox =
            Sandbox::new(SandboxKind::Filter, "Keeper", &config_for(1), &harness.host).unwrap();
        for _ in 0..3 {
            run(&mut sandbox, &bytes).unwrap();
        }
        sandbox.preserve().unwrap();
    }
    let path = preserve::data_path(&harness.host.base_dir, "Keeper");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved
        .starts_with("if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= 1 then return end"));
    let mut sandbox = harness.sandbox_named("Keeper", &config_for(1));
    let check = r#"
        assert(count == 3, "count " .. tostring(count))
        assert(by_type.a == 3)
        assert(alias == by_type, "shared references stay shared")
        assert(nested.deep.list[2] == 2.5 and nested.deep.list[3] == "three" and nested.deep.list[4] == true)
        assert(math.type(nested.deep.list[1]) == "integer")
        assert(weird["key with \"quotes\"\n"] == "\0\1\255")
        assert(weird[1.5] ~= weird[1.5] and weird[2] == 1/0)
        assert(cb:get(3e9, 1) == 3)
        assert(cb:get_delta(3e9, 1) == 3)
        local name = cb:get_header(1)
        assert(name == "Requests")
        add_to_payload(cb)
    "#;
    sandbox.lua.load(check).exec().unwrap();
    let payload = sandbox.host().payload_text();
    assert!(
        payload.contains("\"text\":\"spike \\/ \\\"x\\\"\""),
        "{payload}"
    );
    run(&mut sandbox, &bytes).unwrap();
    sandbox.preserve().unwrap();
    drop(sandbox);
    let sandbox = harness.sandbox_named("Keeper", &config_for(2));
    let count: i64 = sandbox.lua.globals().get("count").unwrap();
    assert_eq!(
        count, 0,
        "a new _PRESERVATION_VERSION discards the old state"
    );
}

impl Harness {
    fn sandbox_named(&self, name: &str, config: &SandboxConfig) -> Sandbox {
        Sandbox::new(SandboxKind::Filter, name, config, &self.host).expect("sandbox loads")
    }
}

#[test]
fn terminated_message_has_hekas_fields() {
    let stats = SandboxStats {
        process_message_count: 12,
        ..SandboxStats::default()
    };
    let bytes = terminated_message("MyFilter", "process_message() boom", &stats);
    let view = ProtoView::new(&bytes);
    view.validate().unwrap();
    assert_eq!(
        view.str_header(StrHeader::Type),
        Some(&b"heka.sandbox-terminated"[..])
    );
    assert_eq!(view.str_header(StrHeader::Logger), Some(&b"hekad"[..]));
    assert_eq!(
        view.str_header(StrHeader::Payload),
        Some(&b"process_message() boom"[..])
    );
    let plugin = view.field(b"plugin", 0).unwrap().value(0);
    assert_eq!(plugin, Some(FieldValue::String(b"MyFilter")));
    let count = view.field(b"ProcessMessageCount", 0).unwrap();
    assert_eq!(count.value(0), Some(FieldValue::Integer(12)));
    assert_eq!(count.representation(), Some(&b"count"[..]));
}

#[test]
fn injected_records_stop_at_a_truncated_tail() {
    let mut sink = Vec::new();
    push_record(&mut sink, b"abc");
    push_record(&mut sink, b"");
    push_record(&mut sink, b"de");
    sink.truncate(sink.len() - 1);
    let all: Vec<&[u8]> = injected_records(&sink).collect();
    assert_eq!(all, vec![&b"abc"[..], &b""[..]]);
}

#[test]
fn output_text_matches_lua_sandbox() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message() return 0 end
        function timer_event()
            inject_payload("txt", "", 1, " ", 2.5, " ", 1/3, " ", true, " ", nil, " ", 1e20, " ", 10/2)
        end
        "#,
    );
    let mut sink = Vec::new();
    sandbox.timer_event(0, &mut sink).unwrap();
    let injected = records(&sink);
    assert_eq!(
        injected[0].payload.as_deref(),
        Some("1 2.5 0.33333333 true nil 1e+20 5")
    );
    let mut bad = harness.sandbox(
        SandboxKind::Filter,
        "function process_message() add_to_payload({}) return 0 end",
    );
    let terminated = run(&mut bad, &sample()).unwrap_err();
    assert!(
        terminated.reason.contains("unsupported type 'table'"),
        "{terminated:?}"
    );
}

mod arbitrary_records {
    use proptest::prelude::*;

    use super::*;

    const READ_EVERYTHING: &str = r#"
        local names = {"Type", "Logger", "Payload", "EnvVersion", "Hostname", "Uuid", "Timestamp",
            "Severity", "Pid", "raw", "framed", "size", "Fields[a]", "Fields[]", "Fields["}
        function process_message()
            for _, name in ipairs(names) do read_message(name, 0, 0) read_message(name, 3, 7) end
            pcall(decode_message, read_message("raw"))
            pcall(inject_message, read_message("raw"))
            pcall(write_message, "Fields[a]", 1, "", 0, 0)
            pcall(write_message, "Payload", "x")
            return 0
        end
    "#;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let harness = Harness::new();
            let mut sandbox = harness.sandbox(SandboxKind::Decoder, READ_EVERYTHING);
            let mut sink = Vec::new();
            let status = sandbox.process_message(&MessageView::Proto(ProtoView::new(&bytes)), &mut sink);
            prop_assert!(status.is_ok(), "{:?}", status);
        }
    }
}
