//! `gyges flood`'s own speed: numbering records in memory, then sending into a discard sink
//! (a std listener thread per connection that reads and drops). Run with
//! `cargo bench --bench flood`; the figures go to the `flood` section of the report. On a
//! 2-core box the sink takes the other core. The end-to-end bench relies on flood being
//! faster than gyges: these rows are its ceiling.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Instant;

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

/// Numbering records in a batch, no socket: the generator's own ceiling.
fn patch_only(table: &mut Table, name: &str, template: &Template, count: u64) {
    let records = FLOOD_BATCH_BYTES / template.record.len();
    let mut batch = template.record.repeat(records);
    let started = Instant::now();
    let mut seq = 0;
    while seq < count {
        seq = template.patch_batch(&mut batch, seq, 1, 1_700_000_000_000_000_000);
        std::hint::black_box(&batch);
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = seq * template.record.len() as u64;
    table.row(vec![
        name.into(),
        format!("{:.2}", bytes as f64 / seconds / 1e9),
        format!("{:.1}", seq as f64 / seconds / 1e6),
        seq.to_string(),
        format!("{seconds:.3}"),
    ]);
}

fn main() {
    let mode = Mode::detect();
    let patch_count = mode.pick(50_000_000, 5_000_000, 200_000);
    let send_count = mode.pick(10_000_000u64, 1_000_000, 50_000);
    let mut section = Section::new("flood", "gyges flood, the load generator", mode);
    section.line(
        "Numbering only (no socket), then sending over loopback into a discard listener \
         (one reader thread per connection, 1 MiB reads) on the same machine.\n",
    );
    let mut table = Table::new(&["case", "GB/s", "M records/s", "records", "seconds"]);
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
            addr: discard_sink(connections),
            format,
            count: send_count,
            size: Some(size),
            connections,
            rate: None,
            cpus: Vec::new(),
            first_seq: 0,
        };
        let report = flood(&args).unwrap();
        let name = match format {
            FloodFormat::Lines => format!("lines {size} B, {connections} connection(s)"),
            FloodFormat::Heka => format!("heka {size} B, {connections} connection(s)"),
            FloodFormat::Syslog => format!("syslog {size} B, {connections} connection(s)"),
        };
        let seconds = report.seconds.max(1e-9);
        table.row(vec![
            name,
            format!("{:.2}", report.bytes as f64 / seconds / 1e9),
            format!("{:.1}", report.messages as f64 / seconds / 1e6),
            report.messages.to_string(),
            format!("{seconds:.3}"),
        ]);
    }
    section.table(&table);
    section.publish();
}
