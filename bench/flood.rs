//! `gyges flood`'s own speed into a discard sink: a std listener thread that reads and drops.
//! Run with `cargo bench --bench flood`. On a 2-core box the sink takes the other core.

use std::io::Read;
use std::net::TcpListener;

use std::time::Instant;

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
fn patch_only(name: &str, template: &Template, count: u64) {
    let records = FLOOD_BATCH_BYTES / template.record.len();
    let mut batch = template.record.repeat(records);
    let started = Instant::now();
    let mut seq = 0;
    while seq < count {
        seq = template.patch_batch(&mut batch, seq, 1, 1_700_000_000_000_000_000);
        std::hint::black_box(&batch);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{name}: numbered {seq} records in {seconds:.3} s: {:.1} M records/s",
        seq as f64 / seconds / 1e6
    );
}

fn main() {
    patch_only(
        "lines 200 B, patch only",
        &Template::lines(200).unwrap(),
        50_000_000,
    );
    patch_only(
        "heka 300 B, patch only",
        &Template::heka(300, [1; 16]).unwrap(),
        50_000_000,
    );
    let cases = [
        (FloodFormat::Lines, 200, 10_000_000u64, 1usize),
        (FloodFormat::Heka, 300, 10_000_000, 1),
        (FloodFormat::Lines, 200, 10_000_000, 2),
    ];
    for (format, size, count, connections) in cases {
        let args = FloodArgs {
            addr: discard_sink(connections),
            format,
            count,
            size: Some(size),
            connections,
            rate: None,
            cpus: Vec::new(),
            first_seq: 0,
        };
        let report = flood(&args).unwrap();
        println!(
            "{format:?} {size} B x {count}, {connections} connection(s): {}",
            report.summary()
        );
    }
}
