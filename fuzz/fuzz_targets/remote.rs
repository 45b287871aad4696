//! The wire protocol: arbitrary bytes through every decoder of `remote`, the first byte
//! choosing which. Every input gives a value or an error, never a panic; a request or a
//! push that parses, written again, parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapgit_core::remote::{
    Limits,
    http::Service,
    pkt::Reader,
    sideband,
    v0::{self, Advertisement, PushRequest, Report},
    v2::{self, FetchResponse, Features, Request},
};

/// Small enough that the fuzzer reaches the limits.
const LIMITS: Limits = Limits {
    max_lines: 64,
    max_bytes: 4096,
};

fn every_feature() -> Features {
    Features {
        unborn: true,
        shallow: true,
        filter: true,
        ref_in_want: true,
        sideband_all: true,
        wait_for_done: true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => {
            for packet in Reader::new(rest) {
                if packet.is_err() {
                    break;
                }
            }
            let _ = sideband::demux(&mut Reader::new(rest));
        }
        1 => {
            if let Ok(Some(request)) = Request::from_bytes(rest, &every_feature(), &LIMITS) {
                let mut out = Vec::new();
                if request.write_to(&mut out).is_ok() {
                    let again = Request::from_bytes(&out, &every_feature(), &Limits::default());
                    assert_eq!(again, Ok(Some(request)), "a request written again reads the same");
                }
            }
        }
        2 => {
            let _ = v2::parse_advertisement(rest, &LIMITS);
        }
        3 => {
            let _ = v2::parse_refs(rest, &LIMITS);
        }
        4 => {
            let _ = FetchResponse::from_bytes(rest, false, &LIMITS);
        }
        5 => {
            let _ = FetchResponse::from_bytes(rest, true, &LIMITS);
        }
        6 => {
            let _ = Advertisement::from_bytes(rest, &LIMITS);
            let _ = Service::ReceivePack.strip_header(rest);
        }
        7 => {
            if let Ok(push) = PushRequest::from_bytes(rest, &v0::capabilities(), &LIMITS) {
                let mut out = Vec::new();
                if push.write_to(&mut out).is_ok() {
                    let again = PushRequest::from_bytes(&out, &v0::capabilities(), &Limits::default());
                    assert_eq!(again, Ok(push), "a push written again reads the same");
                }
            }
        }
        8 => {
            let _ = Report::from_bytes(rest, false, &LIMITS);
        }
        _ => {
            let _ = Report::from_bytes(rest, true, &LIMITS);
        }
    }
});
