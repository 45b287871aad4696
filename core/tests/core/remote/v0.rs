//! receive-pack over v0: gitprotocol-pack's example exchange byte for byte, round trips,
//! and hostile pushes and reports.

use bstr::BString;
use proptest::prelude::*;
use snapgit_core::{
    ObjectId,
    remote::{
        AGENT, Capabilities, Error, Limits,
        http::Service,
        pkt,
        sideband::{self, Band},
        v0::{self, AdvertisedRef, Advertisement, Command, PushRequest, RefStatus, Report, Status},
    },
};

use super::{Check, id, lines};

fn hex(text: &str) -> ObjectId {
    ObjectId::from_hex(text.as_bytes()).unwrap()
}

fn zero() -> ObjectId {
    ObjectId::null(snapgit_core::HashKind::Sha1)
}

const PACK: &[u8] = b"PACK\0\0\0\x02\0\0\0\0";

#[test]
fn the_documents_advertisement_is_byte_exact() {
    // gitprotocol-pack, "Report Status": the example exchange.
    let expected: &[u8] =
        b"006274730d410fcb6603ace96f1dc55ea6196122532d refs/heads/local\0report-status delete-refs ofs-delta\n\
        003e7d1665144a3a975c05f1f43902ddaf084e784dbe refs/heads/debug\n\
        003f74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/master\n\
        003d74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/team\n\
        0000";
    let r = |id: &str, name: &str| AdvertisedRef {
        name: name.into(),
        id: hex(id),
        peeled: None,
    };
    let ad = Advertisement {
        refs: vec![
            r("74730d410fcb6603ace96f1dc55ea6196122532d", "refs/heads/local"),
            r("7d1665144a3a975c05f1f43902ddaf084e784dbe", "refs/heads/debug"),
            r("74730d410fcb6603ace96f1dc55ea6196122532d", "refs/heads/master"),
            r("74730d410fcb6603ace96f1dc55ea6196122532d", "refs/heads/team"),
        ],
        capabilities: Capabilities::new(["report-status", "delete-refs", "ofs-delta"]),
        shallow: vec![],
    };
    let mut out = Vec::new();
    ad.write_to(&mut out).unwrap();
    assert_eq!(out, expected);
    assert_eq!(Advertisement::from_bytes(expected, &Limits::default()).unwrap(), ad);
}

#[test]
fn the_documents_push_and_report_are_byte_exact() {
    let mut expected =
        b"00677d1665144a3a975c05f1f43902ddaf084e784dbe 74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/debug\n\
        006874730d410fcb6603ace96f1dc55ea6196122532d 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a refs/heads/master\n\
        0000"
            .to_vec();
    expected.extend_from_slice(PACK);
    let push = PushRequest {
        commands: vec![
            Command {
                old: hex("7d1665144a3a975c05f1f43902ddaf084e784dbe"),
                new: hex("74730d410fcb6603ace96f1dc55ea6196122532d"),
                name: "refs/heads/debug".into(),
            },
            Command {
                old: hex("74730d410fcb6603ace96f1dc55ea6196122532d"),
                new: hex("5a3f6be755bbb7deae50065988cbfa1ffa9ab68a"),
                name: "refs/heads/master".into(),
            },
        ],
        pack: PACK,
        ..PushRequest::default()
    };
    let mut out = Vec::new();
    push.write_to(&mut out).unwrap();
    assert_eq!(out, expected);
    let advertised = Capabilities::new(["report-status", "delete-refs", "ofs-delta"]);
    assert_eq!(
        PushRequest::from_bytes(&out, &advertised, &Limits::default()).unwrap(),
        push
    );

    let report = Report {
        unpack: Status::Ok,
        refs: vec![
            RefStatus {
                name: "refs/heads/debug".into(),
                status: Status::Ok,
            },
            RefStatus {
                name: "refs/heads/master".into(),
                status: Status::Failed("non-fast-forward".into()),
            },
        ],
    };
    let mut out = Vec::new();
    report.write_to(&mut out, false).unwrap();
    assert_eq!(
        out,
        b"000eunpack ok\n0018ok refs/heads/debug\n002ang refs/heads/master non-fast-forward\n0000"
    );
    assert_eq!(
        Report::from_bytes(&out, false, &Limits::default()).unwrap(),
        (report, vec![])
    );
}

#[test]
fn an_empty_repository_advertises_capabilities_on_a_zero_id_line() {
    let ad = Advertisement {
        capabilities: v0::capabilities(),
        ..Advertisement::default()
    };
    let mut out = Vec::new();
    Service::ReceivePack.write_header(&mut out);
    ad.write_to(&mut out).unwrap();
    let caps =
        format!("report-status delete-refs side-band-64k quiet ofs-delta no-thin object-format=sha1 agent={AGENT}");
    let mut expected = b"001f# service=git-receive-pack\n0000".to_vec();
    expected.extend(lines(&[&format!("{} capabilities^{{}}\0{caps}\n", zero())], "0000"));
    assert_eq!(out, expected);
    let body = Service::ReceivePack.strip_header(&out).unwrap();
    assert_eq!(Advertisement::from_bytes(body, &Limits::default()).unwrap(), ad);
}

#[test]
fn a_client_reads_peeled_tags_shallows_and_skips_have_lines() {
    let body = lines(
        &[
            "version 1\n",
            &format!("{} HEAD\0multi_ack side-band-64k symref=HEAD:refs/heads/main\n", id(1)),
            &format!("{} refs/heads/main\n", id(1)),
            &format!("{} refs/tags/v1\n", id(2)),
            &format!("{} refs/tags/v1^{{}}\n", id(1)),
            &format!("{} .have\n", id(9)),
            &format!("shallow {}\n", id(3)),
        ],
        "0000",
    );
    let ad = Advertisement::from_bytes(&body, &Limits::default()).unwrap();
    assert_eq!(ad.refs.len(), 3);
    assert_eq!(ad.refs[2].peeled, Some(id(1)));
    assert_eq!(ad.shallow, vec![id(3)]);
    assert_eq!(ad.capabilities.value("symref"), Some("HEAD:refs/heads/main"));
    let mut out = Vec::new();
    ad.write_to(&mut out).unwrap();
    assert_eq!(Advertisement::from_bytes(&out, &Limits::default()).unwrap(), ad);
}

#[test]
fn broken_advertisements_are_typed_errors() {
    let limits = Limits::default();
    let peeled_alone = lines(
        &[
            &format!("{} refs/heads/main\0ofs-delta\n", id(1)),
            &format!("{} refs/tags/v1^{{}}\n", id(1)),
        ],
        "0000",
    );
    assert!(matches!(
        Advertisement::from_bytes(&peeled_alone, &limits),
        Err(Error::Malformed { .. })
    ));
    let bad_id = lines(&["1234 refs/heads/main\0ofs-delta\n"], "0000");
    assert!(matches!(
        Advertisement::from_bytes(&bad_id, &limits),
        Err(Error::InvalidId { at: 0, .. })
    ));
    let bad_name = lines(&[&format!("{} refs/heads/x:y\0\n", id(1))], "0000");
    assert!(matches!(
        Advertisement::from_bytes(&bad_name, &limits),
        Err(Error::InvalidRefName { .. })
    ));
    let no_flush = lines(&[&format!("{} refs/heads/main\0\n", id(1))], "");
    assert!(matches!(
        Advertisement::from_bytes(&no_flush, &limits),
        Err(Error::Unexpected { .. })
    ));
    let err = lines(&["ERR repository not found"], "");
    assert_eq!(
        Advertisement::from_bytes(&err, &limits),
        Err(Error::Remote {
            message: "repository not found".into()
        })
    );
    let ad = Advertisement {
        capabilities: Capabilities::new(["agent=a b"]),
        ..Advertisement::default()
    };
    assert!(matches!(
        ad.write_to(&mut Vec::new()),
        Err(Error::InvalidValue { what: "capability", .. })
    ));
}

fn create(name: &str) -> Command {
    Command {
        old: zero(),
        new: id(1),
        name: name.into(),
    }
}

fn delete(name: &str) -> Command {
    Command {
        old: id(1),
        new: zero(),
        name: name.into(),
    }
}

fn push_bytes(commands: &[&str], trailer: &[u8]) -> Vec<u8> {
    let mut body = lines(commands, "0000");
    body.extend_from_slice(trailer);
    body
}

#[test]
fn a_push_with_capabilities_shallows_and_options_round_trips() {
    let mut advertised = v0::capabilities();
    advertised = Capabilities::new(advertised.iter().chain(["push-options", "atomic"]));
    let push = PushRequest {
        shallow: vec![id(7)],
        commands: vec![create("refs/heads/new"), delete("refs/heads/old")],
        capabilities: Capabilities::new(["report-status", "side-band-64k", "push-options", "agent=git/2.47.3"]),
        push_options: vec!["ci.skip".into(), "".into()],
        pack: PACK,
    };
    let mut out = Vec::new();
    push.write_to(&mut out).unwrap();
    let got = PushRequest::from_bytes(&out, &advertised, &Limits::default()).unwrap();
    assert_eq!(got, push);
    assert!(got.commands[0].is_create() && got.commands[1].is_delete());
}

#[test]
fn git_http_documents_leading_space_before_capabilities_is_read() {
    // gitprotocol-http, "Smart Service git-receive-pack".
    let body = push_bytes(
        &[
            "0a53e9ddeaddad63ad106860237bbf53411d11a7 441b40d833fdfa93eb2908e52742248faf0ee993 refs/heads/maint\0 report-status",
        ],
        PACK,
    );
    let push = PushRequest::from_bytes(&body, &v0::capabilities(), &Limits::default()).unwrap();
    assert_eq!(push.capabilities, Capabilities::new(["report-status"]));
    assert_eq!(push.commands[0].name, "refs/heads/maint");
}

#[test]
fn a_push_that_only_deletes_carries_no_pack() {
    let push = PushRequest {
        commands: vec![delete("refs/heads/old")],
        capabilities: Capabilities::new(["report-status"]),
        ..PushRequest::default()
    };
    let mut out = Vec::new();
    push.write_to(&mut out).unwrap();
    let got = PushRequest::from_bytes(&out, &v0::capabilities(), &Limits::default()).unwrap();
    assert_eq!(got, push);
    out.extend_from_slice(PACK);
    assert!(matches!(
        PushRequest::from_bytes(&out, &v0::capabilities(), &Limits::default()),
        Err(Error::Unexpected { .. })
    ));
    let with_pack = PushRequest { pack: PACK, ..push };
    assert!(matches!(
        with_pack.write_to(&mut Vec::new()),
        Err(Error::InvalidValue { what: "pack", .. })
    ));
}

#[test]
fn hostile_pushes_are_typed_errors() {
    let limits = Limits::default();
    let advertised = v0::capabilities();
    let z = zero();
    let one = id(1);
    let cases: Vec<(Vec<u8>, Check)> = vec![
        // A capability not advertised.
        (
            push_bytes(&[&format!("{z} {one} refs/heads/a\0report-status atomic")], PACK),
            |e| matches!(e, Error::UnknownCapability { capability } if capability == "atomic"),
        ),
        // Both side-bands.
        (
            push_bytes(&[&format!("{z} {one} refs/heads/a\0side-band side-band-64k")], PACK),
            |e| matches!(e, Error::UnknownCapability { .. } | Error::Malformed { .. }),
        ),
        // Zero ids on both sides.
        (push_bytes(&[&format!("{z} {z} refs/heads/a")], b""), |e| {
            matches!(e, Error::Malformed { .. })
        }),
        // Not under refs/, or not a valid name.
        (push_bytes(&[&format!("{z} {one} HEAD")], PACK), |e| {
            matches!(e, Error::InvalidRefName { .. })
        }),
        (push_bytes(&[&format!("{z} {one} refs/heads/a..b")], PACK), |e| {
            matches!(e, Error::InvalidRefName { .. })
        }),
        (push_bytes(&[&format!("{z} {one} refs/heads/a b")], PACK), |e| {
            matches!(e, Error::InvalidRefName { .. })
        }),
        // Not UTF-8 (a server would update another ref if it read the name lossily).
        (
            {
                let mut body = push_bytes(&[&format!("{z} {one} refs/heads/caf~")], PACK);
                let at = body.iter().position(|&b| b == b'~').expect("the placeholder");
                body[at] = 0xe9;
                body
            },
            |e| matches!(e, Error::InvalidRefName { reason, .. } if reason.contains("UTF-8")),
        ),
        // The same ref twice.
        (
            push_bytes(
                &[&format!("{z} {one} refs/heads/a"), &format!("{z} {one} refs/heads/a")],
                PACK,
            ),
            |e| matches!(e, Error::Malformed { at: 98, .. }),
        ),
        // A bad id, a missing field.
        (push_bytes(&[&format!("{z} 1234 refs/heads/a")], PACK), |e| {
            matches!(e, Error::InvalidId { .. })
        }),
        (push_bytes(&[&format!("{z} {one}")], PACK), |e| {
            matches!(e, Error::Malformed { .. })
        }),
        // No pack, or something else than a pack, after a create.
        (push_bytes(&[&format!("{z} {one} refs/heads/a")], b""), |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (push_bytes(&[&format!("{z} {one} refs/heads/a")], b"0009done\n"), |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        // No flush after the commands.
        (lines(&[&format!("{z} {one} refs/heads/a")], ""), |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        // A push certificate.
        (
            push_bytes(&["push-cert\0report-status", "certificate version 0.1"], PACK),
            |e| matches!(e, Error::Malformed { .. }),
        ),
        // Push options, which were not advertised.
        (
            lines(&[&format!("{z} {one} refs/heads/a\0push-options"), ""], "0000o"),
            |e| matches!(e, Error::UnknownCapability { .. }),
        ),
    ];
    for (input, check) in cases {
        let got = PushRequest::from_bytes(&input, &advertised, &limits);
        assert!(
            got.as_ref().is_err_and(check),
            "{:?}: {got:?}",
            String::from_utf8_lossy(&input)
        );
    }
    // A push without commands.
    assert!(matches!(
        PushRequest::from_bytes(b"0000", &advertised, &limits),
        Err(Error::Unexpected { at: 0, .. })
    ));
    assert!(matches!(
        PushRequest::default().write_to(&mut Vec::new()),
        Err(Error::InvalidValue { what: "push", .. })
    ));
    // A delete needs delete-refs advertised.
    let body = push_bytes(&[&format!("{one} {z} refs/heads/a")], b"");
    assert!(matches!(
        PushRequest::from_bytes(&body, &Capabilities::new(["report-status"]), &limits),
        Err(Error::Malformed { .. })
    ));
    // Push options end with their own flush.
    let options = Capabilities::new(["push-options"]);
    let body = [
        lines(&[&format!("{z} {one} refs/heads/a\0push-options")], "0000"),
        lines(&["opt"], ""),
    ]
    .concat();
    assert!(matches!(
        PushRequest::from_bytes(&body, &options, &limits),
        Err(Error::Unexpected { .. })
    ));
}

#[test]
fn pushes_are_bounded() {
    let commands: Vec<String> = (0..20)
        .map(|n| format!("{} {} refs/heads/b{n}", zero(), id(1)))
        .collect();
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let body = push_bytes(&commands, PACK);
    let limits = Limits {
        max_lines: 10,
        ..Limits::default()
    };
    assert_eq!(
        PushRequest::from_bytes(&body, &v0::capabilities(), &limits),
        Err(Error::LimitExceeded {
            what: "lines",
            limit: 10
        })
    );
    // The pack is not counted against the bytes.
    let mut big = push_bytes(&commands[..1], PACK);
    big.extend(std::iter::repeat_n(0u8, 10_000));
    let limits = Limits {
        max_bytes: 200,
        ..Limits::default()
    };
    assert!(PushRequest::from_bytes(&big, &v0::capabilities(), &limits).is_ok());
}

#[test]
fn a_report_in_side_band_is_band_1_data_then_a_flush() {
    let report = Report {
        unpack: Status::Failed("index-pack abnormal exit".into()),
        refs: vec![RefStatus {
            name: "refs/heads/main".into(),
            status: Status::Failed("unpacker error".into()),
        }],
    };
    let mut plain = Vec::new();
    report.write_to(&mut plain, false).unwrap();
    let mut out = Vec::new();
    sideband::write(&mut out, Band::Progress, b"Resolving deltas: 100%\n");
    report.write_to(&mut out, true).unwrap();
    let mut expected = Vec::new();
    sideband::write(&mut expected, Band::Progress, b"Resolving deltas: 100%\n");
    sideband::write(&mut expected, Band::Data, &plain);
    pkt::flush(&mut expected);
    assert_eq!(out, expected);
    assert_eq!(
        Report::from_bytes(&out, true, &Limits::default()).unwrap(),
        (report, b"Resolving deltas: 100%\n".to_vec())
    );
}

#[test]
fn broken_reports_are_typed_errors() {
    let limits = Limits::default();
    let cases: Vec<(Vec<u8>, bool, Check)> = vec![
        (lines(&["ok refs/heads/main"], "0000"), false, |e| {
            matches!(e, Error::Unexpected { at: 0, .. })
        }),
        (lines(&["unpack "], "0000"), false, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["unpack ok", "ng refs/heads/main"], "0000"), false, |e| {
            matches!(e, Error::Unexpected { at: 13, .. })
        }),
        (
            lines(
                &["unpack ok", "ok refs/heads/main", "option refname refs/heads/x"],
                "0000",
            ),
            false,
            |e| matches!(e, Error::Unexpected { .. }),
        ),
        (lines(&["unpack ok", "ok refs/heads/a..b"], "0000"), false, |e| {
            matches!(e, Error::InvalidRefName { .. })
        }),
        (lines(&["unpack ok"], ""), false, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["unpack ok"], "00000000"), false, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (
            lines(&["\u{3}hook declined\n"], "0000"),
            true,
            |e| matches!(e, Error::Remote { message } if message == "hook declined"),
        ),
        (lines(&["\u{1}000eunpack ok\n"], ""), true, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["\u{1}000eunpack ok\n"], "0000"), true, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["\u{1}000eunpack ok\n0000"], "00000000"), true, |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["\u{1}00"], "0000"), true, |e| {
            matches!(e, Error::Truncated { .. })
        }),
    ];
    for (input, sideband, check) in cases {
        let got = Report::from_bytes(&input, sideband, &limits);
        assert!(
            got.as_ref().is_err_and(check),
            "{:?}: {got:?}",
            String::from_utf8_lossy(&input)
        );
    }
    let bad = Report {
        unpack: Status::Failed("ok".into()),
        refs: vec![],
    };
    assert!(matches!(
        bad.write_to(&mut Vec::new(), false),
        Err(Error::InvalidValue { .. })
    ));
    let bad = Report {
        unpack: Status::Ok,
        refs: vec![RefStatus {
            name: "refs/heads/main".into(),
            status: Status::Failed("two\nlines".into()),
        }],
    };
    assert!(matches!(
        bad.write_to(&mut Vec::new(), true),
        Err(Error::InvalidValue { .. })
    ));
}

fn ref_names() -> impl Strategy<Value = Vec<BString>> {
    proptest::collection::btree_set("refs/[a-z]{1,6}(/[a-z0-9_-]{1,6}){0,2}", 1..6)
        .prop_map(|names| names.into_iter().map(BString::from).collect())
}

proptest! {
    #[test]
    fn pushes_round_trip(
        names in ref_names(),
        sides in proptest::collection::vec((proptest::option::of(1..=255u8), proptest::option::of(1..=255u8)), 6),
        shallow in proptest::collection::vec(any::<u8>(), 0..3),
        options in proptest::option::of(proptest::collection::vec("[ -~]{0,20}", 0..3)),
    ) {
        let commands: Vec<Command> = names
            .into_iter()
            .zip(sides)
            .map(|(name, (old, new))| Command {
                old: old.map_or(zero(), id),
                new: new.or(old.is_none().then_some(1)).map_or(zero(), id),
                name,
            })
            .collect();
        let mut caps = vec!["report-status".to_owned(), "side-band-64k".to_owned()];
        if options.is_some() {
            caps.push("push-options".into());
        }
        let needs_pack = commands.iter().any(|c| !c.is_delete());
        let push = PushRequest {
            shallow: shallow.into_iter().map(id).collect(),
            commands,
            capabilities: Capabilities::new(caps),
            push_options: options.unwrap_or_default(),
            pack: if needs_pack { PACK } else { b"" },
        };
        let mut out = Vec::new();
        push.write_to(&mut out).unwrap();
        let advertised = Capabilities::new(v0::capabilities().iter().chain(["push-options"]));
        let got = PushRequest::from_bytes(&out, &advertised, &Limits::default()).unwrap();
        prop_assert_eq!(got, push);
    }

    #[test]
    fn reports_round_trip(names in ref_names(), reasons in proptest::collection::vec(proptest::option::of("[ -~]{1,30}"), 6), unpack in proptest::option::of("[a-z ]{1,20}"), sideband: bool) {
        let report = Report {
            unpack: match unpack {
                Some(reason) if reason != "ok" => Status::Failed(reason),
                _ => Status::Ok,
            },
            refs: names
                .into_iter()
                .zip(reasons)
                .map(|(name, reason)| RefStatus { name, status: reason.map_or(Status::Ok, Status::Failed) })
                .collect(),
        };
        let mut out = Vec::new();
        report.write_to(&mut out, sideband).unwrap();
        prop_assert_eq!(Report::from_bytes(&out, sideband, &Limits::default()).unwrap(), (report, vec![]));
    }

    #[test]
    fn advertisements_round_trip(names in ref_names(), peeled in proptest::collection::vec(proptest::option::of(any::<u8>()), 6), shallow in proptest::collection::vec(any::<u8>(), 0..3)) {
        let ad = Advertisement {
            refs: names
                .into_iter()
                .zip(peeled)
                .enumerate()
                .map(|(n, (name, peeled))| AdvertisedRef { name, id: id(n as u8), peeled: peeled.map(id) })
                .collect(),
            capabilities: v0::capabilities(),
            shallow: shallow.into_iter().map(id).collect(),
        };
        let mut out = Vec::new();
        ad.write_to(&mut out).unwrap();
        prop_assert_eq!(Advertisement::from_bytes(&out, &Limits::default()).unwrap(), ad);
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), sideband: bool) {
        let _ = Advertisement::from_bytes(&bytes, &Limits::default());
        let _ = PushRequest::from_bytes(&bytes, &v0::capabilities(), &Limits::default());
        let _ = Report::from_bytes(&bytes, sideband, &Limits::default());
        let _ = Service::ReceivePack.strip_header(&bytes);
    }
}
