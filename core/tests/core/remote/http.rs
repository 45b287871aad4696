//! Smart HTTP: the service header as gitprotocol-http shows it, the version a
//! `Git-Protocol` header asks for, and the `ERR` refusal.

use snapgit_core::{
    error::{Classify, Code},
    remote::{
        self, Error,
        http::{Service, Version},
        pkt::{Packet, Reader},
    },
};

use super::lines;

#[test]
fn the_service_header_is_the_documents() {
    let mut out = Vec::new();
    Service::UploadPack.write_header(&mut out);
    assert_eq!(out, b"001e# service=git-upload-pack\n0000");
    let mut out = Vec::new();
    Service::ReceivePack.write_header(&mut out);
    assert_eq!(out, b"001f# service=git-receive-pack\n0000");
}

#[test]
fn services_have_their_names_and_content_types() {
    for service in [Service::UploadPack, Service::ReceivePack] {
        assert_eq!(Service::from_name(service.name()), Some(service));
        let name = service.name();
        assert_eq!(
            service.advertisement_type(),
            format!("application/x-{name}-advertisement")
        );
        assert_eq!(service.request_type(), format!("application/x-{name}-request"));
        assert_eq!(service.result_type(), format!("application/x-{name}-result"));
    }
    assert_eq!(Service::from_name("git-upload-archive"), None);
}

#[test]
fn stripping_the_header_leaves_the_advertisement() {
    let mut body = Vec::new();
    Service::ReceivePack.write_header(&mut body);
    body.extend_from_slice(b"0000");
    assert_eq!(Service::ReceivePack.strip_header(&body).unwrap(), b"0000");
    // Lines after the service line, up to the flush, are metadata git skips.
    let body = lines(&["# service=git-upload-pack", "meta"], "0000rest");
    assert_eq!(Service::UploadPack.strip_header(&body).unwrap(), b"rest");
}

#[test]
fn a_header_for_another_service_or_without_a_flush_is_refused() {
    let mut body = Vec::new();
    Service::UploadPack.write_header(&mut body);
    assert!(matches!(
        Service::ReceivePack.strip_header(&body),
        Err(Error::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        Service::UploadPack.strip_header(b"000eversion 2\n0000"),
        Err(Error::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        Service::UploadPack.strip_header(b"001e# service=git-upload-pack\n"),
        Err(Error::Unexpected { at: 30, .. })
    ));
    assert!(matches!(
        Service::UploadPack.strip_header(b""),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn the_greatest_version_asked_for_wins() {
    assert_eq!(Version::requested(None), Version::V0);
    assert_eq!(Version::requested(Some("")), Version::V0);
    assert_eq!(Version::requested(Some("version=2")), Version::V2);
    assert_eq!(Version::requested(Some("version=1")), Version::V1);
    assert_eq!(Version::requested(Some("version=2:version=1")), Version::V2);
    assert_eq!(Version::requested(Some("object-format=sha1:version=1")), Version::V1);
    assert_eq!(Version::requested(Some("version=3")), Version::V0);
    assert_eq!(Version::requested(Some("version=20")), Version::V0);
}

#[test]
fn an_err_line_refuses_a_v0_fetch_as_git_shows_it() {
    let mut out = Vec::new();
    Service::UploadPack.write_header(&mut out);
    remote::write_error(&mut out, "fetch needs protocol v2\n(set protocol.version=2)");
    let mut reader = Reader::new(&out);
    reader.read().unwrap();
    reader.read().unwrap();
    assert_eq!(
        reader.read().unwrap(),
        Some(Packet::Data(b"ERR fetch needs protocol v2 (set protocol.version=2)\n"))
    );
    assert_eq!(&out[34..38], b"0039");

    let mut out = Vec::new();
    remote::write_error(&mut out, &"x".repeat(70_000));
    assert_eq!(&out[..4], b"fff0", "a long message is cut to one line");
}

#[test]
fn errors_are_classified_with_the_offending_value() {
    let err = Error::UnknownCommand { command: "push".into() };
    assert_eq!(err.code(), Code::InvalidInput);
    assert_eq!(err.fields(), vec![("value", snapgit_core::error::Value::Text("push"))]);
    let err = Error::LimitExceeded {
        what: "lines",
        limit: 10,
    };
    assert_eq!(err.code(), Code::Limit);
    let err = Error::UnsupportedFilter {
        spec: "sparse:oid=x".into(),
    };
    assert_eq!(err.code(), Code::Unsupported);
    assert_eq!(
        err.to_string(),
        "unsupported filter \"sparse:oid=x\": only blob:none, blob:limit=<n> and tree:<depth> are served"
    );
}
