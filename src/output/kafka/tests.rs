//! KafkaOutput's unit tests: variables, the batch frame, partitions.

use super::frame::ABSENT;
use super::*;

#[test]
fn variables_parse_as_heka_wrote_them() {
    assert_eq!(
        Variable::parse("Hostname"),
        Some(Variable::Header(StrHeader::Hostname))
    );
    assert_eq!(
        Variable::parse("Fields[topic]"),
        Some(Variable::Field(b"topic".as_slice().into()))
    );
    assert_eq!(
        Variable::parse("Fields[topic][0][0]"),
        Some(Variable::Field(b"topic".as_slice().into()))
    );
    for bad in [
        "",
        "Fields[]",
        "Fields[a][1][0]",
        "Fields[a",
        "Timestamp",
        "Severity",
    ] {
        assert_eq!(Variable::parse(bad), None, "{bad}");
    }
}

#[test]
fn hash_partitions_match_fnv1a_modulo() {
    // FNV-1a 32 of "" is the offset basis 0x811c9dc5; as i32 it is negative.
    assert_eq!(hash_partition(b"", 4), ((0x811c_9dc5_u32 as i32) % 4).abs());
    // FNV-1a 32 of "a" is 0xe40c292c.
    assert_eq!(
        hash_partition(b"a", 7),
        ((0xe40c_292c_u32 as i32) % 7).abs()
    );
    for key in [&b"host-1"[..], b"host-2", b"\xff\x00"] {
        let partition = hash_partition(key, 5);
        assert!((0..5).contains(&partition));
        assert_eq!(partition, hash_partition(key, 5), "stable");
    }
}

#[test]
fn random_sticks_to_a_partition_for_a_batch_of_records_and_reaches_every_one() {
    let choice = PartitionChoice {
        partitioning: Partitioning::Random,
        next: AtomicU32::new(0),
        sticky: AtomicU64::new(0),
    };
    let sticky = KAFKA_STICKY_RECORDS as usize;
    let picks: Vec<i32> = (0..sticky * 64)
        .map(|_| choice.partition("t", None, 4, |_| true))
        .collect();
    for run in picks.chunks(sticky) {
        assert!(run.iter().all(|&p| p == run[0]), "one partition per run");
        assert!((0..4).contains(&run[0]));
    }
    // 64 independent choices among 4 miss a partition with probability below 1e-7.
    for partition in 0..4 {
        assert!(
            picks.contains(&partition),
            "partition {partition} never chosen"
        );
    }
    // A topic with fewer partitions than the sticky choice gets a new choice at once.
    choice.sticky.store((3u64 << 32) | 10, Ordering::Relaxed);
    assert!(choice.partition("t", None, 2, |_| true) < 2);
}

#[test]
fn frames_round_trip_and_truncation_yields_whole_messages_only() {
    let mut bytes = Vec::new();
    let push = |bytes: &mut Vec<u8>, key: Option<&[u8]>, topic: Option<&[u8]>, value: &[u8]| {
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        let len = |part: Option<&[u8]>| part.map_or(ABSENT, |part| part.len() as u16);
        bytes.extend_from_slice(&len(key).to_le_bytes());
        bytes.extend_from_slice(&len(topic).to_le_bytes());
        bytes.extend_from_slice(key.unwrap_or_default());
        bytes.extend_from_slice(topic.unwrap_or_default());
        bytes.extend_from_slice(value);
    };
    push(&mut bytes, None, None, b"one");
    push(&mut bytes, Some(b"k"), Some(b"t"), b"two");
    push(&mut bytes, Some(b""), None, b"");
    let all: Vec<Framed<'_>> = framed(&bytes).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0],
        Framed {
            topic: None,
            key: None,
            value: b"one"
        }
    );
    assert_eq!(
        all[1],
        Framed {
            topic: Some(b"t"),
            key: Some(b"k"),
            value: b"two"
        }
    );
    assert_eq!(all[2].key, Some(&b""[..]));
    assert_eq!(
        framed(&bytes[..bytes.len() - 1]).count(),
        2,
        "a cut frame is not read"
    );
}

#[test]
fn topic_names_are_checked() {
    assert!(check_topic(b"logs.app-1_x").is_ok());
    for bad in [&b""[..], b".", b"..", b"a b", b"caf\xc3\xa9"] {
        assert!(check_topic(bad).is_err());
    }
    assert!(check_topic(&[b'a'; 250]).is_err());
    assert!(check_topic(&[b'a'; 249]).is_ok());
}
