//! The on-disk state parsers: queue records walked in memory and by the chunked tail scan
//! that recovery and `gyges queue` use (they must agree), consumer checkpoints, and the
//! LogstreamerInput journal.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use gyges::input::logstreamer::journal;
use gyges::queue::record::{self, Step};
use gyges::queue::recovery::inspect;
use gyges::queue::{checkpoint, segment};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gyges-fuzz-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let Some((&checkpoint_bytes, rest)) = rest.split_first() else {
        return;
    };
    let (checkpoint_text, segment_bytes) =
        rest.split_at(usize::from(checkpoint_bytes).min(rest.len()));
    let _ = checkpoint::decode(checkpoint_text);
    if let Ok(text) = std::str::from_utf8(checkpoint_text) {
        if let Some(position) = journal::Position::decode(text) {
            assert_eq!(
                journal::Position::decode(&position.encode()),
                Some(position)
            );
        }
    }
    // The whole-bytes walk.
    let mut at = 0;
    let mut records = 0u64;
    let mut valid_bytes = 0u64;
    loop {
        match record::step(segment_bytes, at, true) {
            Step::Record { message, next, .. } => {
                assert!(message.end <= next && next > at && next <= segment_bytes.len());
                records += 1;
                valid_bytes = next as u64;
                at = next;
            }
            Step::Skip { next } => {
                assert!(next > at && next <= segment_bytes.len(), "a skip moves on");
                at = next;
            }
            Step::NeedMore { .. } => panic!("NeedMore on complete bytes"),
            Step::End => break,
        }
    }
    // The chunked scan over a file holding the same bytes.
    let dir = dir();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    std::fs::write(segment::path(dir, 0), segment_bytes).expect("write segment");
    std::fs::write(dir.join(checkpoint::file_name("out")), checkpoint_text).expect("write");
    let inspection = inspect(dir, usize::from(chunk) + 1).expect("inspect reads the files");
    if !segment_bytes.is_empty() {
        assert_eq!(inspection.tail.records, records, "intact records");
        assert_eq!(inspection.tail.valid_bytes, valid_bytes, "intact end");
    }
    assert_eq!(inspection.consumers.len(), 1);
});
