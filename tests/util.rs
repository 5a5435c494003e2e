//! Helpers shared by the end-to-end tests.

#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use gyges::message::framing::Verifier;
use gyges::splitter::{HekaFrameSplitter, Splitter, Step};

/// A command running the built `gyges` binary.
pub fn gyges() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gyges"))
}

/// Listens on a free loopback port, accepts `connections` connections and returns, once all
/// of them are closed, the bytes each one sent (in the order they were accepted).
pub fn collect_listener(connections: usize) -> (SocketAddr, JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    let handle = std::thread::spawn(move || {
        let readers: Vec<JoinHandle<Vec<u8>>> = (0..connections)
            .map(|_| {
                let (mut stream, _) = listener.accept().expect("accept");
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    stream
                        .read_to_end(&mut bytes)
                        .expect("read a connection to its end");
                    bytes
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().expect("reader thread"))
            .collect()
    });
    (address, handle)
}

/// Splits a Heka-framed stream into its records, checking signatures against `keys`; returns
/// each message with its verified signer name.
pub fn split_frames(stream: &[u8], keys: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Option<String>)> {
    let verifier = Arc::new(Verifier::new(keys.iter().copied()).expect("valid keys"));
    let mut splitter =
        Splitter::HekaFrame(HekaFrameSplitter::new(verifier, false, 1 << 20).expect("splitter"));
    let mut window = stream;
    let mut records = Vec::new();
    while let Step::Record {
        start,
        end,
        consumed,
        signer,
    } = splitter.split(window)
    {
        let name = signer
            .and_then(|id| splitter.signer_name(id))
            .map(|name| String::from_utf8_lossy(name).into_owned());
        records.push((window[start..end].to_vec(), name));
        window = &window[consumed..];
    }
    let stats = splitter.stats();
    assert_eq!(stats.discarded_bytes, 0, "a clean stream has no garbage");
    assert_eq!(stats.auth_failures, 0, "every signed frame verifies");
    records
}
