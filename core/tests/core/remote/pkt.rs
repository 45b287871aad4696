//! pkt-line and side-band framing: gitprotocol-common's examples byte for byte, round
//! trips, and every broken frame a typed error.

use proptest::prelude::*;
use snapgit_core::remote::{
    Error,
    pkt::{self, MAX_DATA_BYTES, Packet, Reader},
    sideband::{self, Band},
};

#[test]
fn the_documents_examples_encode_and_decode_byte_for_byte() {
    // gitprotocol-common, "pkt-line Format".
    for (payload, framed) in [
        (&b"a\n"[..], &b"0006a\n"[..]),
        (b"a", b"0005a"),
        (b"foobar\n", b"000bfoobar\n"),
        (b"", b"0004"),
    ] {
        let mut out = Vec::new();
        pkt::line(&mut out, payload).unwrap();
        assert_eq!(out, framed);
        let mut reader = Reader::new(framed);
        assert_eq!(reader.read().unwrap(), Some(Packet::Data(payload)));
        assert_eq!(reader.read().unwrap(), None);
    }
    let mut out = Vec::new();
    pkt::flush(&mut out);
    pkt::delim(&mut out);
    pkt::response_end(&mut out);
    assert_eq!(out, b"000000010002");
    let packets: Vec<_> = Reader::new(&out).map(Result::unwrap).collect();
    assert_eq!(packets, [Packet::Flush, Packet::Delim, Packet::ResponseEnd]);
}

#[test]
fn the_longest_line_fits_and_one_byte_more_is_refused() {
    let mut out = Vec::new();
    pkt::line(&mut out, &vec![b'x'; MAX_DATA_BYTES]).unwrap();
    assert_eq!(&out[..4], b"fff0");
    assert_eq!(out.len(), 65520);
    assert_eq!(Reader::new(&out).read().unwrap(), Some(Packet::Data(&out[4..])));
    let mut out = Vec::new();
    assert_eq!(
        pkt::line(&mut out, &vec![b'x'; MAX_DATA_BYTES + 1]),
        Err(Error::TooLong { at: None, len: 65517 })
    );
    assert!(out.is_empty(), "nothing is written for a refused line");
}

#[test]
fn the_reader_leaves_what_follows_the_flush() {
    let mut body = b"0009want\n".to_vec();
    pkt::flush(&mut body);
    body.extend_from_slice(b"PACK\0\0\0\x02");
    let mut reader = Reader::new(&body);
    assert_eq!(reader.read().unwrap(), Some(Packet::Data(b"want\n")));
    assert_eq!(reader.offset(), 9);
    assert_eq!(reader.read().unwrap(), Some(Packet::Flush));
    assert_eq!(reader.rest(), b"PACK\0\0\0\x02");
}

#[test]
fn uppercase_lengths_are_read_as_git_reads_them() {
    assert_eq!(
        Reader::new(b"000Ahello\n").read().unwrap(),
        Some(Packet::Data(b"hello\n"))
    );
}

#[test]
fn broken_frames_are_typed_errors_at_their_offset() {
    let cases: [(&[u8], Error); 7] = [
        (
            b"00x1",
            Error::Malformed {
                at: 0,
                reason: "the length \"00x1\" is not four hex digits".into(),
            },
        ),
        (
            b"0003",
            Error::Malformed {
                at: 0,
                reason: "the length 0003 is reserved".into(),
            },
        ),
        (
            b"fff1",
            Error::TooLong {
                at: Some(0),
                len: 65517,
            },
        ),
        (
            b"ffffxxxx",
            Error::TooLong {
                at: Some(0),
                len: 65531,
            },
        ),
        (
            b"00",
            Error::Truncated {
                at: 0,
                needed: 4,
                available: 2,
            },
        ),
        (
            b"0009ab",
            Error::Truncated {
                at: 0,
                needed: 9,
                available: 6,
            },
        ),
        (
            b"0006a\n0000000",
            Error::Truncated {
                at: 10,
                needed: 4,
                available: 3,
            },
        ),
    ];
    for (input, expected) in cases {
        let got: Result<Vec<_>, _> = Reader::new(input).collect();
        assert_eq!(got, Err(expected), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn the_reader_stays_in_front_of_a_broken_packet_and_the_iterator_stops() {
    let mut reader = Reader::new(b"0005a0003");
    assert_eq!(reader.read().unwrap(), Some(Packet::Data(b"a")));
    let err = reader.read().unwrap_err();
    assert!(matches!(err, Error::Malformed { at: 5, .. }));
    assert_eq!(reader.read().unwrap_err(), err);
    assert_eq!(reader.rest(), b"0003");
    let mut iter = Reader::new(b"0003");
    assert!(iter.next().unwrap().is_err());
    assert!(iter.next().is_none());
}

#[test]
fn side_band_splits_at_65515_bytes_per_packet() {
    let data: Vec<u8> = (0..2 * sideband::MAX_DATA_BYTES + 1).map(|i| i as u8).collect();
    let mut out = Vec::new();
    sideband::write(&mut out, Band::Data, &data);
    pkt::flush(&mut out);
    let packets: Vec<_> = Reader::new(&out).map(Result::unwrap).collect();
    assert_eq!(packets.len(), 4);
    assert_eq!(&out[..5], b"fff0\x01");
    assert_eq!(&out[65520..65525], b"fff0\x01");
    assert_eq!(&out[2 * 65520..2 * 65520 + 5], b"0006\x01");
    assert_eq!(out[2 * 65520 + 5], data[2 * sideband::MAX_DATA_BYTES]);
    let got = sideband::demux(&mut Reader::new(&out)).unwrap();
    assert_eq!(got.data, data);
    assert!(got.progress.is_empty());
    let mut out = Vec::new();
    sideband::write(&mut out, Band::Progress, b"");
    assert!(out.is_empty(), "no packet for no data");
}

#[test]
fn side_band_bytes_are_exact() {
    let mut out = Vec::new();
    sideband::write(&mut out, Band::Progress, b"Total 3\n");
    sideband::write(&mut out, Band::Data, b"PACK");
    sideband::write(&mut out, Band::Error, b"oops\n");
    assert_eq!(out, b"000d\x02Total 3\n0009\x01PACK000a\x03oops\n");
}

#[test]
fn the_demuxer_reports_band_3_and_refuses_broken_streams() {
    let mut out = Vec::new();
    sideband::write(&mut out, Band::Data, b"PACK");
    sideband::write(&mut out, Band::Error, b"upload-pack: not our ref\n");
    pkt::flush(&mut out);
    assert_eq!(
        sideband::demux(&mut Reader::new(&out)),
        Err(Error::Remote {
            message: "upload-pack: not our ref".into()
        })
    );
    assert_eq!(
        sideband::demux(&mut Reader::new(b"0006\x04x0000")),
        Err(Error::Malformed {
            at: 0,
            reason: "unknown side-band 4".into()
        })
    );
    assert!(matches!(
        sideband::demux(&mut Reader::new(b"00040000")),
        Err(Error::Malformed { at: 0, .. })
    ));
    assert!(matches!(
        sideband::demux(&mut Reader::new(b"0006\x01x")),
        Err(Error::Unexpected { at: 6, .. })
    ));
    assert!(matches!(
        sideband::demux(&mut Reader::new(b"0006\x01x0001")),
        Err(Error::Unexpected { at: 6, .. })
    ));
}

fn packet() -> impl Strategy<Value = (u8, Vec<u8>)> {
    prop_oneof![
        (Just(0u8), Just(Vec::new())),
        (Just(1u8), Just(Vec::new())),
        (Just(2u8), Just(Vec::new())),
        (Just(3u8), proptest::collection::vec(any::<u8>(), 0..300)),
    ]
}

proptest! {
    #[test]
    fn packets_round_trip(packets in proptest::collection::vec(packet(), 0..20), rest in proptest::collection::vec(any::<u8>(), 0..10)) {
        let mut out = Vec::new();
        for (kind, data) in &packets {
            match kind {
                0 => pkt::flush(&mut out),
                1 => pkt::delim(&mut out),
                2 => pkt::response_end(&mut out),
                _ => pkt::line(&mut out, data).unwrap(),
            }
        }
        let mut reader = Reader::new(&out);
        for (kind, data) in &packets {
            let expected = match kind {
                0 => Packet::Flush,
                1 => Packet::Delim,
                2 => Packet::ResponseEnd,
                _ => Packet::Data(data),
            };
            prop_assert_eq!(reader.read().unwrap(), Some(expected));
        }
        prop_assert_eq!(reader.read().unwrap(), None);
        let mut with_rest = out.clone();
        pkt::flush(&mut with_rest);
        with_rest.extend_from_slice(&rest);
        let mut reader = Reader::new(&with_rest);
        for _ in &packets {
            reader.read().unwrap();
        }
        prop_assert_eq!(reader.read().unwrap(), Some(Packet::Flush));
        prop_assert_eq!(reader.rest(), &rest[..]);
    }

    #[test]
    fn side_band_round_trips(chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..10)) {
        let mut out = Vec::new();
        let (mut data, mut progress) = (Vec::new(), Vec::new());
        for (is_data, chunk) in &chunks {
            if *is_data {
                sideband::write(&mut out, Band::Data, chunk);
                data.extend_from_slice(chunk);
            } else {
                sideband::write(&mut out, Band::Progress, chunk);
                progress.extend_from_slice(chunk);
            }
        }
        pkt::flush(&mut out);
        let got = sideband::demux(&mut Reader::new(&out)).unwrap();
        prop_assert_eq!(got.data, data);
        prop_assert_eq!(got.progress, progress);
    }

    #[test]
    fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for packet in Reader::new(&bytes) {
            if packet.is_err() {
                break;
            }
        }
        let _ = sideband::demux(&mut Reader::new(&bytes));
    }

    #[test]
    fn framed_hex_lengths_read_without_panicking(len in 0usize..0x10000, tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = format!("{len:04x}").into_bytes();
        bytes.extend_from_slice(&tail);
        let _ = Reader::new(&bytes).read();
    }
}
