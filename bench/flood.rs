//! `gyges flood`'s own speed: numbering records in memory, then sending into a discard sink
//! (a std listener thread per connection that reads and drops). Run with
//! `cargo bench --bench flood`; the figures go to the `flood` section of the report. On a
//! 2-core box the sink takes the other core. The end-to-end bench relies on flood being
//! faster than gyges: these rows are its ceiling.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::net::TcpListener;

use common::{Mode, Section, Table};
use gyges::limits::FLOOD_BATCH_BYTES;
use gyges::tools::flood::{flood, FloodArgs, FloodFormat, Template};

fn discard_sink(connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 1 << 20];
                while stream.read(&mut buffer).is_ok_and(|read| read > 0) {}
            });
        }
    });
    address
}

/// Passes of each row; its figures are the median pass, with the spread beside them.
const PASSES: usize = 3;

/// A row from the passes' seconds: `records` and `bytes` per pass.
fn timed_row(table: &mut Table, name: &str, timing: &common::Timing, records: u64, bytes: u64) {
    let seconds = timing.median.max(1e-9);
    table.row(vec![
        name.into(),
        format!("{:.2}", bytes as f64 / seconds / 1e9),
        format!("{:.1}", records as f64 / seconds / 1e6),
        timing.spread(),
        records.to_string(),
        format!("{seconds:.3}"),
    ]);
}

/// Numbering records in a batch, no socket: the generator's own ceiling.
fn patch_only(table: &mut Table, name: &str, template: &Template, count: u64) {
    let records = FLOOD_BATCH_BYTES / template.record.len();
    let mut batch = template.record.repeat(records);
    let (timing, numbered) = common::median_of(PASSES, || {
        let mut seq = 0;
        while seq < count {
            seq = template.patch_batch(&mut batch, seq, 1, 1_700_000_000_000_000_000);
            std::hint::black_box(&batch);
        }
        seq
    });
    let bytes = numbered * template.record.len() as u64;
    timed_row(table, name, &timing, numbered, bytes);
}

/// Sending `args.count` records into a fresh discard listener, [`PASSES`] times.
fn send(table: &mut Table, name: &str, args: &FloodArgs) {
    let mut seconds = Vec::new();
    let (mut messages, mut bytes) = (0, 0);
    for _ in 0..PASSES {
        let args = FloodArgs {
            addr: discard_sink(args.connections),
            ..args.clone()
        };
        let report = flood(&args).unwrap();
        seconds.push(report.seconds);
        (messages, bytes) = (report.messages, report.bytes);
    }
    timed_row(table, name, &common::Timing::of(seconds), messages, bytes);
}

fn main() {
    let mode = Mode::detect();
    let patch_count = mode.pick(50_000_000, 5_000_000, 200_000);
    let send_count = mode.pick(10_000_000u64, 1_000_000, 50_000);
    let mut section = Section::new("flood", "gyges flood, the load generator", mode);
    section.line(format!(
        "Numbering only (no socket), then sending over loopback into a discard listener \
         (one reader thread per connection, 1 MiB reads) on the same machine. Each row is the \
         median of {PASSES} passes; spread = (slowest - fastest) / median.\n"
    ));
    let mut table = Table::new(&[
        "case",
        "GB/s",
        "M records/s",
        "spread",
        "records",
        "seconds",
    ]);
    patch_only(
        &mut table,
        "lines 200 B, patch only (no socket)",
        &Template::lines(200).unwrap(),
        patch_count,
    );
    patch_only(
        &mut table,
        "heka 300 B, patch only (no socket)",
        &Template::heka(300, [1; 16]).unwrap(),
        patch_count,
    );
    let cases = [
        (FloodFormat::Lines, 200, 1usize),
        (FloodFormat::Heka, 300, 1),
        (FloodFormat::Lines, 200, 2),
    ];
    for (format, size, connections) in cases {
        let args = FloodArgs {
            addr: String::new(),
            format,
            count: send_count,
            size: Some(size),
            connections,
            rate: None,
            cpus: Vec::new(),
            first_seq: 0,
        };
        let name = match format {
            FloodFormat::Lines => format!("lines {size} B, {connections} connection(s)"),
            FloodFormat::Heka => format!("heka {size} B, {connections} connection(s)"),
            FloodFormat::Syslog => format!("syslog {size} B, {connections} connection(s)"),
        };
        send(&mut table, &name, &args);
    }
    section.table(&table);
    section.publish();
}
