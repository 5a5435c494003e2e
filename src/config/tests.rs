//! Tests of config loading and planning: the embedded default, type resolution, errors that
//! name file, section and key, `%ENV[NAME]` substitution, directory merging, tuning profiles,
//! durable and acknowledged outputs, and the upper bound of every number a user sets.

use super::plan::{Overrides, SplitterPlan};
use super::*;
use crate::input::tcp::TcpInputKind;
use crate::output::tcp::TcpPlan;

fn plan_of(text: &str) -> Result<Plan, ConfigError> {
    let mut document = Document {
        origin: "test.toml".into(),
        ..Document::default()
    };
    add_text(&mut document, "test.toml", text)?;
    plan::build(&document, &Overrides::default())
}

fn error_of(text: &str) -> ConfigError {
    match plan_of(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error,
    }
}

const INPUT: &str = "[TcpInput]\naddress = \"127.0.0.1:5565\"\n";

#[test]
fn the_embedded_default_config_is_valid() {
    let plan = load(None, &Overrides::default()).unwrap();
    assert_eq!(plan.inputs.len(), 3);
    let http_address = plan.global.http_address.map(|address| address.to_string());
    assert_eq!(http_address.as_deref(), Some("127.0.0.1:4352"));
    assert_eq!(plan.outputs.len(), 1);
    assert_eq!(
        plan.inputs[0].splitter,
        SplitterPlan::HekaFrame {
            skip_authentication: false,
            signers: Default::default(),
        }
    );
    let decoder = plan.inputs[0]
        .decoder
        .as_ref()
        .map(|decoder| decoder.type_name());
    assert_eq!(decoder, Some("ProtobufDecoder"));
    assert!(plan.inputs[1].decoder.is_none());
    assert_eq!(plan.inputs[2].kind.type_name(), "UdpInput");
}

#[test]
fn type_comes_from_the_key_or_the_section_name() {
    let plan = plan_of(&format!(
        "{INPUT}[lines]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nsplitter = \"my_split\"\n\
         [my_split]\ntype = \"TokenSplitter\"\ndelimiter = \"|\"\n\
         [out]\ntype = \"FileOutput\"\npath = \"x\"\nmessage_matcher = \"TRUE\"\nencoder = \"PayloadEncoder\"\n"
    ))
    .unwrap();
    assert_eq!(plan.inputs[1].name, "lines");
    assert_eq!(
        plan.inputs[1].splitter,
        SplitterPlan::Token {
            delimiter: b'|',
            count: 1,
            deliver_incomplete_final: false
        }
    );
    let payload = (*plan.outputs[0].encoder).as_any().downcast_ref();
    assert!(matches!(
        payload,
        Some(crate::encoder::PayloadOptions {
            append_newlines: true,
            ..
        })
    ));
    let file = (*plan.outputs[0].kind).as_any().downcast_ref();
    assert!(matches!(
        file,
        Some(crate::output::file::FileOutputKind {
            per_core: false,
            ..
        })
    ));
}

/// One FileOutput without `%{core}` is appended to by every core when it is neither durable
/// nor rotating; a durable or rotating one keeps its single writer on the owner core.
#[test]
fn every_core_writes_one_file_unless_it_is_durable_or_rotates() {
    use crate::output::Writers;
    let cases = [
        ("path = \"x\"\n", Writers::EveryCore, true),
        (
            "path = \"x\"\ndelivery = \"best_effort\"\n",
            Writers::EveryCore,
            true,
        ),
        ("path = \"x-%{core}\"\n", Writers::EveryCore, false),
        (
            "path = \"x\"\ndelivery = \"durable\"\n",
            Writers::Owner,
            false,
        ),
        (
            "path = \"x-%H\"\nrotation_interval = 1\n",
            Writers::Owner,
            false,
        ),
    ];
    for (keys, writers, shared) in cases {
        let plan = plan_of(&format!("{INPUT}[FileOutput]\n{keys}")).unwrap();
        let kind = &plan.outputs[0].kind;
        assert_eq!(kind.writers(), writers, "{keys}");
        let file: &crate::output::file::FileOutputKind =
            (**kind).as_any().downcast_ref().expect("a FileOutput");
        assert_eq!(file.shared_offset.is_some(), shared, "{keys}");
    }
}

#[test]
fn errors_name_file_section_and_key() {
    let cases = [
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\nflush_interval = \"soon\"\n"),
            "FileOutput",
            "flush_interval",
        ),
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\ncolour = 1\n"),
            "FileOutput",
            "colour",
        ),
        (
            format!("{INPUT}[FileOutput]\nflush_count = 1\n"),
            "FileOutput",
            "path",
        ),
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\nperm = \"999\"\n"),
            "FileOutput",
            "perm",
        ),
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\nflush_operator = \"XOR\"\n"),
            "FileOutput",
            "flush_operator",
        ),
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\nmessage_matcher = \"Type ==\"\n"),
            "FileOutput",
            "message_matcher",
        ),
        (
            format!("{INPUT}[FileOutput]\npath = \"x\"\nencoder = \"Nope\"\n"),
            "FileOutput",
            "encoder",
        ),
        (
            "[TcpInput]\naddress = \"not an address\"\n".to_string(),
            "TcpInput",
            "address",
        ),
        (
            "[TcpInput]\naddress = \"127.0.0.1:1\"\nsplitter = \"Nope\"\n".to_string(),
            "TcpInput",
            "splitter",
        ),
        (
            // TLS needs a certificate: the error names the key to set.
            "[TcpInput]\naddress = \"127.0.0.1:1\"\nuse_tls = true\n".to_string(),
            "TcpInput",
            "tls.cert_file",
        ),
        (
            format!("{INPUT}[t]\ntype = \"TokenSplitter\"\ndelimiter = \"ab\"\n"),
            "t",
            "delimiter",
        ),
        (format!("{INPUT}[x]\ntype = \"Bogus\"\n"), "x", "type"),
        (
            format!("{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = []\n"),
            "mail",
            "send_to",
        ),
        (
            format!(
                "{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"a@b\"]\nauth = \"Login\"\n"
            ),
            "mail",
            "auth",
        ),
        (
            format!(
                "{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"a@b\"]\nauth = \"Plain\"\n"
            ),
            "mail",
            "user",
        ),
        (
            format!("{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"a@b\"]\nhost = \"mail\"\n"),
            "mail",
            "host",
        ),
        (
            format!("{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"nobody\"]\n"),
            "mail",
            "send_to",
        ),
        (
            format!(
                "{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"a@b\"]\n\
                 [mail.tls]\nroot_cafile = \"/no/such/ca.pem\"\n"
            ),
            "mail",
            "tls.root_cafile",
        ),
        (
            format!(
                "{INPUT}[mail]\ntype = \"SmtpOutput\"\nsend_to = [\"a@b\"]\nuse_tls = true\n\
                 [mail.tls]\nclient_auth = \"RequireAnyClientCert\"\n"
            ),
            "mail",
            "tls.client_auth",
        ),
        (
            "[poll]\ntype = \"FilePollingInput\"\nfile_path = \"/tmp/x\"\nticker_interval = 0\n"
                .to_string(),
            "poll",
            "ticker_interval",
        ),
        (
            "[poll]\ntype = \"FilePollingInput\"\nfile_path = \"\"\n".to_string(),
            "poll",
            "file_path",
        ),
        (
            format!("{INPUT}[hekad]\nmax_message_size = 1\n"),
            "hekad",
            "max_message_size",
        ),
        (format!("{INPUT}[hekad]\ncores = [999]\n"), "hekad", "cores"),
        (
            format!("{INPUT}[gyges]\nmatcher_dialect = \"go\"\n"),
            "gyges",
            "matcher_dialect",
        ),
    ];
    for (text, section, key) in cases {
        let error = error_of(&text);
        assert_eq!(error.file, "test.toml", "{error}");
        assert_eq!(error.section.as_deref(), Some(section), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
        let shown = error.to_string();
        assert!(
            shown.contains("test.toml") && shown.contains(section) && shown.contains(key),
            "{shown}"
        );
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    let error = error_of("[TcpInput]\naddress = \n");
    assert!(error.message.contains("line 2"), "{error}");
}

#[test]
fn ignored_heka_options_are_accepted_and_listed() {
    let plan = plan_of(&format!(
        "[hekad]\nmaxprocs = 4\npoolsize = 100\nplugin_chansize = 30\n{INPUT}"
    ))
    .unwrap();
    assert_eq!(
        plan.ignored_options,
        vec!["maxprocs", "poolsize", "plugin_chansize"]
    );
}

#[test]
fn hekas_section_names_with_a_colon_and_keys_with_a_pipe_are_read() {
    let script = lua_script("function process_message() return 0 end");
    let plan = plan_of(&format!(
        "[tcp:5565]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:5565\"\n\
         [tcp:5565.signer.ops_0]\nhmac_key = \"secret\"\n\
         [file:all]\ntype = \"FileOutput\"\npath = \"x\"\nmessage_matcher = \"TRUE\"\n\
         [lua:counter]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\n\
         message_matcher = \"TRUE\"\n[lua:counter.config]\nUrl|uri = \"%Url%\"\n",
        script.path().display()
    ))
    .unwrap();
    assert_eq!(plan.inputs[0].name, "tcp:5565");
    assert_eq!(plan.outputs[0].name, "file:all");
    assert_eq!(plan.filters[0].name, "lua:counter");
}

#[test]
fn hekas_common_plugin_keys_are_accepted_each_with_one_notice() {
    let script = lua_script("function process_message() return 0 end");
    let plan = plan_of(&format!(
        "[TcpInput]\naddress = \"127.0.0.1:5565\"\ncan_exit = false\nticker_interval = 5\n\
         synchronous_decode = true\n\
         [TcpInput.retries]\nmax_jitter = \"500ms\"\nmax_delay = \"30s\"\ndelay = \"250ms\"\n\
         max_retries = -1\n\
         [FileOutput]\npath = \"x\"\nmessage_matcher = \"TRUE\"\ncan_exit = true\n\
         [FileOutput.retries]\ndelay = \"1s\"\n\
         [counter]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\nprofile = true\n\
         ticker_interval = 5\ncan_exit = true\nmessage_matcher = \"TRUE\"\n",
        script.path().display()
    ))
    .unwrap();
    let notices: Vec<(&str, &str)> = plan
        .notices
        .iter()
        .map(|notice| (notice.section.as_str(), notice.key))
        .collect();
    assert_eq!(
        notices,
        vec![
            ("TcpInput", "can_exit"),
            ("TcpInput", "retries"),
            ("TcpInput", "ticker_interval"),
            ("TcpInput", "synchronous_decode"),
            ("FileOutput", "can_exit"),
            ("FileOutput", "retries"),
            ("counter", "can_exit"),
            ("counter", "profile"),
        ]
    );
    let line = plan.notices[0].to_string();
    assert!(
        line.starts_with("test.toml, section [TcpInput], key `can_exit`: accepted from Heka;"),
        "{line}"
    );
}

fn lua_script(source: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".lua")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, source.as_bytes()).expect("write");
    file
}

#[test]
fn every_sandbox_script_is_loaded_when_the_config_is_planned() {
    let section = |kind: &str, path: &str| {
        let name = kind.to_lowercase();
        let uses = match kind {
            "SandboxFilter" => "message_matcher = \"TRUE\"\n".to_string(),
            "SandboxDecoder" => {
                format!("[UdpInput]\naddress = \"127.0.0.1:1\"\ndecoder = \"{name}\"\n")
            }
            _ => format!("[FileOutput]\npath = \"x\"\nencoder = \"{name}\"\n"),
        };
        format!("{INPUT}[{name}]\ntype = \"{kind}\"\nfilename = \"{path}\"\n{uses}")
    };
    let good = lua_script("require 'string'\nfunction process_message() return 0 end");
    let missing_module =
        lua_script("require 'no_such_module'\nfunction process_message() return 0 end");
    let syntax = lua_script("function process_message( return 0 end");
    let no_function = lua_script("local x = 1");
    for kind in ["SandboxFilter", "SandboxDecoder", "SandboxEncoder"] {
        let good_path = good.path().display().to_string();
        plan_of(&section(kind, &good_path)).unwrap_or_else(|error| panic!("{kind}: {error}"));
        let cases = [
            ("/no/such/script.lua".to_string(), "cannot read script"),
            (
                missing_module.path().display().to_string(),
                "no_such_module",
            ),
            (syntax.path().display().to_string(), "failed to load"),
            (no_function.path().display().to_string(), "process_message"),
        ];
        for (path, expected) in cases {
            let error = error_of(&section(kind, &path));
            assert_eq!(
                error.section.as_deref(),
                Some(kind.to_lowercase().as_str()),
                "{error}"
            );
            assert_eq!(error.key.as_deref(), Some("filename"), "{kind}: {error}");
            assert!(
                error.message.contains(expected),
                "{kind} {expected}: {error}"
            );
        }
    }
}

#[test]
fn a_bad_retries_table_names_its_key() {
    let error = error_of(&format!(
        "{INPUT}[FileOutput]\npath = \"x\"\n[FileOutput.retries]\ndelay = \"soon\"\n"
    ));
    assert_eq!(error.section.as_deref(), Some("FileOutput"));
    assert_eq!(error.key.as_deref(), Some("retries.delay"), "{error}");
    assert!(error.message.contains("not a duration"), "{error}");
    let error = error_of(&format!(
        "{INPUT}[FileOutput]\npath = \"x\"\n[FileOutput.retries]\nmax_tries = 3\n"
    ));
    assert_eq!(error.key.as_deref(), Some("retries.max_tries"), "{error}");
}

#[test]
fn env_substitution_happens_before_parsing() {
    std::env::set_var("GYGES_TEST_PORT", "5999");
    assert_eq!(
        substitute_env("a=%ENV[GYGES_TEST_PORT] b=%ENV[NOT SET] c=%ENV[GYGES_UNSET_VAR]"),
        "a=5999 b=%ENV[NOT SET] c="
    );
    let plan = plan_of("[TcpInput]\naddress = \"127.0.0.1:%ENV[GYGES_TEST_PORT]\"\n").unwrap();
    let tcp = (*plan.inputs[0].kind)
        .as_any()
        .downcast_ref::<TcpInputKind>();
    assert_eq!(tcp.map(|tcp| tcp.address.port()), Some(5999));
}

#[test]
fn a_directory_merges_alphabetically_and_rejects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[FileOutput]\npath = \"x\"\nmessage_matcher = \"TRUE\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("a.toml"), INPUT).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not toml").unwrap();
    let document = load_path(dir.path()).unwrap();
    let names: Vec<_> = document
        .sections
        .iter()
        .map(|section| section.name.as_str())
        .collect();
    assert_eq!(names, ["TcpInput", "FileOutput"]);
    std::fs::write(dir.path().join("c.toml"), INPUT).unwrap();
    let error = load_path(dir.path()).unwrap_err();
    assert!(
        error.file.ends_with("c.toml") && error.message.contains("a.toml"),
        "{error}"
    );
}

fn plan_with_profile(
    config: &str,
    profile: &str,
    allow_offline_cores: bool,
) -> Result<Plan, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let profile_path = dir.path().join("profile.toml");
    std::fs::write(&profile_path, profile).unwrap();
    let mut document = Document {
        origin: "test.toml".into(),
        ..Document::default()
    };
    add_text(&mut document, "test.toml", config)?;
    let overrides = Overrides {
        tuning: Some(profile_path),
        allow_offline_cores,
    };
    plan::build(&document, &overrides).map_err(|mut error| {
        // Temporary paths differ per run; keep only the file name.
        error.file = error
            .file
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        error
    })
}

const TWO_CORES: &str = "description = \"t\"\n[[core]]\ncpu = 0\nroles = [\"ingest\"]\n\
    [[core]]\ncpu = 1\nroles = [\"filter\", \"output\"]\n[rings]\nslots = 8\n[io]\nbatch_size = 65536\n";

#[test]
fn a_tuning_profile_sets_roles_sizes_and_placement() {
    let config = format!(
        "{INPUT}[FileOutput]\npath = \"x\"\n[Other]\ntype = \"FileOutput\"\npath = \"y\"\n"
    );
    let plan = plan_with_profile(
        &config,
        &format!("{TWO_CORES}[placement]\nOther = 0\n"),
        false,
    )
    .unwrap();
    let global = &plan.global;
    assert_eq!(global.cores, vec![0, 1]);
    assert_eq!(global.ingest_cores, vec![0]);
    assert_eq!((global.output_core, global.filter_core), (1, 1));
    assert_eq!((global.ring_slots, global.batch_bytes), (8, 65536));
    assert_eq!(plan.outputs[0].owner_core, 1);
    assert_eq!(plan.outputs[1].owner_core, 0, "placement moves one output");
    // [gyges] wins over the profile.
    let config = format!("[gyges]\nring_slots = 4\n{INPUT}");
    let plan = plan_with_profile(&config, TWO_CORES, false).unwrap();
    assert_eq!(
        (plan.global.ring_slots, plan.global.batch_bytes),
        (4, 65536)
    );
}

#[test]
fn tuning_profile_errors_name_the_profile_section_and_key() {
    let cases = [
        (
            format!("{TWO_CORES}[executor]\nio_mem = 3\n"),
            "executor",
            "io_mem",
        ),
        (
            "[[core]]\ncpu = 0\nroles = [\"cook\"]\n".to_string(),
            "core",
            "roles[0]",
        ),
        (
            "[[core]]\ncpu = 0\nroles = [\"filter\"]\n".to_string(),
            "core",
            "roles",
        ),
        (
            format!("{TWO_CORES}[placement]\nNope = 1\n"),
            "placement",
            "Nope",
        ),
        (
            format!("{TWO_CORES}[placement]\nFileOutput = 7\n"),
            "placement",
            "FileOutput",
        ),
        (
            "[[core]]\ncpu = 999\nroles = [\"ingest\"]\n".to_string(),
            "core",
            "cpu",
        ),
    ];
    for (profile, section, key) in cases {
        let error = plan_with_profile(
            &format!("{INPUT}[FileOutput]\npath = \"x\"\n"),
            &profile,
            false,
        )
        .unwrap_err();
        assert_eq!(error.file, "profile.toml", "{error}");
        assert_eq!(error.section.as_deref(), Some(section), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
    }
}

#[test]
fn validate_accepts_another_machines_profile_and_marks_offline_cores() {
    let profile =
        "[[core]]\ncpu = 0\nroles = [\"ingest\"]\n[[core]]\ncpu = 4000\nroles = [\"output\"]\n";
    let plan = plan_with_profile(INPUT, profile, true).unwrap();
    assert_eq!(plan.global.offline_cores, vec![4000]);
    assert_eq!(plan.global.output_core, 4000);
    assert!(plan_with_profile(INPUT, profile, false).is_err());
}

#[test]
fn the_shipped_profiles_parse() {
    for name in ["dev-2core", "single-core", "aggregator-16core", "numa-2x32"] {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tuning/{name}.toml"));
        let mut document = Document {
            origin: "test.toml".into(),
            ..Document::default()
        };
        add_text(&mut document, "test.toml", INPUT).unwrap();
        let overrides = Overrides {
            tuning: Some(path),
            allow_offline_cores: true,
        };
        let plan =
            plan::build(&document, &overrides).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(!plan.global.ingest_cores.is_empty(), "{name}");
    }
}

#[test]
fn durable_outputs_resolve_their_queue_options() {
    let plan = plan_of(&format!(
        "[hekad]\nbase_dir = \"/data\"\nsync = \"every_batch\"\ncheckpoint_interval = 250\n\
         queue_direct_io = true\n{INPUT}[FileOutput]\npath = \"x\"\nuse_buffering = true\n\
         [FileOutput.buffering]\nmax_file_size = 1048576\nfull_action = \"drop\"\n\
         [TcpOutput]\naddress = \"127.0.0.1:1\"\ndelivery = \"durable\"\n\
         [plain]\ntype = \"FileOutput\"\npath = \"y\"\n"
    ))
    .unwrap();
    assert_eq!(
        plan.global.queue_dir,
        std::path::PathBuf::from("/data/queue")
    );
    let file = plan.outputs[0]
        .durable
        .as_ref()
        .expect("FileOutput is durable");
    assert_eq!(file.max_file_size, 1_048_576);
    assert_eq!(file.full_action, crate::queue::FullAction::Drop);
    assert_eq!(file.sync, crate::queue::SyncPolicy::EveryBatch);
    assert_eq!(
        file.checkpoint_interval,
        std::time::Duration::from_millis(250)
    );
    assert!(file.direct_io);
    // A record holds a whole shipped batch.
    assert!(file.max_message_size > plan.global.batch_bytes);
    let tcp = plan.outputs[1]
        .durable
        .as_ref()
        .expect("TcpOutput is durable");
    assert_eq!(tcp.full_action, crate::queue::FullAction::Block);
    assert!(plan.outputs[2].durable.is_none());
}

#[test]
fn durable_output_errors_name_the_key() {
    let cases = [
        (
            "[FileOutput]\npath = \"x\"\nuse_buffering = true\n\
             [FileOutput.buffering]\nmax_file_size = 10\n",
            "buffering.max_file_size",
        ),
        (
            "[FileOutput]\npath = \"x\"\nuse_buffering = true\n\
             [FileOutput.buffering]\nmax_file_sise = 10\n",
            "max_file_sise",
        ),
        (
            "[FileOutput]\npath = \"x\"\n[FileOutput.buffering]\nmax_file_size = 1048576\n",
            "buffering",
        ),
        (
            "[TcpOutput]\naddress = \"127.0.0.1:1\"\ndelivery = \"eventually\"\n",
            "delivery",
        ),
        (
            "[TcpOutput]\naddress = \"127.0.0.1:1\"\ndelivery = \"durable\"\nuse_buffering = false\n",
            "delivery",
        ),
    ];
    for (text, key) in cases {
        let error = error_of(&format!("{INPUT}{text}"));
        let shown = error.to_string();
        assert!(shown.contains(key), "{key} not in {shown:?}");
        assert!(
            error
                .section
                .as_deref()
                .is_some_and(|section| section.ends_with("Output")),
            "{shown}"
        );
    }
    let error = error_of(&format!("[hekad]\nsync = \"sometimes\"\n{INPUT}"));
    assert!(error.to_string().contains("sync"), "{error}");
}

#[test]
fn acknowledged_tcp_output_needs_a_queue_and_framing() {
    let plan = plan_of(&format!(
        "{INPUT}[TcpOutput]\naddress = \"127.0.0.1:1\"\nuse_buffering = true\nack = true\n\
         ack_timeout = 250\n"
    ))
    .expect("a valid acknowledged output");
    let Some(tcp) = (*plan.outputs[0].kind).as_any().downcast_ref::<TcpPlan>() else {
        panic!("a TcpOutput");
    };
    assert_eq!(tcp.ack, Some(std::time::Duration::from_millis(250)));
    let cases = [
        ("ack = true\n", "ack", "use_buffering"),
        (
            "use_buffering = true\nack = true\nuse_framing = false\n",
            "ack",
            "use_framing",
        ),
        (
            "use_buffering = true\nack_timeout = 100\n",
            "ack_timeout",
            "ack",
        ),
        (
            "use_buffering = true\nack = true\nack_timeout = 5\n",
            "ack_timeout",
            "outside",
        ),
    ];
    for (keys, key, why) in cases {
        let error = error_of(&format!(
            "{INPUT}[TcpOutput]\naddress = \"127.0.0.1:1\"\n{keys}"
        ));
        let shown = error.to_string();
        assert_eq!(error.key.as_deref(), Some(key), "{shown}");
        assert!(shown.contains(why), "{why} not in {shown:?}");
    }
}

#[test]
fn a_bad_http_address_is_named_in_either_global_section() {
    for (text, section) in [
        ("[gyges]\nhttp_address = \"localhost\"\n", "gyges"),
        ("[hekad]\nhttp_address = \"127.0.0.1:99999\"\n", "hekad"),
    ] {
        let error = error_of(&format!("{INPUT}{text}"));
        assert_eq!(error.section.as_deref(), Some(section), "{error}");
        assert_eq!(error.key.as_deref(), Some("http_address"), "{error}");
        assert!(error.to_string().contains("IP address and port"), "{error}");
    }
    let plan = plan_of(&format!("{INPUT}[hekad]\nhttp_address = \"[::1]:0\"\n")).unwrap();
    assert_eq!(plan.global.http_address, Some("[::1]:0".parse().unwrap()));
    // Off unless set.
    let plan = plan_of(INPUT).unwrap();
    assert_eq!(plan.global.http_address, None);
}

#[test]
fn every_number_a_user_sets_has_an_upper_bound_named_in_the_error() {
    let cases = [
        // 128 would collide with the stat-record flag of a filter record's loop byte.
        (
            "[gyges]\nmax_message_loops = 128\n",
            "gyges",
            "max_message_loops",
        ),
        (
            "[gyges]\nmax_message_loops = 0\n",
            "gyges",
            "max_message_loops",
        ),
        (
            "[gyges]\nmax_process_inject = 1000000000\n",
            "gyges",
            "max_process_inject",
        ),
        (
            "[gyges]\nmax_timer_inject = 1000000000\n",
            "gyges",
            "max_timer_inject",
        ),
        ("[gyges]\nring_depth = 1000000\n", "gyges", "ring_depth"),
        (
            "[gyges]\nstats_interval = 100000000\n",
            "gyges",
            "stats_interval",
        ),
        (
            "[gyges]\nsocket_receive_buffer = 4294967296\n",
            "gyges",
            "socket_receive_buffer",
        ),
        (
            "[tcp]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\nkeep_alive = true\n\
             keep_alive_period = 100000000\n",
            "tcp",
            "keep_alive_period",
        ),
        // A SyslogInput's limit is bounded by the global one.
        (
            "[hekad]\nmax_message_size = 4096\n\
             [syslog]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:1\"\n\
             max_message_size = 8192\n",
            "syslog",
            "max_message_size",
        ),
        (
            "[syslog]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:1\"\n\
             max_connections = 100000000\n",
            "syslog",
            "max_connections",
        ),
        (
            "[u]\ntype = \"UdpOutput\"\naddress = \"127.0.0.1:1\"\nmax_message_size = 65508\n",
            "u",
            "max_message_size",
        ),
        (
            "[f]\ntype = \"FileOutput\"\npath = \"x\"\nflush_interval = 100000000\n",
            "f",
            "flush_interval",
        ),
        (
            "[lua]\ntype = \"SandboxFilter\"\nfilename = \"x.lua\"\nticker_interval = 100000000\n",
            "lua",
            "ticker_interval",
        ),
        (
            "[lua]\ntype = \"SandboxFilter\"\nfilename = \"x.lua\"\nmemory_limit = 100000000000\n",
            "lua",
            "memory_limit",
        ),
        (
            "[f]\ntype = \"FileOutput\"\npath = \"x\"\nflush_count = 100000000000\n",
            "f",
            "flush_count",
        ),
        (
            "[t]\ntype = \"TcpOutput\"\naddress = \"127.0.0.1:1\"\n\
             reconnect_after = 10000000000000000\n",
            "t",
            "reconnect_after",
        ),
        (
            "[h]\ntype = \"HttpListenInput\"\nmax_connections = 100000000\n",
            "h",
            "max_connections",
        ),
        (
            "[fi]\ntype = \"FluentForwardInput\"\naddress = \"127.0.0.1:1\"\n\
             max_frame_size = 100000000000\n",
            "fi",
            "max_frame_size",
        ),
        (
            "[fi]\ntype = \"FluentForwardInput\"\naddress = \"127.0.0.1:1\"\n\
             max_connections = 100000000\n",
            "fi",
            "max_connections",
        ),
        (
            "[fo]\ntype = \"FluentForwardOutput\"\naddress = \"127.0.0.1:1\"\n\
             use_buffering = true\nrequire_ack_response = true\n\
             ack_response_timeout = 100000000\n",
            "fo",
            "ack_response_timeout",
        ),
        (
            "[fo]\ntype = \"FluentForwardOutput\"\naddress = \"127.0.0.1:1\"\n\
             buffer_size = 100000000000\n",
            "fo",
            "buffer_size",
        ),
        (
            "[influx]\ntype = \"SchemaInfluxLineEncoder\"\ndecimal_precision = 100\n",
            "influx",
            "decimal_precision",
        ),
    ];
    for (text, section, key) in cases {
        let error = error_of(&format!("{INPUT}{text}"));
        assert_eq!(error.section.as_deref(), Some(section), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
        let text = error.to_string();
        let says = ["outside", "above", "out of range"];
        assert!(says.iter().any(|word| text.contains(word)), "{text}");
    }
    let plan = plan_of(&format!("{INPUT}[gyges]\nmax_message_loops = 127\n"));
    assert!(
        plan.is_err(),
        "127 is above the documented bound of {}",
        crate::limits::MESSAGE_LOOPS_MAX
    );
    let plan = plan_of(&format!("{INPUT}[gyges]\nmax_message_loops = 64\n")).expect("in bounds");
    assert_eq!(plan.global.max_message_loops, 64);
}

#[test]
fn a_plugin_kind_is_found_by_its_registry_line_and_nothing_else() {
    // Every registered type name plans through its own module; an unregistered one is an
    // error naming `type`.
    for registration in crate::input::KINDS {
        assert!(!registration.type_names.is_empty());
    }
    let error = error_of(&format!("{INPUT}[x]\ntype = \"NoSuchOutput\"\n"));
    assert_eq!(error.key.as_deref(), Some("type"), "{error}");
    assert!(error.message.contains("unknown plugin type"), "{error}");
    let plan = plan_of(&format!(
        "{INPUT}[statsd]\ntype = \"StatsdInput\"\naddress = \"127.0.0.1:1\"\n[StatAccumInput]\n"
    ))
    .expect("a statsd pipeline");
    assert_eq!(plan.inputs[1].kind.type_name(), "UdpInput");
    let decoder = plan.inputs[1].decoder.as_ref().expect("the statsd decoder");
    assert_eq!(decoder.stat_accumulator(), Some("StatAccumInput"));
    assert!(plan.filters[0].kind.accumulates_stats());
}

#[test]
fn a_go_style_listen_address_means_every_interface() {
    let plan = plan_of("[TcpInput]\naddress = \":5565\"\n").expect("a valid config");
    let kind = (*plan.inputs[0].kind)
        .as_any()
        .downcast_ref::<TcpInputKind>()
        .expect("a TcpInput");
    let ipv6 = std::net::UdpSocket::bind("[::]:0").is_ok();
    let expected = if ipv6 { "[::]:5565" } else { "0.0.0.0:5565" };
    assert_eq!(kind.address, expected.parse().expect("an address"));
    let error = error_of("[TcpInput]\naddress = \":no-port\"\n").to_string();
    assert!(error.contains("key `address`"), "{error}");
}

#[test]
fn a_file_output_frames_protobuf_by_default_and_nothing_else() {
    let framing = |output: &str| {
        let text = format!(
            "{INPUT}[Proto]\ntype = \"ProtobufEncoder\"\n[Text]\ntype = \"PayloadEncoder\"\n\
             [out]\ntype = \"FileOutput\"\npath = \"x\"\n{output}"
        );
        plan_of(&text).expect("valid").outputs[0].use_framing
    };
    assert!(framing(""), "the default encoder, ProtobufEncoder");
    assert!(framing("encoder = \"ProtobufEncoder\"\n"));
    assert!(framing("encoder = \"Proto\"\n"), "a section of that type");
    assert!(!framing("encoder = \"Text\"\n"));
    assert!(!framing("encoder = \"PayloadEncoder\"\n"));
    assert!(!framing("use_framing = false\n"), "as written");
    assert!(
        framing("encoder = \"Text\"\nuse_framing = true\n"),
        "as written"
    );
}

#[test]
fn output_hosts_are_resolved_when_connecting_not_when_planned() {
    for (kind, extra) in [
        ("TcpOutput", ""),
        ("FluentForwardOutput", ""),
        ("CarbonOutput", ""),
        ("CarbonOutput", "protocol = \"udp\"\n"),
        ("UdpOutput", ""),
    ] {
        let text = format!(
            "{INPUT}[out]\ntype = \"{kind}\"\nmessage_matcher = \"TRUE\"\n{extra}\
             address = \"no-such-host.invalid:5565\"\n"
        );
        assert!(plan_of(&text).is_ok(), "{kind} {extra}");
        let text = format!(
            "{INPUT}[out]\ntype = \"{kind}\"\nmessage_matcher = \"TRUE\"\n{extra}\
             address = \"no-port.invalid\"\n"
        );
        let error = error_of(&text);
        assert_eq!(error.key.as_deref(), Some("address"), "{kind}: {error}");
    }
}

#[test]
fn with_no_share_dir_hekas_directory_is_used_when_gyges_has_none() {
    let root = tempfile::tempdir().expect("temp dir");
    let gyges = root.path().join("share/gyges");
    let heka = root.path().join("share/heka");
    let candidates = [gyges.to_str().unwrap(), heka.to_str().unwrap()];
    assert_eq!(global::default_share_dir(&candidates), gyges);
    std::fs::create_dir_all(&heka).unwrap();
    assert_eq!(global::default_share_dir(&candidates), heka);
    std::fs::create_dir_all(&gyges).unwrap();
    assert_eq!(global::default_share_dir(&candidates), gyges);
    assert_eq!(
        global::SHARE_DIR_DEFAULTS,
        &["/usr/share/gyges", "/usr/share/heka"]
    );
    let plan = plan_of(&format!("[hekad]\nshare_dir = \"/opt/lua\"\n{INPUT}")).unwrap();
    assert_eq!(plan.global.share_dir, std::path::PathBuf::from("/opt/lua"));
}

#[test]
fn a_zone_that_the_system_zoneinfo_lacks_names_its_key() {
    let error = error_of(
        "[UdpInput]\naddress = \"127.0.0.1:1\"\ndecoder = \"local\"\n\
         [local]\ntype = \"SyslogDecoder\"\ntz = \"Mars/Olympus_Mons\"\n",
    );
    assert_eq!(error.section.as_deref(), Some("local"));
    assert_eq!(error.key.as_deref(), Some("tz"), "{error}");
    assert!(error.message.contains("Mars/Olympus_Mons"), "{error}");
    let script = lua_script("function process_message() return 0 end");
    let error = error_of(&format!(
        "[UdpInput]\naddress = \"127.0.0.1:1\"\ndecoder = \"lua\"\n\
         [lua]\ntype = \"SandboxDecoder\"\nfilename = \"{}\"\n[lua.config]\ntz = \"Nowhere\"\n",
        script.path().display()
    ));
    assert_eq!(error.key.as_deref(), Some("config.tz"), "{error}");
    let plan = plan_of(
        "[UdpInput]\naddress = \"127.0.0.1:1\"\ndecoder = \"local\"\n\
         [local]\ntype = \"SyslogDecoder\"\ntz = \"Europe/Zurich\"\n",
    );
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn kafka_errors_name_the_section_and_the_key() {
    let output = "[k]\ntype = \"KafkaOutput\"\nmessage_matcher = \"TRUE\"\n";
    let input = "[ki]\ntype = \"KafkaInput\"\ntopic = \"t\"\n";
    let cases = [
        (format!("{INPUT}{output}addrs = []\ntopic = \"t\"\n"), "k", "addrs"),
        (format!("{INPUT}{output}addrs = [\"nohost\"]\ntopic = \"t\"\n"), "k", "addrs"),
        (format!("{INPUT}{output}addrs = [\"b:9092\"]\n"), "k", "topic"),
        (format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"a b\"\n"), "k", "topic"),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\ntopic_variable = \"Type\"\n"),
            "k",
            "topic_variable",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic_variable = \"Fields[\"\n"),
            "k",
            "topic_variable",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\npartitioner = \"Hash\"\n"),
            "k",
            "hash_variable",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\npartitioner = \"Sticky\"\n"),
            "k",
            "partitioner",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\nrequired_acks = \"All\"\n"),
            "k",
            "required_acks",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\ncompression_codec = \"brotli\"\n"),
            "k",
            "compression_codec",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\nback_pressure_threshold_bytes = 10\n"),
            "k",
            "back_pressure_threshold_bytes",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\nuse_tls = true\n[k.tls]\nserver_name = \"x\"\n"),
            "k",
            "tls.server_name",
        ),
        (
            format!("{INPUT}{output}addrs = [\"b:9092\"]\ntopic = \"t\"\nbroker_list = 1\n"),
            "k",
            "broker_list",
        ),
        (format!("{input}addrs = [\"b:9092\"]\noffset_method = \"Latest\"\n"), "ki", "offset_method"),
        (format!("{input}addrs = [\"b:9092\"]\npartition = -1\n"), "ki", "partition"),
        (format!("{input}addrs = [\"b:9092\"]\nrebalance_timeout = 0\n"), "ki", "rebalance_timeout"),
        (format!("{input}addrs = [\"b\"]\n"), "ki", "addrs"),
    ];
    for (text, section, key) in cases {
        let error = error_of(&text);
        assert_eq!(error.section.as_deref(), Some(section), "{text}: {error}");
        assert_eq!(error.key.as_deref(), Some(key), "{text}: {error}");
    }
    // A broker name that does not resolve is fine at plan time: librdkafka resolves and
    // retries when it connects.
    let text = format!(
        "{INPUT}{output}addrs = [\"no-such-host.invalid:9092\"]\ntopic = \"t\"\n\
         {input}addrs = [\"no-such-host.invalid:9092\"]\npartition = 0\n"
    );
    assert!(plan_of(&text).is_ok());
}

#[test]
fn amqp_errors_name_the_section_and_the_key() {
    let output = "[a]\ntype = \"AMQPOutput\"\nmessage_matcher = \"TRUE\"\n";
    let input = "[ai]\ntype = \"AMQPInput\"\n";
    let url = "url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n";
    let exchange = "exchange = \"e\"\nexchange_type = \"direct\"\n";
    let long = "x".repeat(256);
    let cases = [
        (
            format!("{INPUT}{output}url = \"http://x/\"\n{exchange}"),
            "a",
            "url",
        ),
        (
            format!("{INPUT}{output}url = \"amqps://h:5671/%2f\"\n{exchange}[a.tls]\ncert_file = \"c\"\n"),
            "a",
            "tls.cert_file",
        ),
        (
            format!("{INPUT}{output}url = \"amqps://h:5671/%2f\"\n{exchange}[a.tls]\nroot_cafile = \"/no/such/ca.pem\"\n"),
            "a",
            "tls.root_cafile",
        ),
        (
            format!("{input}url = \"amqps://h/%2f\"\n{exchange}[ai.tls]\nserver_name = \"other\"\n"),
            "ai",
            "tls.server_name",
        ),
        (
            format!("{INPUT}{output}{url}exchange = \"\"\nexchange_type = \"direct\"\n"),
            "a",
            "exchange",
        ),
        (
            format!("{INPUT}{output}{url}exchange = \"e\"\nexchange_type = \"x-fancy\"\n"),
            "a",
            "exchange_type",
        ),
        (
            format!("{INPUT}{output}{url}{exchange}routing_key = \"{long}\"\n"),
            "a",
            "routing_key",
        ),
        (
            format!("{INPUT}{output}{url}{exchange}persistent = \"yes\"\n"),
            "a",
            "persistent",
        ),
        (
            format!("{INPUT}{output}{url}{exchange}exchange_name = \"e\"\n"),
            "a",
            "exchange_name",
        ),
        (
            format!("{input}{url}{exchange}prefetch_count = 0\n"),
            "ai",
            "prefetch_count",
        ),
        (
            format!("{input}{url}{exchange}queue_ttl = -2\n"),
            "ai",
            "queue_ttl",
        ),
        (
            format!("{input}{url}{exchange}queue = \"{long}\"\n"),
            "ai",
            "queue",
        ),
        (
            format!("{input}{url}exchange = \"e\"\nexchange_type = \"Direct\"\n"),
            "ai",
            "exchange_type",
        ),
        (
            format!("{input}url = \"amqp://h:notaport/%2f\"\n{exchange}"),
            "ai",
            "url",
        ),
    ];
    for (text, section, key) in cases {
        let error = error_of(&text);
        assert_eq!(error.section.as_deref(), Some(section), "{text}: {error}");
        assert_eq!(error.key.as_deref(), Some(key), "{text}: {error}");
    }
    // A broker that cannot be resolved is fine at plan time: it is connected to (and retried)
    // at run time.
    let text = format!(
        "{INPUT}{output}url = \"amqp://no-such-host.invalid/%2f\"\n{exchange}\
         {input}url = \"amqp://no-such-host.invalid/%2f\"\n{exchange}queue_ttl = 60000\n"
    );
    assert!(plan_of(&text).is_ok());
}

#[test]
fn file_rotation_takes_hekas_intervals_and_a_strftime_path() {
    let output = |rest: &str| format!("{INPUT}[FileOutput]\nmessage_matcher = \"TRUE\"\n{rest}");
    for hours in [0, 1, 4, 12, 24] {
        let text = output(&format!(
            "path = \"logs/%Y-%m-%d-%H.log\"\nrotation_interval = {hours}\n"
        ));
        assert!(plan_of(&text).is_ok(), "{hours}");
    }
    let error = error_of(&output("path = \"x.log\"\nrotation_interval = 2\n"));
    assert_eq!(error.key.as_deref(), Some("rotation_interval"), "{error}");
    let error = error_of(&output("path = \"x-%Q.log\"\nrotation_interval = 1\n"));
    assert_eq!(error.key.as_deref(), Some("path"), "{error}");
}

/// A decoder section behind a UdpInput, for the decoder cases below.
fn with_decoder(decoder: &str, sections: &str) -> String {
    format!("[UdpInput]\naddress = \"127.0.0.1:1\"\ndecoder = \"{decoder}\"\n{sections}")
}

#[test]
fn payload_regex_decoder_errors_name_their_keys() {
    let regex = "[re]\ntype = \"PayloadRegexDecoder\"\n";
    let cases = [
        (String::new(), "match_regex"),
        ("match_regex = '(?P<a'\n".to_string(), "match_regex"),
        (
            "match_regex = 'x'\ntimestamp_location = \"Nowhere/Else\"\n".to_string(),
            "timestamp_location",
        ),
        (
            "match_regex = 'x'\ntimestamp_layout = \"\"\n".to_string(),
            "timestamp_layout",
        ),
        (
            "match_regex = 'x'\nlog_error = true\n".to_string(),
            "log_error",
        ),
        (
            "match_regex = 'x'\n[re.severity_map]\nWARN = \"four\"\n".to_string(),
            "severity_map.WARN",
        ),
        (
            "match_regex = 'x'\n[re.message_fields]\nCount = 3\n".to_string(),
            "message_fields.Count",
        ),
    ];
    for (extra, key) in cases {
        let error = error_of(&with_decoder("re", &format!("{regex}{extra}")));
        assert_eq!(error.section.as_deref(), Some("re"), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
    }
    let plan = plan_of(&with_decoder(
        "re",
        &format!(
            "{regex}match_regex = '^(?P<Timestamp>\\S+) (?P<Url>\\S+)'\n\
             timestamp_layout = \"02/Jan/2006:15:04:05 -0700\"\n\
             timestamp_location = \"Europe/Zurich\"\nlog_errors = true\n\
             [re.severity_map]\nWARNING = 4\n[re.message_fields]\nUrl|uri = \"%Url%\"\n"
        ),
    ))
    .expect("a Heka-style PayloadRegexDecoder plans");
    let decoder = plan.inputs[0]
        .decoder
        .as_ref()
        .map(|decoder| decoder.type_name());
    assert_eq!(decoder, Some("PayloadRegexDecoder"));
}

#[test]
fn scribble_decoder_errors_name_their_keys() {
    let scribble = "[tag]\ntype = \"ScribbleDecoder\"\n";
    let cases = [
        (
            "[tag.message_fields]\nSeverity = \"loud\"\n",
            "message_fields.Severity",
        ),
        ("[tag.message_fields]\nPid = \"x\"\n", "message_fields.Pid"),
        (
            "[tag.message_fields]\nUuid = \"nope\"\n",
            "message_fields.Uuid",
        ),
        (
            "[tag.message_fields]\nTimestamp = \"yesterday\"\n",
            "message_fields.Timestamp",
        ),
        ("[tag.message_fields]\nn = 1\n", "message_fields.n"),
        (
            "[tag.message_fields]\n\"|uri\" = \"x\"\n",
            "message_fields.|uri",
        ),
        ("match_regex = 'x'\n", "match_regex"),
    ];
    for (extra, key) in cases {
        let error = error_of(&with_decoder("tag", &format!("{scribble}{extra}")));
        assert_eq!(error.section.as_deref(), Some("tag"), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
    }
    let plan = plan_of(&with_decoder(
        "tag",
        &format!("{scribble}[tag.message_fields]\nType = \"t\"\nSeverity = \"3\"\nenv|x = \"p\"\n"),
    ));
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn multi_decoder_errors_name_their_keys() {
    let tag = "[tag]\ntype = \"ScribbleDecoder\"\n";
    let cases = [
        ("[m]\ntype = \"MultiDecoder\"\n".to_string(), "m", "subs"),
        ("[m]\ntype = \"MultiDecoder\"\nsubs = [\"nothing\"]\n".to_string(), "m", "subs"),
        (
            format!("[m]\ntype = \"MultiDecoder\"\nsubs = [\"tag\"]\ncascade_strategy = \"some\"\n{tag}"),
            "m",
            "cascade_strategy",
        ),
        (
            "[m]\ntype = \"MultiDecoder\"\nsubs = [\"n\"]\n[n]\ntype = \"MultiDecoder\"\nsubs = [\"m\"]\n"
                .to_string(),
            "m",
            "subs",
        ),
        ("[m]\ntype = \"MultiDecoder\"\nsubs = [\"m\"]\n".to_string(), "m", "subs"),
        (
            "[m]\ntype = \"MultiDecoder\"\nsubs = [\"re\"]\n[re]\ntype = \"PayloadRegexDecoder\"\n"
                .to_string(),
            "re",
            "match_regex",
        ),
        (
            format!("[m]\ntype = \"MultiDecoder\"\nsubs = [\"PayloadRegexDecoder\"]\n{tag}"),
            "m",
            "subs",
        ),
    ];
    for (sections, section, key) in cases {
        let error = error_of(&with_decoder("m", &sections));
        assert_eq!(error.section.as_deref(), Some(section), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
    }
    let mut deep = String::new();
    for level in 0..=crate::limits::MULTI_DECODER_DEPTH_MAX {
        deep.push_str(&format!(
            "[m{level}]\ntype = \"MultiDecoder\"\nsubs = [\"m{}\"]\n",
            level + 1
        ));
    }
    deep.push_str(&format!(
        "[m{}]\ntype = \"ScribbleDecoder\"\n",
        crate::limits::MULTI_DECODER_DEPTH_MAX + 1
    ));
    let error = error_of(&with_decoder("m0", &deep));
    assert!(error.message.contains("nest at most"), "{error}");
    let plan = plan_of(&with_decoder(
        "m",
        &format!("[m]\ntype = \"MultiDecoder\"\nsubs = [\"ProtobufDecoder\", \"tag\"]\ncascade_strategy = \"all\"\n{tag}"),
    ))
    .expect("a MultiDecoder plans");
    let multi = plan.inputs[0].decoder.as_ref().expect("a decoder");
    let multi = multi
        .as_any()
        .downcast_ref::<crate::decoder::multi::MultiDecoderKind>()
        .expect("a MultiDecoder");
    assert_eq!(multi.cascade(), crate::decoder::multi::Cascade::All);
    let subs: Vec<_> = multi.subs().collect();
    assert_eq!(
        subs,
        vec![
            ("ProtobufDecoder", "ProtobufDecoder"),
            ("tag", "ScribbleDecoder")
        ]
    );
}

#[test]
fn payload_json_decoder_errors_name_their_keys() {
    let json = "[j]\ntype = \"PayloadJsonDecoder\"\n";
    let cases = [
        ("[j.json_map]\nUrl = \"request.url\"\n", "json_map.Url"),
        ("[j.json_map]\nUrl = 3\n", "json_map.Url"),
        ("timestamp_layout = \"\"\n", "timestamp_layout"),
        ("timestamp_location = \"Atlantis\"\n", "timestamp_location"),
        ("require_all_fields = true\n", "require_all_fields"),
        ("[j.message_fields]\nN = 1\n", "message_fields.N"),
    ];
    for (extra, key) in cases {
        let error = error_of(&with_decoder("j", &format!("{json}{extra}")));
        assert_eq!(error.section.as_deref(), Some("j"), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
    }
    let plan = plan_of(&with_decoder(
        "j",
        &format!("{json}[j.json_map]\nUrl = \"$.request.url\"\nFirst = \"$.a[0]\"\n[j.message_fields]\nUrl|uri = \"%Url%\"\n"),
    ));
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn a_dashboard_output_takes_hekas_options_and_matcher_and_serves_from_its_address() {
    let plan = plan_of(&format!(
        "[gyges]\nhttp_address = \"127.0.0.1:4352\"\n{INPUT}\
         [Dashboard]\ntype = \"DashboardOutput\"\naddress = \":4352\"\nticker_interval = 5\n\
         working_directory = \"dashboard\"\nstatic_directory = \"/usr/share/heka/dasher\"\n\
         [Dashboard.headers]\nAccess-Control-Allow-Origin = [\"*\"]\n"
    ))
    .unwrap();
    let output = &plan.outputs[0];
    assert_eq!(output.kind.type_name(), "DashboardOutput");
    assert_eq!(
        output.matcher.source(),
        crate::output::dashboard::DEFAULT_MATCHER
    );
    let keys: Vec<&str> = plan.notices.iter().map(|notice| notice.key).collect();
    assert_eq!(
        keys,
        [
            "ticker_interval",
            "address",
            "working_directory",
            "static_directory",
            "headers"
        ]
    );
    let served = plan.notices[1].to_string();
    assert!(
        served.contains("when the global section has no `http_address`"),
        "{served}"
    );
    assert_eq!(
        plan.global.http_address,
        Some("127.0.0.1:4352".parse().unwrap()),
        "http_address wins over the output's address"
    );

    // Without http_address, the dashboard (and the endpoint) is where Heka served it: the
    // output's address, by default every interface's port 4352.
    let plan = plan_of(&format!(
        "{INPUT}[Dashboard]\ntype = \"DashboardOutput\"\naddress = \"127.0.0.1:9352\"\n"
    ))
    .unwrap();
    assert_eq!(
        plan.global.http_address,
        Some("127.0.0.1:9352".parse().unwrap())
    );
    let plan = plan_of(&format!("{INPUT}[DashboardOutput]\n")).unwrap();
    let address = plan.global.http_address.expect("the default address");
    assert!(
        address.ip().is_unspecified() && address.port() == 4352,
        "{address}"
    );
    let bad = error_of("[Dashboard]\ntype = \"DashboardOutput\"\naddress = \"dashboard\"\n");
    assert_eq!(bad.section.as_deref(), Some("Dashboard"));
    assert_eq!(bad.key.as_deref(), Some("address"), "{bad}");
    let unknown = error_of(
        "[gyges]\nhttp_address = \"127.0.0.1:4352\"\n\
         [Dashboard]\ntype = \"DashboardOutput\"\nport = 1\n",
    );
    assert_eq!(unknown.key.as_deref(), Some("port"), "{unknown}");
    let durable = error_of(
        "[gyges]\nhttp_address = \"127.0.0.1:4352\"\n\
         [Dashboard]\ntype = \"DashboardOutput\"\ndelivery = \"best_effort\"\n",
    );
    assert_eq!(durable.key.as_deref(), Some("delivery"), "{durable}");
}

#[cfg(feature = "lua")]
#[test]
fn a_sandbox_manager_reserves_its_slots_after_itself_on_its_core() {
    let plan = plan_of(&format!(
        "{INPUT}[Mgr]\ntype = \"SandboxManagerFilter\"\nmessage_signer = \"ops\"\n\
         max_filters = 3\nmemory_limit = 1000000\n\
         [after]\ntype = \"CounterFilter\"\nmessage_matcher = \"TRUE\"\n"
    ))
    .unwrap();
    let names: Vec<&str> = plan.filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["Mgr", "Mgr#0", "Mgr#1", "Mgr#2", "after"]);
    let manager = &plan.filters[0];
    assert_eq!(manager.matcher.source(), "Type == 'heka.control.sandbox'");
    assert_eq!(manager.message_signer.as_deref(), Some("ops"));
    for slot in &plan.filters[1..4] {
        assert_eq!(slot.host_core, manager.host_core);
        assert_eq!(slot.matcher.is_constant(), Some(false));
        assert!(slot.kind.slot_board().is_some());
        assert!(slot.message_signer.is_none() && slot.durable.is_none());
    }
    assert!(plan.filters[4].kind.slot_board().is_none());
}

#[cfg(feature = "lua")]
#[test]
fn validate_lists_every_filter_with_its_core_and_matcher() {
    let plan = plan_of(&format!(
        "{INPUT}[Mgr]\ntype = \"SandboxManagerFilter\"\nmessage_signer = \"ops\"\n\
         max_filters = 1\n\
         [after]\ntype = \"CounterFilter\"\nmessage_matcher = \"Type == 'x'\"\n"
    ))
    .unwrap();
    let text = crate::tools::run::describe(&plan);
    let filters = text.split("filters:\n").nth(1).expect("a filters part");
    let core = plan.filters[0].host_core;
    let lines: Vec<&str> = filters
        .lines()
        .take_while(|line| line.starts_with(' '))
        .collect();
    assert_eq!(
        lines[0],
        format!("  [Mgr] SandboxManagerFilter on core {core}")
    );
    assert_eq!(
        lines[1],
        "    message_matcher = \"Type == 'heka.control.sandbox'\""
    );
    assert_eq!(
        lines[2],
        "    message_signer = \"ops\" (only what it signed)"
    );
    let slot = lines
        .iter()
        .position(|line| line.starts_with("  [Mgr#0]"))
        .unwrap();
    assert!(
        lines[slot + 1].contains("matches what its manager loads"),
        "{filters}"
    );
    let after = lines
        .iter()
        .position(|line| line.starts_with("  [after] CounterFilter"))
        .unwrap();
    assert_eq!(lines[after + 1], "    message_matcher = \"Type == 'x'\"");
    // The compiled program follows the source.
    assert!(
        lines.len() > after + 2 && lines[after + 2].starts_with("      "),
        "{filters}"
    );
}

#[cfg(feature = "lua")]
#[test]
fn sandbox_manager_config_errors_name_the_key() {
    let manager = "[Mgr]\ntype = \"SandboxManagerFilter\"\n";
    let cases = [
        ("", "message_signer"),
        ("message_signer = \"ops\"\nmax_filters = 0\n", "max_filters"),
        (
            "message_signer = \"ops\"\nmax_filters = 65\n",
            "max_filters",
        ),
        (
            "message_signer = \"ops\"\nuse_buffering = true\n",
            "use_buffering",
        ),
        (
            "message_signer = \"ops\"\nmemory_limit = 0\n",
            "memory_limit",
        ),
        ("message_signer = \"ops\"\nbogus = 1\n", "bogus"),
    ];
    for (keys, key) in cases {
        let error = error_of(&format!("{INPUT}{manager}{keys}"));
        assert_eq!(error.section.as_deref(), Some("Mgr"), "{keys}: {error}");
        assert_eq!(error.key.as_deref(), Some(key), "{keys}: {error}");
    }
}
