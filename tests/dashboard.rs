//! The dashboard page in a real browser: Debian's `chromium`, headless, loads `/dashboard`
//! from the daemon while numbered messages flow in and a SandboxFilter injects a circular
//! buffer every second; the DOM it dumps must show every plugin with live counts, and the
//! buffer's graph with the values the filter computed. Names from messages must come out as
//! text (a payload_name of `<script>...`). The screenshot is what docs/images/dashboard.png is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{frame, free_port, numbered_message, send_tcp, wait_for_or_explain, Daemon};

/// The graph's name: markup that must be shown as text, never run or parsed.
const HOSTILE_NAME: &str = "<script>alert(1)</script>";

/// GETs `path` from the endpoint: the body of a 200 answer, or `None`.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The browser, or a failure that says how to get it.
fn chromium() -> &'static str {
    let found = Command::new("chromium").arg("--version").output();
    match found {
        Ok(output) if output.status.success() => "chromium",
        _ => panic!(
            "chromium is not installed: run scripts/setup.sh (CI installs it); the dashboard \
             test loads the page in a real browser"
        ),
    }
}

/// Runs headless chromium on `url` with `extra` arguments; its stdout.
fn run_chromium(profile: &Path, url: &str, extra: &[&str]) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of attribute `name` in the first tag of `dom` that contains `marker`.
fn attribute<'a>(dom: &'a str, marker: &str, name: &str) -> Option<&'a str> {
    let at = dom.find(marker)?;
    let tag_start = dom[..at].rfind('<')?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!(" {name}=\"");
    let value_start = tag.find(&key)? + key.len();
    let value_end = value_start + tag[value_start..].find('"')?;
    Some(&tag[value_start..value_end])
}

/// A graph path's `data-values`, the unset cells (`nan`) left out.
fn values(dom: &str, column: &str) -> Vec<f64> {
    let marker = format!("data-column=\"{column}\"");
    let text = attribute(dom, &marker, "data-values")
        .unwrap_or_else(|| panic!("no graph path for column {column}:\n{dom}"));
    text.split(',')
        .filter(|cell| *cell != "nan")
        .map(|cell| cell.parse().expect("a number"))
        .collect()
}

#[test]
fn the_dashboard_renders_live_counts_and_a_circular_buffer_graph_in_a_real_browser() {
    chromium();
    let dir = tempfile::tempdir().unwrap();
    let (http, input) = (free_port(), free_port());
    let script = format!("{}/tests/lua/cbuf_counter.lua", env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        "[hekad]\nstats_interval = 0\nhttp_address = \"127.0.0.1:{http}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{input}\"\n\
         [Traffic]\ntype = \"SandboxFilter\"\nfilename = \"{script}\"\n\
         message_matcher = \"Type == 'test'\"\nticker_interval = 1\n\
         [Traffic.config]\ncbuf_name = \"{name}\"\n\
         [Dashboard]\ntype = \"DashboardOutput\"\n\
         [out]\ntype = \"FileOutput\"\nmessage_matcher = \"Type == 'test'\"\npath = \"all.log\"\n\
         flush_interval = 20\n",
        name = HOSTILE_NAME.replace('"', "\\\""),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[http, input]);

    // Numbered messages, 100 every 50 ms, for as long as the browser looks.
    let sending = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicI64::new(0));
    let sender = {
        let (sending, sent) = (sending.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut next = 1;
            while sending.load(Ordering::Relaxed) {
                let bytes: Vec<u8> = (next..next + 100)
                    .flat_map(|sequence| frame(&numbered_message(sequence, "x")))
                    .collect();
                send_tcp(input, &bytes);
                next += 100;
                sent.store(next - 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // A graph with counts in a few rows, so that it draws lines (the filter injects each
    // second, and counts into the row of each second; the picture is better for a few more).
    wait_for_or_explain(
        Duration::from_secs(30),
        "a cbuf graph with counts in six rows on /graphs.json",
        || {
            let Some(body) = get(http, "/graphs.json") else {
                return false;
            };
            let graphs: serde_json::Value = serde_json::from_str(&body).unwrap();
            graphs["graphs"][0]["rows"].as_array().is_some_and(|rows| {
                let counted = rows.iter().filter(|row| row[0].as_f64() > Some(0.0));
                counted.count() >= 6
            })
        },
        || daemon.stderr(),
    );

    let url = format!("http://127.0.0.1:{http}/dashboard");
    let dom = run_chromium(&dir.path().join("profile"), &url, &["--dump-dom"]);
    let screenshot = dir.path().join("dashboard.png");
    let picture = format!("--screenshot={}", screenshot.display());
    run_chromium(
        &dir.path().join("profile-2"),
        &url,
        &[&picture, "--window-size=1280,900"],
    );
    sending.store(false, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent.load(Ordering::Relaxed);

    // The page polled more than once: it updates without a reload.
    let polls: u32 = attribute(&dom, "id=\"status\"", "data-polls")
        .and_then(|polls| polls.parse().ok())
        .unwrap_or(0);
    assert!(polls >= 2, "the page polled {polls} times:\n{dom}");
    // A row per plugin, each with a live non-zero total (records, messages processed, sent).
    for plugin in ["TcpInput", "Traffic", "Dashboard", "out"] {
        let marker = format!("data-plugin=\"{plugin}\"");
        let total: u64 = attribute(&dom, &marker, "data-total")
            .unwrap_or_else(|| panic!("no row for {plugin}:\n{dom}"))
            .parse()
            .unwrap();
        assert!(total > 0, "{plugin} shows a total of 0:\n{dom}");
        assert!(
            total <= sent as u64 || plugin == "Dashboard",
            "{plugin}: {total} > {sent}"
        );
    }
    // The graph: the messages counted per second, and the largest sequence number seen,
    // which only grows and never passes what was sent.
    let counts = values(&dom, "messages");
    assert!(counts.iter().any(|count| *count > 0.0), "{counts:?}");
    assert!(
        counts.iter().sum::<f64>() <= sent as f64,
        "{counts:?} > {sent}"
    );
    let sequences = values(&dom, "max_seq");
    let largest = sequences.iter().copied().fold(0.0, f64::max);
    assert!(
        largest > 0.0 && largest <= sent as f64,
        "{sequences:?}, sent {sent}"
    );
    assert!(
        sequences.windows(2).all(|pair| pair[0] <= pair[1]),
        "{sequences:?}"
    );
    let path = attribute(&dom, "data-column=\"messages\"", "d").unwrap_or_default();
    assert!(
        path.starts_with('M') && path.contains('L'),
        "no line drawn: {path:?}"
    );
    // The hostile name is text: escaped in the attribute and the heading, never an element.
    assert!(
        dom.contains("data-name=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{dom}"
    );
    assert!(
        dom.contains("Traffic — &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert"), "{dom}");
    // The picture.
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("GYGES_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).expect("keep the screenshot");
    }
    assert!(daemon.stop().success(), "{}", daemon.stderr());
}

#[test]
fn dashboard_output_refuses_a_bad_cbuf_and_keeps_the_terminations_for_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (http, input) = (free_port(), free_port());
    let lua = |name: &str| format!("{}/tests/lua/{name}", env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        "[hekad]\nstats_interval = 0\nhttp_address = \"127.0.0.1:{http}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{input}\"\n\
         [Broken]\ntype = \"SandboxFilter\"\nfilename = \"{broken}\"\n\
         message_matcher = \"Type == 'test'\"\nticker_interval = 1\n\
         [Loop]\ntype = \"SandboxFilter\"\nfilename = \"{looping}\"\n\
         message_matcher = \"Type == 'test'\"\ninstruction_limit = 100000\n\
         [Dashboard]\ntype = \"DashboardOutput\"\n",
        broken = lua("bad_cbuf.lua"),
        looping = lua("runaway_loop.lua"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[http, input]);
    send_tcp(input, &frame(&numbered_message(1, "x")));
    let dashboard = |field: &str| -> serde_json::Value {
        let body = get(http, "/graphs.json").unwrap_or_else(|| "{}".into());
        serde_json::from_str::<serde_json::Value>(&body).unwrap()[field].clone()
    };
    let rejected = || -> u64 {
        let body = get(http, "/plugins.json").unwrap_or_else(|| "{}".into());
        let plugins: serde_json::Value = serde_json::from_str(&body).unwrap();
        let plugins = plugins["plugins"].as_array().cloned().unwrap_or_default();
        let dashboard = plugins.iter().find(|plugin| plugin["name"] == "Dashboard");
        dashboard.map_or(0, |plugin| {
            plugin["counters"]["rejected_total"].as_u64().unwrap_or(0)
        })
    };
    wait_for_or_explain(
        Duration::from_secs(20),
        "a rejected cbuf and a termination on the dashboard",
        || {
            rejected() >= 1
                && dashboard("terminations")
                    .as_array()
                    .is_some_and(|t| !t.is_empty())
        },
        || format!("{}\n{}", dashboard("terminations"), daemon.stderr()),
    );
    // The bad payload left no graph; the termination names the plugin and says why.
    assert_eq!(dashboard("graphs"), serde_json::json!([]));
    let terminations = dashboard("terminations");
    assert_eq!(terminations[0]["plugin"], "Loop", "{terminations}");
    let reason = terminations[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("instruction"), "{reason}");
    assert_eq!(dashboard("dashboard_output"), true);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
}
