#[test]
fn ids_are_full_hex_of_the_hash_kind() {
    use snapgit_core::id::{self, Reason};
    let kind = gix_hash::Kind::Sha1;
    let hex = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
    assert_eq!(id::parse(kind, hex).expect("valid").to_string(), hex);
    assert_eq!(id::parse(kind, &hex.to_uppercase()).expect("valid").to_string(), hex);
    for (bad, reason) in [
        ("e69de29", Reason::Length),
        ("", Reason::Length),
        ("g69de29bb2d1d6434b8b29ae775ad8c2e48c5391", Reason::NotHex),
        ("e69de29bb2d1d6434b8b29ae775ad8c2e48c539\u{e9}", Reason::Length),
        ("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 ", Reason::Length),
    ] {
        let err = id::parse(kind, bad).expect_err(bad);
        assert_eq!(err.reason, reason, "{bad:?}");
        assert_eq!(err.value, bad);
    }
}
