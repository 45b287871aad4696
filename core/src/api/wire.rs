//! How core's values look in the operations' serde form (JSON, for example): ids as
//! lowercase hex, paths as text, file contents as bytes, a changed file's side as
//! `{ id, mode }`. The field attributes of [`super::Request`] and [`super::Output`]'s
//! types name these modules.

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tree::Mode;

/// An id's hex, written without the formatting machinery (ids are most of a result).
fn write_id<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 64];
    s.serialize_str(id.hex_to_buf(&mut buf))
}

fn parse_id<E: serde::de::Error>(text: &str) -> Result<ObjectId, E> {
    crate::id::parse(gix_hash::Kind::Sha1, text).map_err(E::custom)
}

/// An object id as its hex text.
pub mod id {
    use super::*;

    /// Serialize as hex.
    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        write_id(id, s)
    }

    /// Parse hex (a full id, lowercase).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        parse_id(&String::deserialize(d)?)
    }
}

/// An optional object id as hex, or null.
pub mod opt_id {
    use super::*;

    /// Serialize as hex or null.
    pub fn serialize<S: Serializer>(id: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => write_id(id, s),
            None => s.serialize_none(),
        }
    }

    /// Parse hex, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ObjectId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_id(&text))
            .transpose()
    }
}

/// Object ids as a list of hex.
pub mod ids {
    use super::*;

    /// Serialize as a list of hex.
    pub fn serialize<S: Serializer>(ids: &[ObjectId], s: S) -> Result<S::Ok, S::Error> {
        struct Hex<'a>(&'a ObjectId);
        impl Serialize for Hex<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                write_id(self.0, s)
            }
        }
        s.collect_seq(ids.iter().map(Hex))
    }

    /// Parse a list of hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ObjectId>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| parse_id(text))
            .collect()
    }
}

/// A path as text; a stored path that is not UTF-8 is written with U+FFFD for its bad bytes.
pub mod path {
    use super::*;

    /// Serialize as text.
    pub fn serialize<S: Serializer>(path: &BString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&path.to_str_lossy())
    }

    /// Read text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BString, D::Error> {
        Ok(String::deserialize(d)?.into())
    }
}

/// An optional path as text, or null.
pub mod opt_path {
    use super::*;

    /// Serialize as text or null.
    pub fn serialize<S: Serializer>(path: &Option<BString>, s: S) -> Result<S::Ok, S::Error> {
        path.as_ref().map(|p| p.to_str_lossy()).serialize(s)
    }

    /// Read text, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BString>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Into::into))
    }
}

/// File contents as bytes (a `Uint8Array` in JS).
///
/// Read from bytes, an array of numbers or a string (its UTF-8 text); in a
/// human-readable format (JSON) also from `{"text": "…"}` or `{"base64": "…"}`, the
/// standard alphabet with padding, which is how JSON carries a binary file.
pub mod bytes {
    use super::*;

    /// Serialize as bytes.
    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(data)
    }

    /// Read bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(byte) = seq.next_element()? {
                    out.push(byte);
                }
                Ok(out)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
                use serde::de::Error as _;
                let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                    return Err(A::Error::custom(
                        "bytes: expected {\"text\": …} or {\"base64\": …}, got {}",
                    ));
                };
                let text = map.next_value::<std::borrow::Cow<'de, str>>()?;
                let data = match &*key {
                    "text" => text.into_owned().into_bytes(),
                    "base64" => {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD
                            .decode(text.as_bytes())
                            .map_err(|err| A::Error::custom(format_args!("bytes: invalid base64: {err}")))?
                    }
                    other => {
                        return Err(A::Error::unknown_field(other, &["text", "base64"]));
                    }
                };
                if let Some(extra) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    return Err(A::Error::custom(format_args!(
                        "bytes: one of \"text\" or \"base64\", not also {extra:?}"
                    )));
                }
                Ok(data)
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(Bytes)
        } else {
            d.deserialize_byte_buf(Bytes)
        }
    }
}

/// Optional bytes (a patch, a folder file's content), or null.
pub mod opt_bytes {
    use super::*;

    /// Serialize as bytes or null.
    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(data: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(data) => s.serialize_bytes(data.as_ref()),
            None => s.serialize_none(),
        }
    }

    /// Read bytes, or null.
    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<Option<T>, D::Error> {
        #[derive(Deserialize)]
        struct Data(#[serde(with = "super::bytes")] Vec<u8>);
        Ok(Option::<Data>::deserialize(d)?.map(|Data(data)| data.into()))
    }
}

/// A list of paths as text.
pub mod paths {
    use super::*;

    /// Serialize as a list of text.
    pub fn serialize<S: Serializer>(paths: &[BString], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(paths.iter().map(|p| p.to_str_lossy()))
    }

    /// Read a list of text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BString>, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into_iter().map(Into::into).collect())
    }
}

/// One side of a changed file (`{ id, mode }`), or null where the file is absent.
pub mod side {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Side {
        #[serde(with = "super::id")]
        id: ObjectId,
        mode: Mode,
    }

    /// Serialize as `{ id, mode }` or null.
    pub fn serialize<S: Serializer>(side: &Option<(ObjectId, Mode)>, s: S) -> Result<S::Ok, S::Error> {
        side.map(|(id, mode)| Side { id, mode }).serialize(s)
    }

    /// Read `{ id, mode }`, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(ObjectId, Mode)>, D::Error> {
        Ok(Option::<Side>::deserialize(d)?.map(|side| (side.id, side.mode)))
    }
}

/// Defaults of the serde form, where core's differs from the type's `Default`.
pub mod default {
    /// `true`.
    pub fn yes() -> bool {
        true
    }

    /// [`crate::retry::DEFAULT_MAX_ATTEMPTS`].
    pub fn attempts() -> u32 {
        crate::retry::DEFAULT_MAX_ATTEMPTS
    }

    /// [`crate::history::DEFAULT_LIMIT`].
    pub fn limit() -> usize {
        crate::history::DEFAULT_LIMIT
    }

    /// [`crate::gc::CollectOptions`]' grace period.
    pub fn grace_ms() -> u64 {
        crate::gc::CollectOptions::new(0).grace_ms
    }

    /// [`crate::gc::CollectOptions`]' batch.
    pub fn batch() -> usize {
        crate::gc::CollectOptions::new(0).batch
    }

    /// A regular file.
    pub fn regular() -> crate::tree::Mode {
        crate::tree::Mode::Regular
    }
}
