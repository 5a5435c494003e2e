//! `gyges queue` on queue files written by the library, as a stopped daemon leaves them.

use std::path::{Path, PathBuf};
use std::process::Command;

use gyges::queue::{QueueOptions, ReadBatch, Reader, Writer};

use crate::util::gyges_binary;

/// Writes `count` records to `<queue_dir>/input/0` and lets `FileOutput` read `read` of them.
fn write_queue(queue_dir: &Path, count: u64, read: usize) {
    let dir = gyges::queue::source_dir(queue_dir, "input", 0);
    glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .make()
        .expect("an executor")
        .run(async move {
            let options = QueueOptions {
                max_file_size: 64 * 1024,
                min_disk_free: 0,
                ..QueueOptions::default()
            };
            let consumers = vec!["FileOutput".to_string()];
            let mut writer = Writer::open(&dir, &options, &consumers)
                .await
                .expect("open");
            let messages: Vec<Vec<u8>> = (0..count).map(util_message).collect();
            writer
                .append_batch(messages.iter().map(Vec::as_slice))
                .await
                .expect("append");
            let mut reader = Reader::open(&writer.handle(), "FileOutput").expect("reader");
            let mut batch = ReadBatch::new();
            let mut seen = 0;
            while seen < read {
                seen += reader.read(&mut batch).await.expect("read");
                reader.commit(batch.end()).await.expect("commit");
            }
            reader.close().await.expect("close reader");
            writer.close().await.expect("close writer");
        });
}

fn util_message(sequence: u64) -> Vec<u8> {
    crate::util::numbered_message(sequence as i64, &"x".repeat(250))
}

fn gyges_queue(args: &[&str], cwd: &Path) -> (bool, String, String) {
    let output = Command::new(gyges_binary())
        .arg("queue")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run gyges queue");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn gyges_queue_lists_queues_cursors_and_lag_from_a_config_or_a_directory() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let queue_dir: PathBuf = work.path().join("data/queue");
    write_queue(&queue_dir, 1000, 400);
    let config = work.path().join("gyges.toml");
    std::fs::write(
        &config,
        "[hekad]\nbase_dir = \"data\"\n\n[FileOutput]\npath = \"out.log\"\nuse_buffering = true\n",
    )
    .expect("write the config");

    let (ok, stdout, stderr) = gyges_queue(&["-c", "gyges.toml"], work.path());
    println!("{stdout}");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queue dir: data/queue"), "{stdout}");
    assert!(stdout.contains("input/0: "), "{stdout}");
    assert!(stdout.contains("1000 records (seq 0..1000)"), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("FileOutput"))
        .expect("a line for FileOutput");
    assert!(line.ends_with(" ok"), "{line}");
    let lag_records: u64 = line
        .split_whitespace()
        .rev()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&lag_records), "{line}");

    let (ok, stdout, _) = gyges_queue(&["--dir", "data/queue/input/0"], work.path());
    assert!(ok);
    assert!(stdout.contains(".: "), "{stdout}");

    let (ok, _, stderr) = gyges_queue(&["--dir", "nowhere"], work.path());
    assert!(!ok);
    assert!(stderr.contains("no queue directory at nowhere"), "{stderr}");
}
