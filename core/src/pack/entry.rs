//! One entry of a pack: its header (kind and inflated size, and for a delta where its
//! base is), then zlib data; and git's delta format, which rebuilds an object from its
//! base.

use gix_hash::ObjectId;
use gix_object::Kind;

/// Where a delta's base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Earlier in the same pack, at this offset (`OFS_DELTA`).
    Offset(u64),
    /// The object with this id (`REF_DELTA`).
    Id(ObjectId),
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole object of this kind.
    Object(Kind),
    /// A delta against a base.
    Delta(Base),
}

/// An entry's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whole object or delta.
    pub kind: EntryKind,
    /// The size of the inflated data: the object, or the delta instructions.
    pub size: u64,
    /// Where the zlib data starts, from the entry's start.
    pub data_start: usize,
}

/// Parse the header of the entry at `offset` whose bytes start `bytes`.
pub fn parse_header(bytes: &[u8], offset: u64, hash_kind: gix_hash::Kind) -> Result<Header, String> {
    let truncated = || "the entry header is truncated".to_owned();
    let first = *bytes.first().ok_or_else(truncated)?;
    let kind_bits = (first >> 4) & 0x7;
    let mut size = u64::from(first & 0x0f);
    let mut shift = 4u32;
    let mut at = 1;
    let mut byte = first;
    while byte & 0x80 != 0 {
        byte = *bytes.get(at).ok_or_else(truncated)?;
        at += 1;
        if shift > 57 {
            return Err("the entry size does not fit 64 bits".into());
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    let kind = match kind_bits {
        1 => EntryKind::Object(Kind::Commit),
        2 => EntryKind::Object(Kind::Tree),
        3 => EntryKind::Object(Kind::Blob),
        4 => EntryKind::Object(Kind::Tag),
        6 => {
            // Big-endian base-128, each continuation adding one (git's offset encoding).
            let mut byte = *bytes.get(at).ok_or_else(truncated)?;
            at += 1;
            let mut distance = u64::from(byte & 0x7f);
            while byte & 0x80 != 0 {
                byte = *bytes.get(at).ok_or_else(truncated)?;
                at += 1;
                distance = distance
                    .checked_add(1)
                    .and_then(|d| d.checked_mul(128))
                    .map(|d| d | u64::from(byte & 0x7f))
                    .filter(|d| *d < (1 << 56))
                    .ok_or_else(|| "the delta base offset overflows".to_owned())?;
            }
            match offset.checked_sub(distance) {
                Some(base) if distance > 0 => EntryKind::Delta(Base::Offset(base)),
                _ => return Err(format!("the delta base lies {distance} bytes back, before the pack")),
            }
        }
        7 => {
            let len = hash_kind.len_in_bytes();
            let id = bytes.get(at..at + len).ok_or_else(truncated)?;
            at += len;
            EntryKind::Delta(Base::Id(ObjectId::from_bytes_or_panic(id)))
        }
        other => return Err(format!("unknown entry type {other}")),
    };
    Ok(Header {
        kind,
        size,
        data_start: at,
    })
}

/// Inflate an entry's zlib data to exactly `size` bytes, refusing more than `max`.
pub fn inflate(data: &[u8], size: u64, max: u64) -> Result<Vec<u8>, String> {
    inflate_prefix(data, size, max).map(|(out, _)| out)
}

/// The most bytes a delta's instructions may inflate to when the objects it rebuilds are
/// limited to `max`: inserts cost a byte per 127, and a delta that only inserts is still
/// valid, so a delta may be somewhat larger than its result, never twice.
pub(crate) fn max_delta_bytes(max: u64) -> u64 {
    max.saturating_mul(2).saturating_add(64)
}

/// The output buffer's first size: entries declaring more grow it as their data arrives,
/// so a header claiming far more than its stream holds costs no large allocation.
const FIRST_OUTPUT: usize = 256 << 10;

/// Inflate the zlib stream at the start of `data` to exactly `size` bytes, refusing more
/// than `max`: the bytes, and how many bytes of `data` the stream took. In a pack read
/// from its start, the next entry begins right after.
pub fn inflate_prefix(data: &[u8], size: u64, max: u64) -> Result<(Vec<u8>, usize), String> {
    use miniz_oxide::inflate::{
        TINFLStatus,
        core::{DecompressorOxide, decompress, inflate_flags},
    };
    if size > max {
        return Err(format!("the entry inflates to {size} bytes, over the limit of {max}"));
    }
    let size = usize::try_from(size).map_err(|_| "the entry is too large for this machine".to_owned())?;
    // One byte of room beyond `size`: a stream that fills it holds more than declared,
    // and one that stops at `size` is never cut short for want of room.
    let room = size.saturating_add(1);
    let mut out = vec![0; room.min(FIRST_OUTPUT)];
    let mut decompressor = Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (mut read, mut written) = (0, 0);
    loop {
        let input = data.get(read..).unwrap_or_default();
        let (status, consumed, produced) = decompress(&mut decompressor, input, &mut out, written, flags);
        read += consumed;
        written += produced;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput if out.len() < room => {
                let grown = out.len().saturating_mul(2).min(room);
                out.resize(grown, 0);
            }
            TINFLStatus::HasMoreOutput => {
                return Err(format!("the entry inflates to more than its declared {size} bytes"));
            }
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err("the entry's zlib stream is truncated".into());
            }
            TINFLStatus::Adler32Mismatch => return Err("the entry's zlib checksum does not match its data".into()),
            _ => return Err("the entry is not a valid zlib stream".into()),
        }
    }
    if written > size {
        return Err(format!("the entry inflates to more than its declared {size} bytes"));
    }
    if written != size {
        return Err(format!(
            "the entry inflates to {written} bytes, not its declared {size}"
        ));
    }
    out.truncate(written);
    Ok((out, read))
}

/// A little-endian base-128 size at the start of a delta.
fn delta_size(delta: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut size = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *delta.get(*at).ok_or("the delta header is truncated")?;
        *at += 1;
        if shift > 63 {
            return Err("a delta size does not fit 64 bits".into());
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(size);
        }
    }
}

/// Rebuild an object from its `base` and a `delta`, refusing a result over `max` bytes.
pub fn apply_delta(base: &[u8], delta: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let mut at = 0;
    let base_size = delta_size(delta, &mut at)?;
    let result_size = delta_size(delta, &mut at)?;
    if base_size != base.len() as u64 {
        return Err(format!(
            "the delta expects a base of {base_size} bytes, the base has {}",
            base.len()
        ));
    }
    if result_size > max {
        return Err(format!(
            "the delta expands to {result_size} bytes, over the limit of {max}"
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(result_size).map_err(|_| "the delta result is too large")?);
    while let Some(&op) = delta.get(at) {
        at += 1;
        if op & 0x80 != 0 {
            let mut field = |bits: u8, shift: u32, value: &mut u64| -> Result<(), String> {
                if op & bits != 0 {
                    let byte = *delta.get(at).ok_or("a copy instruction is truncated")?;
                    at += 1;
                    *value |= u64::from(byte) << shift;
                }
                Ok(())
            };
            let (mut offset, mut size) = (0u64, 0u64);
            for (i, bit) in [0x01, 0x02, 0x04, 0x08].into_iter().enumerate() {
                field(bit, 8 * i as u32, &mut offset)?;
            }
            for (i, bit) in [0x10, 0x20, 0x40].into_iter().enumerate() {
                field(bit, 8 * i as u32, &mut size)?;
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset
                .checked_add(size)
                .filter(|end| *end <= base.len() as u64)
                .ok_or_else(|| format!("a copy of {size} bytes at {offset} reaches past the base"))?;
            out.extend_from_slice(&base[offset as usize..end as usize]);
        } else if op != 0 {
            let data = delta
                .get(at..at + usize::from(op))
                .ok_or("an insert instruction is truncated")?;
            at += usize::from(op);
            out.extend_from_slice(data);
        } else {
            return Err("the delta holds the reserved instruction 0".into());
        }
        if out.len() as u64 > result_size {
            return Err(format!("the delta writes more than its declared {result_size} bytes"));
        }
    }
    if out.len() as u64 != result_size {
        return Err(format!(
            "the delta writes {} bytes, not its declared {result_size}",
            out.len()
        ));
    }
    Ok(out)
}

/// CRC-32 (IEEE, as zlib computes it), which a pack index records for each entry. The
/// table is made on first use rather than kept as a constant, which would be a kilobyte of
/// the `.wasm`.
pub fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        table
    });
    !bytes
        .iter()
        .fold(!0u32, |crc, &byte| table[usize::from((crc as u8) ^ byte)] ^ (crc >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_copy_and_insert() {
        let base = b"hello world";
        // base 11, result 11: copy 6 bytes at 0, insert "there"
        let delta = [11, 11, 0x80 | 0x10, 6, 5, b't', b'h', b'e', b'r', b'e'];
        assert_eq!(apply_delta(base, &delta, 100).unwrap(), b"hello there");
        assert!(apply_delta(base, &[10, 11], 100).is_err(), "wrong base size");
        assert!(apply_delta(base, &[11, 200, 1], 100).is_err(), "over the limit");
        assert!(apply_delta(base, &[11, 1, 0], 100).is_err(), "reserved instruction");
        assert!(
            apply_delta(base, &[11, 4, 0x91, 8, 4], 100).is_err(),
            "copy past the base"
        );
        assert!(apply_delta(base, &[11, 1, 2, b'a'], 100).is_err(), "truncated insert");
    }

    #[test]
    fn inflate_prefix_finds_where_the_stream_ends() {
        for data in [&b""[..], b"hello", &b"a fairly long line of text. ".repeat(20_000)] {
            let mut stream = miniz_oxide::deflate::compress_to_vec_zlib(data, 6);
            let len = stream.len();
            stream.extend_from_slice(b"the next entry");
            let size = data.len() as u64;
            assert_eq!(inflate_prefix(&stream, size, size).unwrap(), (data.to_vec(), len));
            if size > 0 {
                let over = inflate_prefix(&stream, size, size - 1).unwrap_err();
                assert!(over.contains("over the limit"), "{over}");
                let short = inflate_prefix(&stream, size - 1, size).unwrap_err();
                assert!(short.contains("more than its declared"), "{short}");
            }
            let long = inflate_prefix(&stream, size + 1, size + 1).unwrap_err();
            assert!(long.contains("not its declared"), "{long}");
            let cut = inflate_prefix(&stream[..len - 1], size, size).unwrap_err();
            assert!(cut.contains("truncated"), "{cut}");
        }
        let mut stream = miniz_oxide::deflate::compress_to_vec_zlib(b"hello", 6);
        let last = stream.len() - 1;
        stream[last] ^= 1;
        assert!(inflate_prefix(&stream, 5, 5).unwrap_err().contains("checksum"));
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn headers() {
        let kind = gix_hash::Kind::Sha1;
        // A blob of 300 bytes: type 3, size 300 = 0b1_0010_1100.
        let h = parse_header(&[0x80 | 0x30 | 0x0c, 0x12], 100, kind).unwrap();
        assert_eq!((h.kind, h.size, h.data_start), (EntryKind::Object(Kind::Blob), 300, 2));
        // An ofs-delta 5 bytes back.
        let h = parse_header(&[0x60 | 1, 5], 100, kind).unwrap();
        assert_eq!(h.kind, EntryKind::Delta(Base::Offset(95)));
        assert!(parse_header(&[0x60 | 1, 101], 100, kind).is_err(), "before the pack");
        assert!(parse_header(&[0x50], 0, kind).is_err(), "type 5");
        assert!(parse_header(&[0x80 | 0x30], 0, kind).is_err(), "truncated");
        assert!(parse_header(&[0xff; 20], 0, kind).is_err(), "size overflow");
    }
}
