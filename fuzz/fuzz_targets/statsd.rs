//! The statsd parser (StatsdInput datagrams) and the stat records it hands the accumulator:
//! every stat it accepts encodes to a record that decodes back to the same stat.
#![no_main]

use gyges::stats::statsd::{
    decode_stat, decode_stat_prefix, encode_stat, parse_datagram, stat_records,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut record = Vec::new();
    for stat in parse_datagram(data).flatten() {
        record.clear();
        if encode_stat(&stat, &mut record).is_ok() {
            let decoded = decode_stat(&record).expect("an encoded stat decodes");
            assert_eq!(
                format!("{decoded:?}"),
                format!("{stat:?}"),
                "stat record round trip"
            );
        }
    }
    // The accumulator's side: a batch of records from another core, possibly damaged.
    let mut records = stat_records(data);
    for _ in records.by_ref() {}
    let _ = records.rest();
    let _ = decode_stat_prefix(data);
});
