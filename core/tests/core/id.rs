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

proptest::proptest! {
    /// Every byte value in every position: parsed exactly when each is a hex digit.
    #[test]
    fn an_id_parses_exactly_when_every_character_is_a_hex_digit(
        bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                proptest::num::u8::ANY,
            ],
            40,
        )
    ) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = snapgit_core::id::parse(gix_hash::Kind::Sha1, &text).ok();
        let digits = bytes.iter().all(u8::is_ascii_hexdigit);
        proptest::prop_assert_eq!(parsed.is_some(), digits && text.len() == 40);
        if let Some(id) = parsed {
            proptest::prop_assert_eq!(id.to_string(), text.to_ascii_lowercase());
        }
    }
}
