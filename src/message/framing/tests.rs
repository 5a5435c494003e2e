//! Tests of the stream framing: the reference layout, incomplete and damaged headers, headers
//! read back by prost, the HMAC vectors and signed frames.

use super::*;
use crate::message::proto;
use proptest::prelude::*;
use prost::Message as _;

fn unsigned_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, message, None).unwrap();
    out
}

#[test]
fn unsigned_frame_matches_the_reference_layout() {
    let message = [7u8; 100];
    let frame = unsigned_frame(&message);
    assert_eq!(&frame[..5], &[0x1E, 0x02, 0x08, 0x64, 0x1F]);
    assert_eq!(&frame[5..], &message);
    let header = parse_header(&frame).unwrap().unwrap();
    assert_eq!(header.header_bytes, 2);
    assert_eq!(header.message_length, 100);
    assert_eq!(header.frame_bytes(), frame.len());
    assert_eq!(header.hmac, None);
    assert_eq!(frame_overhead_bytes(100, None), 5);
}

#[test]
fn every_prefix_of_a_header_is_incomplete() {
    let signer = Signer::new("ops", 3, HashFunction::Sha1, b"key").unwrap();
    let mut frame = Vec::new();
    write_frame(&mut frame, b"message", Some(&signer)).unwrap();
    let header_end = 3 + usize::from(frame[1]);
    for cut in 0..header_end {
        assert_eq!(parse_header(&frame[..cut]), Ok(None), "cut at {cut}");
    }
    assert!(parse_header(&frame[..header_end]).unwrap().is_some());
}

struct Seed {
    bytes: &'static [u8],
    expected: Result<Option<u32>, HeaderError>,
}

const SEEDS: &[Seed] = &[
    Seed {
        bytes: b"\x1e\x02\x08\x05\x1f",
        expected: Ok(Some(5)),
    },
    Seed {
        bytes: b"\x1e\x02\x08\x05\x1fabcde",
        expected: Ok(Some(5)),
    },
    Seed {
        bytes: b"x\x1e\x02\x08\x05\x1f",
        expected: Err(HeaderError::NoRecordSeparator),
    },
    Seed {
        bytes: b"\x1e\x00\x08",
        expected: Err(HeaderError::EmptyHeader),
    },
    Seed {
        bytes: b"\x1e\x02\x10\x05\x1f",
        expected: Err(HeaderError::NotMessageLengthFirst),
    },
    Seed {
        bytes: b"\x1e\x02\x08\x05\x1e",
        expected: Err(HeaderError::NoUnitSeparator),
    },
    // A varint cut short by the header length.
    Seed {
        bytes: b"\x1e\x02\x08\x85\x1f",
        expected: Err(HeaderError::Malformed),
    },
    // hmac_signer (4) sent as a varint.
    Seed {
        bytes: b"\x1e\x04\x08\x05\x20\x01\x1f",
        expected: Err(HeaderError::WrongWireType),
    },
    Seed {
        bytes: b"\x1e\x02\x08\x00\x1f",
        expected: Err(HeaderError::EmptyMessage),
    },
    // 2 GiB claimed.
    Seed {
        bytes: b"\x1e\x06\x08\x80\x80\x80\x80\x08\x1f",
        expected: Err(HeaderError::AboveCeiling {
            message_length: 1 << 31,
        }),
    },
    // Exactly the ceiling, 64 MiB: well formed.
    Seed {
        bytes: b"\x1e\x05\x08\x80\x80\x80\x20\x1f",
        expected: Ok(Some(64 << 20)),
    },
    // One above the ceiling.
    Seed {
        bytes: b"\x1e\x05\x08\x81\x80\x80\x20\x1f",
        expected: Err(HeaderError::AboveCeiling {
            message_length: (64 << 20) + 1,
        }),
    },
    // Unknown field 2 (Heka's old message_encoding) is skipped; the last length wins.
    Seed {
        bytes: b"\x1e\x06\x08\x05\x10\x01\x08\x07\x1f",
        expected: Ok(Some(7)),
    },
    // Key version above u32.
    Seed {
        bytes: b"\x1e\x08\x08\x05\x28\x80\x80\x80\x80\x10\x1f",
        expected: Err(HeaderError::Malformed),
    },
    Seed {
        bytes: b"",
        expected: Ok(None),
    },
    Seed {
        bytes: b"\x1e",
        expected: Ok(None),
    },
    Seed {
        bytes: b"\x1e\x02",
        expected: Ok(None),
    },
    Seed {
        bytes: b"\x1e\x02\x08\x05",
        expected: Ok(None),
    },
];

#[test]
fn header_seeds() {
    for (index, seed) in SEEDS.iter().enumerate() {
        let got = parse_header(seed.bytes).map(|header| header.map(|h| h.message_length));
        assert_eq!(got, seed.expected, "seed {index}: {:?}", seed.bytes);
    }
}

#[test]
fn headers_agree_with_prost() {
    for hash in [HashFunction::Md5, HashFunction::Sha1] {
        let signer = Signer::new("test", 11, hash, b"secret").unwrap();
        let message = b"some message bytes".repeat(20);
        let mut frame = Vec::new();
        write_frame(&mut frame, &message, Some(&signer)).unwrap();
        let header_bytes = usize::from(frame[1]);
        let decoded = proto::Header::decode(&frame[2..2 + header_bytes]).unwrap();
        let expected = proto::Header {
            message_length: message.len() as u32,
            // Heka's senders omit the default (MD5).
            hmac_hash_function: (hash == HashFunction::Sha1).then_some(1),
            hmac_signer: Some("test".into()),
            hmac_key_version: Some(11),
            hmac: Some(signer.sign(&message).as_bytes().to_vec()),
        };
        assert_eq!(decoded, expected);
        // Byte for byte: prost writes fields in tag order, as Heka does.
        assert_eq!(
            &frame[2..2 + header_bytes],
            expected.encode_to_vec().as_slice()
        );
        assert_eq!(
            frame.len(),
            frame_overhead_bytes(message.len(), Some(&signer)) + 360
        );
    }
}

/// RFC 2104 / RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
#[test]
fn digests_match_the_rfc_vectors() {
    let data = b"what do ya want for nothing?";
    let md5 = Signer::new("a", 0, HashFunction::Md5, b"Jefe").unwrap();
    let sha1 = Signer::new("a", 0, HashFunction::Sha1, b"Jefe").unwrap();
    let hex = |digest: Digest| -> String {
        digest
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    assert_eq!(hex(md5.sign(data)), "750c783e6ab0b503eaa86e310a5db738");
    assert_eq!(
        hex(sha1.sign(data)),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
}

#[test]
fn signed_frame_matches_one_built_by_hand() {
    let message = b"hand-built";
    let mut mac = Hmac::<Md5>::new_from_slice(b"k3y").unwrap();
    mac.update(message);
    let digest = mac.finalize().into_bytes();
    let mut expected = vec![0x1E, 0, 0x08, message.len() as u8];
    expected.extend_from_slice(&[0x22, 3, b'o', b'p', b's', 0x28, 2, 0x32, 16]);
    expected.extend_from_slice(&digest);
    expected[1] = (expected.len() - 2) as u8;
    expected.push(0x1F);
    expected.extend_from_slice(message);

    let signer = Signer::new("ops", 2, HashFunction::Md5, b"k3y").unwrap();
    let mut frame = Vec::new();
    write_frame(&mut frame, message, Some(&signer)).unwrap();
    assert_eq!(frame, expected);
    // The known-length path writes the same bytes.
    let mut in_place = b"prefix".to_vec();
    let pending = begin_frame(&mut in_place, message.len(), Some(&signer)).unwrap();
    assert_eq!(pending.message_start(), 6 + expected.len() - message.len());
    in_place.extend_from_slice(message);
    pending.finish(&mut in_place).unwrap();
    assert_eq!(&in_place[6..], expected.as_slice());
}

fn verify(verifier: &Verifier, frame: &[u8]) -> Authentication {
    let header = parse_header(frame).unwrap().unwrap();
    verifier.authenticate(
        &header,
        &frame[header.message_start()..header.frame_bytes()],
    )
}

#[test]
fn verification_follows_heka() {
    let keys: [(&str, &[u8]); 3] = [
        ("ops_1", b"old key"),
        ("ops_2", b"new key"),
        ("under_score_0", b"u"),
    ];
    let verifier = Verifier::new(keys).unwrap();
    let message = b"payload bytes";
    let frame_by = |signer: &Signer| {
        let mut frame = Vec::new();
        write_frame(&mut frame, message, Some(signer)).unwrap();
        frame
    };
    // Both live versions verify, with either hash.
    for (version, key, hash) in [
        (1, &b"old key"[..], HashFunction::Md5),
        (2, &b"new key"[..], HashFunction::Sha1),
    ] {
        let signer = Signer::new("ops", version, hash, key).unwrap();
        let Authentication::Verified(id) = verify(&verifier, &frame_by(&signer)) else {
            panic!("version {version} should verify");
        };
        assert_eq!(verifier.signer_name(id), Some(&b"ops"[..]));
    }
    let underscore = Signer::new("under_score", 0, HashFunction::Md5, b"u").unwrap();
    assert!(matches!(
        verify(&verifier, &frame_by(&underscore)),
        Authentication::Verified(_)
    ));
    // A version with no key, a signer with no key, a wrong key: rejected.
    let cases = [
        (
            Signer::new("ops", 3, HashFunction::Md5, b"new key").unwrap(),
            AuthError::UnknownSigner,
        ),
        (
            Signer::new("dev", 1, HashFunction::Md5, b"old key").unwrap(),
            AuthError::UnknownSigner,
        ),
        (
            Signer::new("ops", 2, HashFunction::Md5, b"old key").unwrap(),
            AuthError::DigestMismatch,
        ),
    ];
    for (signer, error) in cases {
        assert_eq!(
            verify(&verifier, &frame_by(&signer)),
            Authentication::Rejected(error)
        );
    }
    // A tampered message is rejected.
    let mut tampered = frame_by(&Signer::new("ops", 2, HashFunction::Md5, b"new key").unwrap());
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        verify(&verifier, &tampered),
        Authentication::Rejected(AuthError::DigestMismatch)
    );
    // Unsigned frames are accepted unsigned, even with no keys at all.
    assert_eq!(
        verify(&verifier, &unsigned_frame(message)),
        Authentication::Unsigned
    );
    assert_eq!(
        verify(&Verifier::default(), &unsigned_frame(message)),
        Authentication::Unsigned
    );
    // With no keys, every signed frame is rejected, as in Heka.
    let signer = Signer::new("ops", 1, HashFunction::Md5, b"old key").unwrap();
    assert_eq!(
        verify(&Verifier::default(), &frame_by(&signer)),
        Authentication::Rejected(AuthError::UnknownSigner)
    );
}

#[test]
fn unknown_hash_function_is_rejected() {
    let verifier = Verifier::new([("ops_1", &b"k"[..])]).unwrap();
    // Hash function 7, signer ops, version 1, a 16-byte hmac.
    let mut frame = vec![
        0x1E, 0, 0x08, 1, 0x18, 7, 0x22, 3, b'o', b'p', b's', 0x28, 1,
    ];
    frame.extend_from_slice(&[0x32, 16]);
    frame.extend_from_slice(&[0; 16]);
    frame[1] = (frame.len() - 2) as u8;
    frame.extend_from_slice(&[0x1F, b'm']);
    assert_eq!(
        verify(&verifier, &frame),
        Authentication::Rejected(AuthError::UnknownHashFunction)
    );
}

#[test]
fn bad_key_names_are_refused() {
    for name in ["ops", "ops_", "ops_x", "ops_01", "ops_-1", "ops_4294967296"] {
        let error = Verifier::new([(name, &b"k"[..])]).unwrap_err();
        assert_eq!(
            error,
            SignerError::BadKeyName { key: name.into() },
            "{name}"
        );
    }
    let error = Verifier::new([("a_1", &b"k"[..]), ("a_1", &b"j"[..])]).unwrap_err();
    assert_eq!(error, SignerError::DuplicateKey { key: "a_1".into() });
    let long = "n".repeat(240);
    let error = Signer::new(&long, 1, HashFunction::Sha1, b"k").unwrap_err();
    assert_eq!(error, SignerError::NameTooLong { bytes: 240 });
}

#[test]
fn writing_refuses_what_cannot_be_framed() {
    let mut out = b"keep".to_vec();
    assert_eq!(
        begin_frame(&mut out, MESSAGE_BYTES_CEILING + 1, None).unwrap_err(),
        FrameError::MessageTooLarge {
            bytes: MESSAGE_BYTES_CEILING + 1
        }
    );
    assert_eq!(
        write_frame(&mut out, b"", None),
        Err(FrameError::EmptyMessage { bytes: 0 })
    );
    let pending = begin_frame(&mut out, 3, None).unwrap();
    out.extend_from_slice(b"four");
    assert_eq!(
        pending.finish(&mut out),
        Err(FrameError::LengthMismatch {
            announced: 3,
            written: 4
        })
    );
    assert_eq!(out, b"keep", "a failed frame leaves the batch as it was");
}

proptest! {
    #[test]
    fn no_bytes_panic_the_header_reader(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut framed = vec![RECORD_SEPARATOR];
        framed.extend_from_slice(&bytes);
        if let Ok(Some(header)) = parse_header(&framed) {
            prop_assert!(header.header_bytes + 3 <= framed.len());
            prop_assert!(header.message_length > 0);
        }
        let _ = parse_header(&bytes);
    }

    #[test]
    fn frames_round_trip(
        message in proptest::collection::vec(any::<u8>(), 1..3000),
        name in "[a-z_]{0,40}",
        version in any::<u32>(),
        sha1 in any::<bool>(),
        signed in any::<bool>(),
    ) {
        let hash = if sha1 { HashFunction::Sha1 } else { HashFunction::Md5 };
        let signer = Signer::new(&name, version, hash, b"key").unwrap();
        let signer = signed.then_some(&signer);
        let mut frame = Vec::new();
        write_frame(&mut frame, &message, signer).unwrap();
        let overhead = frame_overhead_bytes(message.len(), signer);
        prop_assert_eq!(frame.len(), overhead + message.len());
        let header = parse_header(&frame).unwrap().unwrap();
        prop_assert_eq!(header.frame_bytes(), frame.len());
        prop_assert_eq!(&frame[header.message_start()..], message.as_slice());
        let key = format!("{name}_{version}");
        let verifier = Verifier::new([(key.as_str(), &b"key"[..])]).unwrap();
        let outcome = verifier.authenticate(&header, &message);
        if signed {
            prop_assert!(matches!(outcome, Authentication::Verified(_)));
        } else {
            prop_assert_eq!(outcome, Authentication::Unsigned);
        }
    }
}
