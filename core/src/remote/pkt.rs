//! pkt-line framing (gitprotocol-common): four hex digits of length (the header
//! included), then the payload; `0000` flush, `0001` delim, `0002` response-end.
//!
//! ```
//! use snapgit_core::remote::pkt::{self, Packet, Reader};
//!
//! let mut out = Vec::new();
//! pkt::line(&mut out, b"a\n")?;
//! pkt::flush(&mut out);
//! out.extend_from_slice(b"PACK...");
//! assert_eq!(out, b"0006a\n0000PACK...");
//!
//! let mut reader = Reader::new(&out);
//! assert_eq!(reader.read()?, Some(Packet::Data(b"a\n")));
//! assert_eq!(reader.read()?, Some(Packet::Flush));
//! assert_eq!(reader.rest(), b"PACK...");
//! # Ok::<(), snapgit_core::remote::Error>(())
//! ```

use super::{Error, error::show};

/// The longest pkt-line, its four length bytes included.
pub const MAX_PACKET_BYTES: usize = 65520;

/// The longest payload of one pkt-line.
pub const MAX_DATA_BYTES: usize = MAX_PACKET_BYTES - 4;

/// Write `data` as one pkt-line, as it is (a text line should end in `\n`; git's
/// receivers accept it either way). More than [`MAX_DATA_BYTES`] is refused; an empty
/// payload is written as `0004`, which the protocol allows but advises against.
pub fn line(out: &mut Vec<u8>, data: &[u8]) -> Result<(), Error> {
    if data.len() > MAX_DATA_BYTES {
        return Err(Error::TooLong {
            at: None,
            len: data.len(),
        });
    }
    header(out, data.len() + 4);
    out.extend_from_slice(data);
    Ok(())
}

/// Write a flush-pkt, `0000`: the end of a message (or of a section of v0).
pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

/// Write a delim-pkt, `0001`: the end of a section of a v2 message.
pub fn delim(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0001");
}

/// Write a response-end-pkt, `0002`: the end of a v2 response on a stateless connection.
pub fn response_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0002");
}

/// One packet read from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data line's payload, with its trailing `\n` if it has one.
    Data(&'a [u8]),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    ResponseEnd,
}

impl Packet<'_> {
    /// How an error names this packet.
    pub(crate) fn describe(&self) -> String {
        match self {
            Packet::Data(data) => format!("the line {:?}", show(chomp(data))),
            Packet::Flush => "a flush-pkt".into(),
            Packet::Delim => "a delim-pkt".into(),
            Packet::ResponseEnd => "a response-end-pkt".into(),
        }
    }
}

/// A decoder of pkt-lines over a buffer.
///
/// [`Reader::read`] gives one packet at a time, `None` at the end of the input;
/// [`Reader::rest`] gives the bytes not read yet (the pack after a push's commands). As an
/// iterator it stops after the first error.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// The offset of the next packet in the buffer.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Read the next packet; `None` at the end of the input. A broken packet is an error,
    /// and the reader stays in front of it.
    pub fn read(&mut self) -> Result<Option<Packet<'a>>, Error> {
        let at = self.pos;
        let rest = self.rest();
        if rest.is_empty() {
            return Ok(None);
        }
        let Some(head) = rest.get(..4) else {
            return Err(Error::Truncated {
                at,
                needed: 4,
                available: rest.len(),
            });
        };
        let Some(len) = parse_len(head) else {
            return Err(Error::Malformed {
                at,
                reason: format!("the length {:?} is not four hex digits", show(head)),
            });
        };
        let packet = match len {
            0 => Packet::Flush,
            1 => Packet::Delim,
            2 => Packet::ResponseEnd,
            3 => {
                return Err(Error::Malformed {
                    at,
                    reason: "the length 0003 is reserved".into(),
                });
            }
            len if len > MAX_PACKET_BYTES => {
                return Err(Error::TooLong {
                    at: Some(at),
                    len: len - 4,
                });
            }
            len => match rest.get(4..len) {
                Some(data) => Packet::Data(data),
                None => {
                    return Err(Error::Truncated {
                        at,
                        needed: len,
                        available: rest.len(),
                    });
                }
            },
        };
        self.pos += match packet {
            Packet::Data(data) => data.len() + 4,
            _ => 4,
        };
        Ok(Some(packet))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Packet<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let read = self.read();
        self.failed = read.is_err();
        read.transpose()
    }
}

/// Four hex digits, in either case.
fn parse_len(head: &[u8]) -> Option<usize> {
    head.iter().try_fold(0usize, |len, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(len << 4 | usize::from(digit))
    })
}

/// The length header of a packet of `len` bytes (`len` fits four hex digits).
pub(crate) fn header(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend([12, 8, 4, 0].map(|shift| HEX[(len >> shift) & 0xf]));
}

/// Write a text line: `parts` one after the other, then `\n`.
pub(crate) fn text(out: &mut Vec<u8>, parts: &[&[u8]]) -> Result<(), Error> {
    text_in(out, None, parts)
}

/// Write a text line, after a side-band byte when `band` is given (a response with
/// `sideband-all`).
pub(crate) fn text_in(out: &mut Vec<u8>, band: Option<u8>, parts: &[&[u8]]) -> Result<(), Error> {
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + 1 + usize::from(band.is_some());
    if len > MAX_DATA_BYTES {
        return Err(Error::TooLong { at: None, len });
    }
    header(out, len + 4);
    out.extend(band);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.push(b'\n');
    Ok(())
}

/// Run `write` on `out`, leaving `out` as it was if it fails: nothing of a refused
/// message is written.
pub(crate) fn whole(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> Result<(), Error> {
    let start = out.len();
    let result = write(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// A line without its trailing `\n`: receivers treat both alike.
pub(crate) fn chomp(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercase_hex_of_four_digits() {
        for (len, hex) in [(4, b"0004"), (0x1e, b"001e"), (65520, b"fff0"), (0xabcd, b"abcd")] {
            let mut out = Vec::new();
            header(&mut out, len);
            assert_eq!(&out, hex);
            assert_eq!(parse_len(&out), Some(len));
        }
        assert_eq!(parse_len(b"FFF0"), Some(65520));
        assert_eq!(parse_len(b"00g0"), None);
    }

    #[test]
    fn a_text_line_too_long_for_a_band_byte_is_refused() {
        let long = vec![b'a'; MAX_DATA_BYTES - 1];
        let mut out = Vec::new();
        text(&mut out, &[&long]).unwrap();
        assert_eq!(out.len(), MAX_PACKET_BYTES);
        assert_eq!(
            text_in(&mut out, Some(1), &[&long]),
            Err(Error::TooLong {
                at: None,
                len: MAX_DATA_BYTES + 1
            })
        );
    }
}
