//! The Forward protocol's `shared_key` handshake, server side, as pure functions.
//!
//! With a `shared_key`, the server speaks first on every connection:
//!
//! ```text
//! server → HELO  ["HELO", {"nonce": bin, "auth": "", "keepalive": true}]
//! client → PING  ["PING", client_hostname, salt, hex(sha512(salt + client_hostname + nonce + key)), username, password]
//! server → PONG  ["PONG", true, "", server_hostname, hex(sha512(salt + server_hostname + nonce + key))]
//! ```
//!
//! A PING whose digest does not match is answered `["PONG", false, reason, "", ""]` and the
//! connection is closed. User authentication (`auth` salt, username and password) is not asked
//! for: `auth` is empty and the PING's username and password are ignored.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::msgpack::{put_array, put_bin, put_bool, put_map, put_str, Reader, Value};

/// Bytes of the nonce the server sends.
pub const NONCE_BYTES: usize = 16;

/// Appends the HELO message for `nonce`.
pub fn helo(nonce: &[u8; NONCE_BYTES], out: &mut Vec<u8>) {
    put_array(out, 2);
    put_str(out, b"HELO");
    put_map(out, 3);
    put_str(out, b"nonce");
    put_bin(out, nonce);
    put_str(out, b"auth");
    put_str(out, b"");
    put_str(out, b"keepalive");
    put_bool(out, true);
}

/// The lower-case hex SHA-512 of the parts, concatenated.
pub fn hex_digest(parts: &[&[u8]]) -> [u8; 128] {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = [0u8; 128];
    for (index, byte) in digest.iter().enumerate() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex[2 * index] = DIGITS[usize::from(byte >> 4)];
        hex[2 * index + 1] = DIGITS[usize::from(byte & 15)];
    }
    hex
}

/// The outcome of a PING.
#[derive(Debug, PartialEq, Eq)]
pub enum Ping {
    /// The digest matched: the PONG to send is appended; the connection may send events.
    Accepted,
    /// The PING is malformed or its digest does not match: the refusal is appended; close.
    Refused(&'static str),
}

/// Checks the PING `frame` against `shared_key` and the `nonce` sent, and appends the PONG.
pub fn answer_ping(
    frame: &[u8],
    (nonce, shared_key, hostname): (&[u8; NONCE_BYTES], &[u8], &[u8]),
    out: &mut Vec<u8>,
) -> Ping {
    let verdict = check_ping(frame, nonce, shared_key);
    match verdict {
        Ok(salt) => {
            put_array(out, 5);
            put_str(out, b"PONG");
            put_bool(out, true);
            put_str(out, b"");
            put_str(out, hostname);
            put_str(out, &hex_digest(&[salt, hostname, nonce, shared_key]));
            Ping::Accepted
        }
        Err(reason) => {
            put_array(out, 5);
            put_str(out, b"PONG");
            put_bool(out, false);
            put_str(out, reason.as_bytes());
            put_str(out, b"");
            put_str(out, b"");
            Ping::Refused(reason)
        }
    }
}

/// The PING's salt when its digest is right.
fn check_ping<'f>(
    frame: &'f [u8],
    nonce: &[u8],
    shared_key: &[u8],
) -> Result<&'f [u8], &'static str> {
    let mut reader = Reader::new(frame);
    let malformed = "malformed PING";
    let Ok(Value::Array(4..=6)) = reader.value() else {
        return Err(malformed);
    };
    let mut text = || match reader.value() {
        Ok(Value::Str(text) | Value::Bin(text)) => Ok(text),
        _ => Err(malformed),
    };
    let (name, hostname, salt, digest) = (text()?, text()?, text()?, text()?);
    if name != b"PING" {
        return Err(malformed);
    }
    let expected = hex_digest(&[salt, hostname, nonce, shared_key]);
    if bool::from(expected.as_slice().ct_eq(digest)) {
        Ok(salt)
    } else {
        Err("shared_key mismatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(key: &[u8], nonce: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_array(&mut out, 6);
        put_str(&mut out, b"PING");
        put_str(&mut out, b"client");
        put_str(&mut out, b"salt");
        put_str(&mut out, &hex_digest(&[b"salt", b"client", nonce, key]));
        put_str(&mut out, b"");
        put_str(&mut out, b"");
        out
    }

    #[test]
    fn the_right_key_is_accepted_and_a_wrong_one_refused() {
        let nonce = [7u8; NONCE_BYTES];
        let mut out = Vec::new();
        let verdict = answer_ping(
            &ping(b"secret", &nonce),
            (&nonce, b"secret", b"server"),
            &mut out,
        );
        assert_eq!(verdict, Ping::Accepted);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.value(), Ok(Value::Array(5)));
        assert_eq!(reader.value(), Ok(Value::Str(b"PONG")));
        assert_eq!(reader.value(), Ok(Value::Bool(true)));
        let mut out = Vec::new();
        let verdict = answer_ping(
            &ping(b"wrong", &nonce),
            (&nonce, b"secret", b"server"),
            &mut out,
        );
        assert_eq!(verdict, Ping::Refused("shared_key mismatch"));
        let other_nonce = [8u8; NONCE_BYTES];
        let verdict = answer_ping(
            &ping(b"secret", &other_nonce),
            (&nonce, b"secret", b"server"),
            &mut Vec::new(),
        );
        assert_eq!(verdict, Ping::Refused("shared_key mismatch"));
    }

    #[test]
    fn the_digest_is_sha512_hex() {
        // sha512("abc"), a published test vector.
        let hex = hex_digest(&[b"a", b"bc"]);
        assert!(hex.starts_with(b"ddaf35a193617aba"));
        assert!(hex.ends_with(b"a54ca49f"));
    }
}
