//! Protocol v2: the advertisement, requests and responses byte for byte as
//! gitprotocol-v2 writes them, round trips, and hostile requests and responses.

use bstr::BString;
use proptest::prelude::*;
use snapgit_core::{
    HashKind,
    remote::{
        AGENT, Error, Limits,
        sideband::{self, Band},
        v2::{
            self, Command, Deepen, Features, Fetch, FetchResponse, Filter, LsRefs, PackResponse, Ref, Request,
            ShallowInfo, WantedRef,
        },
    },
};

use super::{Check, id, line, lines};

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

fn parse(body: &[u8]) -> Result<Option<Request>, Error> {
    Request::from_bytes(body, &Features::default(), &Limits::default())
}

/// A fetch request with these argument lines.
fn fetch_request(args: &[&str]) -> Vec<u8> {
    let mut body = lines(&["command=fetch", "object-format=sha1"], "0001");
    body.extend(lines(args, "0000"));
    body
}

fn fetch_of(body: &[u8]) -> Result<Fetch, Error> {
    match parse(body)? {
        Some(Request {
            command: Command::Fetch(fetch),
            ..
        }) => Ok(fetch),
        other => panic!("not a fetch: {other:?}"),
    }
}

#[test]
fn the_advertisement_is_byte_exact() {
    let mut out = Vec::new();
    v2::advertise(&mut out, &Features::default());
    let agent = line(&format!("agent={AGENT}\n"));
    let mut expected = b"000eversion 2\n".to_vec();
    expected.extend(agent);
    expected.extend(b"0013ls-refs=unborn\n0019fetch=shallow filter\n0012server-option\n0017object-format=sha1\n0000");
    assert_eq!(out, expected);

    let mut out = Vec::new();
    v2::advertise(&mut out, &every_feature());
    let caps = v2::parse_advertisement(&out, &Limits::default()).unwrap();
    assert_eq!(
        caps.value("fetch"),
        Some("shallow wait-for-done filter ref-in-want sideband-all")
    );

    let none = Features {
        unborn: false,
        shallow: false,
        filter: false,
        ..Features::default()
    };
    let mut out = Vec::new();
    v2::advertise(&mut out, &none);
    let caps = v2::parse_advertisement(&out, &Limits::default()).unwrap();
    assert!(caps.contains("fetch") && caps.value("fetch").is_none());
    assert!(caps.contains("ls-refs") && !caps.supports("ls-refs", "unborn"));
}

#[test]
fn a_client_reads_the_advertisement_with_or_without_a_service_header() {
    let mut out = Vec::new();
    v2::advertise(&mut out, &Features::default());
    let caps = v2::parse_advertisement(&out, &Limits::default()).unwrap();
    assert_eq!(caps.value("agent"), Some(AGENT));
    assert!(caps.supports("ls-refs", "unborn"));
    assert!(caps.supports("fetch", "shallow") && caps.supports("fetch", "filter"));
    assert!(!caps.supports("fetch", "sideband-all"));
    assert_eq!(caps.value("object-format"), Some("sha1"));

    let mut with_header = lines(&["# service=git-upload-pack\n"], "0000");
    with_header.extend(&out);
    assert_eq!(v2::parse_advertisement(&with_header, &Limits::default()).unwrap(), caps);
}

#[test]
fn a_v0_advertisement_or_a_broken_one_is_refused() {
    let v0 = lines(
        &["0000000000000000000000000000000000000000 capabilities^{}\0report-status\n"],
        "0000",
    );
    assert!(matches!(
        v2::parse_advertisement(&v0, &Limits::default()),
        Err(Error::UnsupportedVersion {
            expected: "version 2",
            ..
        })
    ));
    let receive = lines(&["# service=git-receive-pack\n"], "0000");
    assert!(matches!(
        v2::parse_advertisement(&receive, &Limits::default()),
        Err(Error::Malformed { at: 0, .. })
    ));
    let bad_key = lines(&["version 2\n", "fe tch=x\n"], "0000");
    assert!(matches!(
        v2::parse_advertisement(&bad_key, &Limits::default()),
        Err(Error::Malformed { at: 14, .. })
    ));
    let no_flush = lines(&["version 2\n", "fetch\n"], "");
    assert!(matches!(
        v2::parse_advertisement(&no_flush, &Limits::default()),
        Err(Error::Unexpected { at: 24, .. })
    ));
    let err = lines(&["ERR access denied\n"], "");
    assert_eq!(
        v2::parse_advertisement(&err, &Limits::default()),
        Err(Error::Remote {
            message: "access denied".into()
        })
    );
}

#[test]
fn an_ls_refs_request_is_what_git_sends() {
    let request = Request {
        agent: Some("git/2.47.3".into()),
        object_format: Some(HashKind::Sha1),
        server_options: vec![],
        command: Command::LsRefs(LsRefs {
            symrefs: true,
            peel: true,
            unborn: true,
            prefixes: vec!["HEAD".into(), "refs/heads/".into()],
        }),
    };
    let mut out = Vec::new();
    request.write_to(&mut out).unwrap();
    let expected = b"0014command=ls-refs\n\
        0015agent=git/2.47.3\n\
        0017object-format=sha1\n\
        0001\
        0009peel\n\
        000csymrefs\n\
        000bunborn\n\
        0014ref-prefix HEAD\n\
        001bref-prefix refs/heads/\n\
        0000";
    assert_eq!(out, expected);
    assert_eq!(parse(&out).unwrap(), Some(request));
}

#[test]
fn a_fetch_request_is_what_git_sends() {
    let request = Request {
        agent: None,
        object_format: None,
        server_options: vec!["trace".into()],
        command: Command::Fetch(Fetch {
            wants: vec![id(0xaa)],
            haves: vec![id(0xbb)],
            ofs_delta: true,
            thin_pack: true,
            deepen: Some(Deepen::Depth {
                depth: 1,
                relative: false,
            }),
            filter: Some(Filter::BlobLimit(1 << 20)),
            done: true,
            ..Fetch::default()
        }),
    };
    let mut out = Vec::new();
    request.write_to(&mut out).unwrap();
    let want = format!("0032want {}\n", id(0xaa));
    let have = format!("0032have {}\n", id(0xbb));
    let expected = [
        "0012command=fetch\n",
        "0018server-option=trace\n",
        "0001",
        "000ethin-pack\n",
        "000eofs-delta\n",
        "000ddeepen 1\n",
        "001efilter blob:limit=1048576\n",
        &want,
        &have,
        "0009done\n",
        "0000",
    ]
    .concat();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    assert_eq!(parse(&out).unwrap(), Some(request));
}

#[test]
fn lines_without_newlines_and_uppercase_ids_are_read_as_git_reads_them() {
    let want = format!("want {}", id(0xab).to_string().to_uppercase());
    let body = fetch_request(&[&want, "done"]);
    let fetch = fetch_of(&body).unwrap();
    assert_eq!(fetch.wants, vec![id(0xab)]);
    assert!(fetch.done);
}

#[test]
fn a_request_without_arguments_and_the_empty_request() {
    let body = lines(&["command=ls-refs\n"], "0000");
    assert_eq!(parse(&body).unwrap(), {
        let mut r = Request::new(Command::LsRefs(LsRefs::default()));
        r.agent = None;
        r.object_format = None;
        Some(r)
    });
    assert_eq!(parse(b"0000").unwrap(), None);
    assert!(matches!(parse(b"00000000"), Err(Error::Unexpected { at: 4, .. })));
}

#[test]
fn shallow_fetches_parse_to_one_deepen() {
    let ids = |n| format!("shallow {}", id(n));
    let fetch = fetch_of(&fetch_request(&[&ids(1), "deepen 3", "deepen-relative"])).unwrap();
    assert_eq!(fetch.shallows, vec![id(1)]);
    assert_eq!(
        fetch.deepen,
        Some(Deepen::Depth {
            depth: 3,
            relative: true
        })
    );
    let fetch = fetch_of(&fetch_request(&["deepen 2147483647"])).unwrap();
    assert_eq!(
        fetch.deepen,
        Some(Deepen::Depth {
            depth: v2::UNSHALLOW_DEPTH,
            relative: false
        })
    );
    let fetch = fetch_of(&fetch_request(&[
        "deepen-since 1700000000",
        "deepen-not refs/heads/old",
        "deepen-not v1",
    ]))
    .unwrap();
    assert_eq!(
        fetch.deepen,
        Some(Deepen::Cut {
            since: Some(1_700_000_000),
            not: vec!["refs/heads/old".into(), "v1".into()]
        })
    );
}

#[test]
fn bad_deepens_are_refused() {
    for (args, at) in [
        (&["deepen 0"][..], 43),
        (&["deepen -1"], 43),
        (&["deepen 2147483648"], 43),
        (&["deepen 0x10"], 43),
        (&["deepen-since soon"], 43),
        (&["deepen 1", "deepen-since 5"], 43),
        (&["deepen-not v1", "deepen 1"], 60),
        (&["deepen-relative"], 43),
        (&["deepen-since 5", "deepen-relative"], 61),
    ] {
        let got = fetch_of(&fetch_request(args));
        assert!(
            matches!(got, Err(Error::Malformed { at: a, .. }) if a == at),
            "{args:?}: {got:?}"
        );
    }
}

#[test]
fn filters_are_the_three_served_and_others_are_refused_by_name() {
    for (spec, filter) in [
        ("blob:none", Filter::BlobNone),
        ("blob:limit=0", Filter::BlobLimit(0)),
        ("blob:limit=1k", Filter::BlobLimit(1024)),
        ("blob:limit=2m", Filter::BlobLimit(2 << 20)),
        ("tree:0", Filter::TreeDepth(0)),
        ("tree:1", Filter::TreeDepth(1)),
    ] {
        assert_eq!(Filter::from_spec(spec), Ok(filter));
        let fetch = fetch_of(&fetch_request(&[&format!("filter {spec}")])).unwrap();
        assert_eq!(fetch.filter, Some(filter));
    }
    assert_eq!(Filter::BlobLimit(1024).to_string(), "blob:limit=1024");
    for spec in [
        "sparse:oid=main:.sparse",
        "object:type=blob",
        "combine:blob:none+tree:0",
        "blob:limit=",
        "blob:limit=1x",
        "tree:",
        "blob:none ",
    ] {
        let err = fetch_of(&fetch_request(&[&format!("filter {spec}")])).unwrap_err();
        assert_eq!(err, Error::UnsupportedFilter { spec: spec.into() });
    }
    assert!(matches!(
        fetch_of(&fetch_request(&["filter blob:none", "filter tree:0"])),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn unknown_commands_capabilities_and_arguments_are_named() {
    let body = lines(&["command=push\n"], "0000");
    assert_eq!(parse(&body), Err(Error::UnknownCommand { command: "push".into() }));
    let body = lines(&["command=fetch\n", "session-id=1\n"], "0000");
    assert_eq!(
        parse(&body),
        Err(Error::UnknownCapability {
            capability: "session-id=1".into()
        })
    );
    let body = lines(&["command=fetch\n", "object-format=sha256\n"], "0000");
    assert_eq!(
        parse(&body),
        Err(Error::UnsupportedObjectFormat {
            format: "sha256".into()
        })
    );
    assert_eq!(
        fetch_of(&fetch_request(&["frobnicate"])),
        Err(Error::UnknownArgument {
            command: "fetch",
            argument: "frobnicate".into()
        })
    );
    let body = [lines(&["command=ls-refs"], "0001"), lines(&["peeled"], "0000")].concat();
    assert_eq!(
        parse(&body),
        Err(Error::UnknownArgument {
            command: "ls-refs",
            argument: "peeled".into()
        })
    );
    // Features the server did not offer are unknown arguments too.
    for arg in [
        "sideband-all",
        "wait-for-done",
        "want-ref refs/heads/main",
        "packfile-uris https",
        "done now",
    ] {
        assert!(
            matches!(fetch_of(&fetch_request(&[arg])), Err(Error::UnknownArgument { .. })),
            "{arg}"
        );
    }
    let body = [lines(&["command=ls-refs"], "0001"), lines(&["unborn"], "0000")].concat();
    let features = Features {
        unborn: false,
        ..Features::default()
    };
    assert!(matches!(
        Request::from_bytes(&body, &features, &Limits::default()),
        Err(Error::UnknownArgument { .. })
    ));
    let features = Features {
        shallow: false,
        filter: false,
        ..Features::default()
    };
    for arg in [
        "deepen 1",
        "shallow 0101010101010101010101010101010101010101",
        "filter blob:none",
    ] {
        assert!(matches!(
            Request::from_bytes(&fetch_request(&[arg]), &features, &Limits::default()),
            Err(Error::UnknownArgument { .. })
        ));
    }
}

#[test]
fn broken_requests_are_typed_errors() {
    assert!(matches!(
        fetch_of(&fetch_request(&["want 1234"])),
        Err(Error::InvalidId { at: 43, value }) if value == "1234"
    ));
    let long = format!("have {}00", id(1));
    assert!(matches!(
        fetch_of(&fetch_request(&[&long])),
        Err(Error::InvalidId { .. })
    ));
    let bad_hex = format!("want {}", "g".repeat(40));
    assert!(matches!(
        fetch_of(&fetch_request(&[&bad_hex])),
        Err(Error::InvalidId { .. })
    ));

    let two = lines(&["command=fetch", "command=ls-refs"], "0000");
    assert!(matches!(parse(&two), Err(Error::Malformed { at: 17, .. })));
    let none = lines(&["agent=git/2.47"], "0000");
    assert!(matches!(parse(&none), Err(Error::Malformed { at: 0, .. })));

    let mut no_flush = fetch_request(&["done"]);
    no_flush.truncate(no_flush.len() - 4);
    assert!(matches!(
        fetch_of(&no_flush),
        Err(Error::Unexpected {
            expected: "an argument or a flush-pkt",
            ..
        })
    ));
    let mut trailing = fetch_request(&["done"]);
    trailing.extend_from_slice(b"0009done\n");
    assert!(matches!(fetch_of(&trailing), Err(Error::Unexpected { .. })));
    let mut cut = fetch_request(&["done"]);
    cut.truncate(cut.len() - 6);
    assert!(matches!(fetch_of(&cut), Err(Error::Truncated { .. })));
    let delim_in_args = [lines(&["command=fetch"], "0001"), lines(&["done"], "00010000")].concat();
    assert!(matches!(parse(&delim_in_args), Err(Error::Unexpected { .. })));
    let nul = lines(&["command=fetch", "server-option=a\0b"], "0000");
    assert!(matches!(parse(&nul), Err(Error::Malformed { .. })));
}

#[test]
fn requests_are_bounded() {
    let haves: Vec<String> = (0..10).map(|n| format!("have {}", id(n))).collect();
    let haves: Vec<&str> = haves.iter().map(String::as_str).collect();
    let body = fetch_request(&haves);
    let limits = Limits {
        max_lines: 5,
        ..Limits::default()
    };
    assert_eq!(
        Request::from_bytes(&body, &Features::default(), &limits),
        Err(Error::LimitExceeded {
            what: "lines",
            limit: 5
        })
    );
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        Request::from_bytes(&body, &Features::default(), &limits),
        Err(Error::LimitExceeded {
            what: "bytes",
            limit: 100
        })
    );
    assert!(Request::from_bytes(&body, &Features::default(), &Limits::default()).is_ok());
}

#[test]
fn want_refs_are_checked_and_given_once() {
    let features = every_feature();
    let body = fetch_request(&["want-ref refs/heads/main", "want-ref refs/tags/v1"]);
    let Some(Request {
        command: Command::Fetch(fetch),
        ..
    }) = Request::from_bytes(&body, &features, &Limits::default()).unwrap()
    else {
        panic!("not a fetch");
    };
    assert_eq!(
        fetch.want_refs,
        vec![BString::from("refs/heads/main"), "refs/tags/v1".into()]
    );
    let twice = fetch_request(&["want-ref refs/heads/main", "want-ref refs/heads/main"]);
    assert!(matches!(
        Request::from_bytes(&twice, &features, &Limits::default()),
        Err(Error::Malformed { .. })
    ));
    let bad = fetch_request(&["want-ref refs/heads/a..b"]);
    assert!(matches!(
        Request::from_bytes(&bad, &features, &Limits::default()),
        Err(Error::InvalidRefName { name, .. }) if name == "refs/heads/a..b"
    ));
}

#[test]
fn writers_refuse_what_cannot_go_on_the_wire() {
    let mut request = Request::new(Command::LsRefs(LsRefs::default()));
    request.agent = Some("snap git".into());
    let mut out = b"before".to_vec();
    assert!(matches!(
        request.write_to(&mut out),
        Err(Error::InvalidValue { what: "agent", .. })
    ));
    assert_eq!(out, b"before", "nothing of a refused request is written");
    let mut out = b"before".to_vec();
    let bad = [Ref {
        name: "refs/heads/a b".into(),
        id: Some(id(1)),
        symref_target: None,
        peeled: None,
    }];
    assert!(v2::write_refs(&mut out, &LsRefs::default(), &bad).is_err());
    assert_eq!(out, b"before");
    let mut request = Request::new(Command::LsRefs(LsRefs::default()));
    request.server_options = vec!["a\nb".into()];
    assert!(matches!(
        request.write_to(&mut Vec::new()),
        Err(Error::InvalidValue { .. })
    ));
    let request = Request::new(Command::LsRefs(LsRefs {
        prefixes: vec!["refs/\n".into()],
        ..LsRefs::default()
    }));
    assert!(matches!(
        request.write_to(&mut Vec::new()),
        Err(Error::InvalidValue { .. })
    ));
    let request = Request::new(Command::Fetch(Fetch {
        deepen: Some(Deepen::Depth {
            depth: 0,
            relative: false,
        }),
        ..Fetch::default()
    }));
    assert!(matches!(
        request.write_to(&mut Vec::new()),
        Err(Error::InvalidValue { .. })
    ));
    let request = Request::new(Command::Fetch(Fetch {
        want_refs: vec!["main".into()],
        ..Fetch::default()
    }));
    assert!(matches!(
        request.write_to(&mut Vec::new()),
        Err(Error::InvalidRefName { .. })
    ));
}

fn refs() -> Vec<Ref> {
    vec![
        Ref {
            name: "HEAD".into(),
            id: Some(id(1)),
            symref_target: Some("refs/heads/main".into()),
            peeled: None,
        },
        Ref {
            name: "refs/heads/main".into(),
            id: Some(id(1)),
            symref_target: None,
            peeled: None,
        },
        Ref {
            name: "refs/tags/v1".into(),
            id: Some(id(2)),
            symref_target: None,
            peeled: Some(id(1)),
        },
    ]
}

#[test]
fn ls_refs_output_is_byte_exact_and_follows_the_request() {
    let all = LsRefs {
        symrefs: true,
        peel: true,
        unborn: true,
        prefixes: vec![],
    };
    let mut out = Vec::new();
    v2::write_refs(&mut out, &all, &refs()).unwrap();
    let expected = [
        format!("0050{} HEAD symref-target:refs/heads/main\n", id(1)),
        format!("003d{} refs/heads/main\n", id(1)),
        format!("006a{} refs/tags/v1 peeled:{}\n", id(2), id(1)),
        "0000".into(),
    ]
    .concat();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    assert_eq!(v2::parse_refs(&out, &Limits::default()).unwrap(), refs());

    // Without symrefs and peel, the attributes are left out; prefixes filter.
    let plain = LsRefs {
        prefixes: vec!["refs/tags/".into(), "HEAD".into()],
        ..LsRefs::default()
    };
    let mut out = Vec::new();
    v2::write_refs(&mut out, &plain, &refs()).unwrap();
    let expected = [
        format!("0032{} HEAD\n", id(1)),
        format!("003a{} refs/tags/v1\n", id(2)),
        "0000".into(),
    ]
    .concat();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn an_unborn_head_is_listed_only_with_unborn_and_symrefs() {
    let unborn = vec![Ref {
        name: "HEAD".into(),
        id: None,
        symref_target: Some("refs/heads/main".into()),
        peeled: None,
    }];
    let mut out = Vec::new();
    let request = LsRefs {
        symrefs: true,
        unborn: true,
        ..LsRefs::default()
    };
    v2::write_refs(&mut out, &request, &unborn).unwrap();
    assert_eq!(out, b"002eunborn HEAD symref-target:refs/heads/main\n0000");
    assert_eq!(v2::parse_refs(&out, &Limits::default()).unwrap(), unborn);
    for request in [
        LsRefs {
            symrefs: true,
            ..LsRefs::default()
        },
        LsRefs {
            unborn: true,
            ..LsRefs::default()
        },
    ] {
        let mut out = Vec::new();
        v2::write_refs(&mut out, &request, &unborn).unwrap();
        assert_eq!(out, b"0000");
    }
}

#[test]
fn broken_ref_listings_are_typed_errors() {
    let limits = Limits::default();
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (lines(&["1234 refs/heads/main\n"], "0000"), |e| {
            matches!(e, Error::InvalidId { at: 0, .. })
        }),
        (lines(&[&id(1).to_string()], "0000"), |e| {
            matches!(e, Error::Malformed { .. })
        }),
        (lines(&[&format!("{} refs/heads/a..b", id(1))], "0000"), |e| {
            matches!(e, Error::InvalidRefName { .. })
        }),
        (lines(&["unborn HEAD"], "0000"), |e| {
            matches!(e, Error::Malformed { .. })
        }),
        (lines(&[&format!("{} HEAD peeled:xyz", id(1))], "0000"), |e| {
            matches!(e, Error::InvalidId { .. })
        }),
        (lines(&[&format!("{} HEAD", id(1))], ""), |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&[&format!("{} HEAD", id(1))], "0001"), |e| {
            matches!(e, Error::Unexpected { .. })
        }),
        (lines(&["ERR no such repository"], ""), |e| {
            matches!(e, Error::Remote { .. })
        }),
    ];
    for (input, check) in cases {
        let got = v2::parse_refs(&input, &limits);
        assert!(
            got.as_ref().is_err_and(check),
            "{:?}: {got:?}",
            String::from_utf8_lossy(&input)
        );
    }
    // Attributes a newer server may add are ignored, as git ignores them.
    let input = lines(&[&format!("{} refs/heads/main future:1\n", id(1))], "0000");
    assert_eq!(v2::parse_refs(&input, &limits).unwrap()[0].name, "refs/heads/main");
}

#[test]
fn acknowledgments_alone_are_byte_exact() {
    let mut out = Vec::new();
    FetchResponse::Acknowledgments { common: vec![] }
        .write_to(&mut out, false)
        .unwrap();
    assert_eq!(out, b"0014acknowledgments\n0008NAK\n0000");
    let response = FetchResponse::Acknowledgments {
        common: vec![id(1), id(2)],
    };
    let mut out = Vec::new();
    response.write_to(&mut out, false).unwrap();
    let expected = format!("0014acknowledgments\n0031ACK {}\n0031ACK {}\n0000", id(1), id(2));
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    assert_eq!(
        FetchResponse::from_bytes(&out, false, &Limits::default()).unwrap(),
        response
    );
}

#[test]
fn a_pack_response_is_byte_exact() {
    let response = FetchResponse::Pack(PackResponse {
        acknowledgments: Some(vec![]),
        shallow_info: Some(ShallowInfo {
            shallow: vec![id(3)],
            unshallow: vec![],
        }),
        wanted_refs: vec![],
        pack: b"PACK".to_vec(),
        progress: b"Total 1\n".to_vec(),
    });
    let mut out = Vec::new();
    response.write_to(&mut out, false).unwrap();
    let expected = [
        "0014acknowledgments\n0008NAK\n000aready\n0001".to_owned(),
        format!("0011shallow-info\n0035shallow {}\n0001", id(3)),
        "000dpackfile\n000d\x02Total 1\n0009\x01PACK0000".to_owned(),
    ]
    .concat();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    assert_eq!(
        FetchResponse::from_bytes(&out, false, &Limits::default()).unwrap(),
        response
    );

    // A clone (the client sent done): no acknowledgments, the pack alone.
    let mut out = Vec::new();
    FetchResponse::Pack(PackResponse::new(b"PACK".to_vec()))
        .write_to(&mut out, false)
        .unwrap();
    assert_eq!(out, b"000dpackfile\n0009\x01PACK0000");
}

#[test]
fn with_sideband_all_every_line_is_multiplexed() {
    let response = FetchResponse::Pack(PackResponse {
        acknowledgments: Some(vec![id(1)]),
        shallow_info: None,
        wanted_refs: vec![WantedRef {
            id: id(2),
            name: "refs/heads/main".into(),
        }],
        pack: b"PACK".to_vec(),
        progress: vec![],
    });
    let mut out = Vec::new();
    response.write_to(&mut out, true).unwrap();
    assert!(out.starts_with(b"0015\x01acknowledgments\n"));
    assert_eq!(
        FetchResponse::from_bytes(&out, true, &Limits::default()).unwrap(),
        response
    );
    // Keep-alives and progress between lines are read as progress.
    let mut out = b"0005\x02".to_vec();
    sideband::write(&mut out, Band::Progress, b"working\n");
    FetchResponse::Pack(PackResponse::new(b"PACK".to_vec()))
        .write_to(&mut out, true)
        .unwrap();
    let FetchResponse::Pack(got) = FetchResponse::from_bytes(&out, true, &Limits::default()).unwrap() else {
        panic!("no pack");
    };
    assert_eq!(got.progress, b"working\n");
    assert_eq!(got.pack, b"PACK");
}

#[test]
fn broken_fetch_responses_are_typed_errors() {
    let limits = Limits::default();
    let ack = format!("ACK {}", id(1));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // ready, then no pack.
        (lines(&["acknowledgments", "ready"], "0000"), "flush after ready"),
        // no ready, then more sections.
        (lines(&["acknowledgments", "NAK"], "0001"), "delim without ready"),
        (lines(&["acknowledgments", "NAK", &ack], "0000"), "NAK then ACK"),
        (lines(&["acknowledgments", &ack, "NAK"], "0000"), "ACK then NAK"),
        (lines(&["acknowledgments", "ACK 12"], "0000"), "bad id"),
        (
            lines(&["shallow-info"], "0001")
                .into_iter()
                .chain(lines(&["acknowledgments"], "0000"))
                .collect(),
            "order",
        ),
        (lines(&["packfile-uris"], "0001"), "packfile-uris not asked for"),
        (lines(&["shallow-info", "deep 1"], "0001"), "bad shallow line"),
        (lines(&["wanted-refs", "refs/heads/main"], "0001"), "bad wanted ref"),
        (lines(&["packfile"], ""), "no flush"),
        (lines(&["packfile", "PACK"], "0000"), "data without band"),
        (
            lines(&["packfile"], "0000").into_iter().chain(*b"0000").collect(),
            "bytes after the flush",
        ),
        (lines(&["packfile", "\u{3}fatal: out of memory"], "0000"), "band 3"),
        (lines(&["ERR upload-pack: not our ref"], ""), "ERR"),
        (b"".to_vec(), "empty"),
    ];
    for (input, what) in cases {
        let got = FetchResponse::from_bytes(&input, false, &limits);
        assert!(got.is_err(), "{what}: {got:?}");
        if what == "band 3" || what == "ERR" {
            assert!(matches!(got, Err(Error::Remote { .. })), "{what}: {got:?}");
        }
    }
    // A response-end-pkt after the final flush is how a stateless proxy ends it.
    let mut out = Vec::new();
    FetchResponse::Pack(PackResponse::new(b"PACK".to_vec()))
        .write_to(&mut out, false)
        .unwrap();
    out.extend_from_slice(b"0002");
    assert!(FetchResponse::from_bytes(&out, false, &limits).is_ok());
}

fn ids() -> impl Strategy<Value = Vec<snapgit_core::ObjectId>> {
    proptest::collection::vec(any::<u8>().prop_map(id), 0..4)
}

fn names() -> impl Strategy<Value = Vec<BString>> {
    proptest::collection::vec(
        "[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}".prop_map(|n| BString::from(format!("refs/{n}"))),
        0..3,
    )
}

fn deepen() -> impl Strategy<Value = Option<Deepen>> {
    prop_oneof![
        Just(None),
        (1..=v2::UNSHALLOW_DEPTH, any::<bool>()).prop_map(|(depth, relative)| Some(Deepen::Depth { depth, relative })),
        (any::<u64>(), names()).prop_map(|(since, not)| Some(Deepen::Cut {
            since: Some(since),
            not
        })),
        names()
            .prop_filter("a cut needs something", |n| !n.is_empty())
            .prop_map(|not| Some(Deepen::Cut { since: None, not })),
    ]
}

fn filter() -> impl Strategy<Value = Option<Filter>> {
    prop_oneof![
        Just(None),
        Just(Some(Filter::BlobNone)),
        any::<u64>().prop_map(|n| Some(Filter::BlobLimit(n))),
        any::<u64>().prop_map(|n| Some(Filter::TreeDepth(n))),
    ]
}

fn fetch() -> impl Strategy<Value = Fetch> {
    (
        (ids(), names(), ids(), ids()),
        proptest::collection::vec(any::<bool>(), 7),
        deepen(),
        filter(),
    )
        .prop_map(|((wants, want_refs, haves, shallows), flags, deepen, filter)| {
            let mut want_refs = want_refs;
            want_refs.dedup();
            want_refs.sort();
            want_refs.dedup();
            Fetch {
                wants,
                want_refs,
                haves,
                done: flags[0],
                thin_pack: flags[1],
                no_progress: flags[2],
                include_tag: flags[3],
                ofs_delta: flags[4],
                shallows,
                deepen,
                filter,
                wait_for_done: flags[5],
                sideband_all: flags[6],
            }
        })
}

fn pack_response() -> impl Strategy<Value = FetchResponse> {
    (
        proptest::option::of(ids()),
        proptest::option::of((ids(), ids()).prop_map(|(shallow, unshallow)| ShallowInfo { shallow, unshallow })),
        (ids(), names()).prop_map(|(ids, names)| {
            ids.into_iter()
                .zip(names)
                .map(|(id, name)| WantedRef { id, name })
                .collect::<Vec<_>>()
        }),
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..50),
    )
        .prop_map(|(acknowledgments, shallow_info, wanted_refs, pack, progress)| {
            FetchResponse::Pack(PackResponse {
                acknowledgments,
                shallow_info,
                wanted_refs,
                pack,
                progress,
            })
        })
}

proptest! {
    #[test]
    fn fetch_requests_round_trip(fetch in fetch(), options in proptest::collection::vec("[a-z=]{0,8}", 0..3)) {
        let mut request = Request::new(Command::Fetch(fetch));
        request.server_options = options;
        let mut out = Vec::new();
        request.write_to(&mut out).unwrap();
        let got = Request::from_bytes(&out, &every_feature(), &Limits::default()).unwrap();
        prop_assert_eq!(got, Some(request));
    }

    #[test]
    fn ls_refs_requests_round_trip(symrefs: bool, peel: bool, unborn: bool, prefixes in names()) {
        let request = Request::new(Command::LsRefs(LsRefs { symrefs, peel, unborn, prefixes }));
        let mut out = Vec::new();
        request.write_to(&mut out).unwrap();
        prop_assert_eq!(parse(&out).unwrap(), Some(request));
    }

    #[test]
    fn ref_listings_round_trip(refs in proptest::collection::vec((names(), proptest::option::of(any::<u8>()), any::<bool>(), proptest::option::of(any::<u8>())), 0..5)) {
        let refs: Vec<Ref> = refs
            .into_iter()
            .filter_map(|(names, id_byte, symref, peeled)| {
                let name = names.first()?.clone();
                let target = (symref || id_byte.is_none()).then(|| BString::from("refs/heads/main"));
                Some(Ref { name, id: id_byte.map(id), symref_target: target, peeled: id_byte.and(peeled).map(id) })
            })
            .collect();
        let all = LsRefs { symrefs: true, peel: true, unborn: true, prefixes: vec![] };
        let mut out = Vec::new();
        v2::write_refs(&mut out, &all, &refs).unwrap();
        prop_assert_eq!(v2::parse_refs(&out, &Limits::default()).unwrap(), refs);
    }

    #[test]
    fn fetch_responses_round_trip(response in pack_response(), sideband_all: bool, common in ids()) {
        let mut out = Vec::new();
        response.write_to(&mut out, sideband_all).unwrap();
        prop_assert_eq!(FetchResponse::from_bytes(&out, sideband_all, &Limits::default()).unwrap(), response);
        let acks = FetchResponse::Acknowledgments { common };
        let mut out = Vec::new();
        acks.write_to(&mut out, sideband_all).unwrap();
        prop_assert_eq!(FetchResponse::from_bytes(&out, sideband_all, &Limits::default()).unwrap(), acks);
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::from_bytes(&bytes, &every_feature(), &Limits::default());
        let _ = v2::parse_advertisement(&bytes, &Limits::default());
        let _ = v2::parse_refs(&bytes, &Limits::default());
        let _ = FetchResponse::from_bytes(&bytes, false, &Limits::default());
        let _ = FetchResponse::from_bytes(&bytes, true, &Limits::default());
    }

    #[test]
    fn hostile_lines_are_errors_not_panics(args in proptest::collection::vec("(want|have|shallow|deepen|deepen-since|deepen-not|filter|want-ref|done|ref-prefix)( [ -~]{0,45})?", 0..6)) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = Request::from_bytes(&fetch_request(&args), &every_feature(), &Limits::default());
        let mut body = lines(&["command=ls-refs"], "0001");
        body.extend(lines(&args, "0000"));
        let _ = Request::from_bytes(&body, &every_feature(), &Limits::default());
    }
}
