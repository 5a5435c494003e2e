//! FilePollingInput through the daemon: a file read whole at every tick as one message with
//! Heka's headers and fields, its changes seen at the next tick, a TokenSplitter over it, and a
//! file that goes missing and comes back.

use std::path::Path;
use std::time::Duration;

use crate::util::*;

/// A daemon polling `file` every second with `input` options into a framed FileOutput.
fn config(dir: &Path, file: &Path, output: &Path, input: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nbase_dir = \"{}\"\nhostname = \"poller-host\"\n\
         [poll]\ntype = \"FilePollingInput\"\nfile_path = \"{}\"\nticker_interval = 1\n{input}\
         [out]\ntype = \"FileOutput\"\nmessage_matcher = \"Logger == 'poll'\"\npath = \"{}\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n",
        dir.join("state").display(),
        file.display(),
        output.display()
    )
}

fn payloads(path: &Path) -> Vec<String> {
    messages(path)
        .iter()
        .filter_map(|message| message["payload"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_whole_file_is_one_message_per_tick_and_changes_are_seen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("meminfo");
    let out = dir.path().join("out.log");
    std::fs::write(&file, "MemTotal: 1 kB\nMemFree: 2 kB\n").expect("write");
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), &file, &out, ""), &[]);
    wait_for(Duration::from_secs(10), "a first poll", || {
        !messages(&out).is_empty()
    });
    let first = messages(&out).remove(0);
    assert_eq!(first["payload"], "MemTotal: 1 kB\nMemFree: 2 kB\n");
    assert_eq!(first["type"], "heka.file.polling");
    assert_eq!(first["logger"], "poll");
    assert_eq!(first["hostname"], "poller-host");
    assert_eq!(field(&first, "TickerInterval"), Some(&serde_json::json!(1)));
    let path = file.display().to_string();
    assert_eq!(field(&first, "FilePath"), Some(&serde_json::json!(path)));
    // A rewrite is read at the next tick, from the start of the new content.
    std::fs::write(&file, "MemTotal: 3 kB\n").expect("rewrite");
    wait_for(Duration::from_secs(10), "the new content", || {
        payloads(&out)
            .iter()
            .any(|payload| payload == "MemTotal: 3 kB\n")
    });
    // Gone: counted and logged, and the daemon polls on.
    std::fs::remove_file(&file).expect("remove");
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::write(&file, "back\n").expect("write again");
    wait_for(Duration::from_secs(10), "the file once it is back", || {
        payloads(&out).iter().any(|payload| payload == "back\n")
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert!(
        daemon.counter("poll.errors_total") >= 1,
        "{}",
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains("cannot read the polled file"),
        "{}",
        daemon.stderr()
    );
    // Every message is one whole read of the file: never a part of one.
    let allowed = [
        "MemTotal: 1 kB\nMemFree: 2 kB\n",
        "MemTotal: 3 kB\n",
        "back\n",
    ];
    assert!(payloads(&out)
        .iter()
        .all(|payload| allowed.contains(&payload.as_str())));
}

#[test]
fn a_token_splitter_makes_a_message_per_line_including_an_unterminated_last_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("lines");
    let out = dir.path().join("out.log");
    std::fs::write(&file, "one\ntwo\nthree").expect("write");
    let input = "splitter = \"TokenSplitter\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), &file, &out, input), &[]);
    wait_for(Duration::from_secs(10), "two polls", || {
        payloads(&out).len() >= 6
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let payloads = payloads(&out);
    assert_eq!(payloads.len() % 3, 0, "whole polls only: {payloads:?}");
    for poll in payloads.chunks(3) {
        assert_eq!(poll, ["one\n", "two\n", "three"]);
    }
}
