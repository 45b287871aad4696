//! Side-band-64k (gitprotocol-pack, "Packfile Data"): each pkt-line carries one band
//! byte, then up to [`MAX_DATA_BYTES`]: band 1 the data (a pack, or a push's report),
//! band 2 progress for the user, band 3 a fatal error just before the stream ends.
//!
//! ```
//! use snapgit_core::remote::{pkt::{self, Reader}, sideband::{self, Band}};
//!
//! let mut out = Vec::new();
//! sideband::write(&mut out, Band::Progress, b"Counting objects: 1, done.\n");
//! sideband::write(&mut out, Band::Data, b"PACK");
//! pkt::flush(&mut out);
//! assert_eq!(&out[..5], b"0020\x02");
//!
//! let got = sideband::demux(&mut Reader::new(&out))?;
//! assert_eq!(got.data, b"PACK");
//! assert_eq!(got.progress, b"Counting objects: 1, done.\n");
//! # Ok::<(), snapgit_core::remote::Error>(())
//! ```

use super::{
    Error,
    pkt::{self, Packet, Reader},
};

/// The most data bytes one side-band-64k packet carries: a pkt-line's payload less the
/// band byte.
pub const MAX_DATA_BYTES: usize = pkt::MAX_DATA_BYTES - 1;

/// A side-band channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// 1: the data.
    Data = 1,
    /// 2: progress messages, which a client shows on stderr.
    Progress = 2,
    /// 3: a fatal error, just before the stream ends.
    Error = 3,
}

/// Write `data` on `band`, in packets of at most [`MAX_DATA_BYTES`]. Nothing is written
/// for empty `data`.
pub fn write(out: &mut Vec<u8>, band: Band, data: &[u8]) {
    for chunk in data.chunks(MAX_DATA_BYTES) {
        pkt::header(out, chunk.len() + 5);
        out.push(band as u8);
        out.extend_from_slice(chunk);
    }
}

/// What a side-band stream carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demuxed {
    /// Band 1, the packets' data joined.
    pub data: Vec<u8>,
    /// Band 2, the progress messages joined as they came (git's carry `\r` and `\n`).
    pub progress: Vec<u8>,
}

/// Read side-band packets up to and including the flush-pkt that ends them. A message
/// on band 3 is the remote's error ([`Error::Remote`]); the end of the input before the
/// flush is [`Error::Unexpected`].
pub fn demux(reader: &mut Reader<'_>) -> Result<Demuxed, Error> {
    let mut got = Demuxed::default();
    demux_into(reader, &mut got)?;
    Ok(got)
}

/// [`demux`] into `got`, which may hold progress read before.
pub(crate) fn demux_into(reader: &mut Reader<'_>, got: &mut Demuxed) -> Result<(), Error> {
    loop {
        let at = reader.offset();
        match reader.read()? {
            Some(Packet::Data(data)) => match split(at, data)? {
                (Band::Data, payload) => got.data.extend_from_slice(payload),
                (Band::Progress, payload) => got.progress.extend_from_slice(payload),
                (Band::Error, payload) => return Err(remote(payload)),
            },
            Some(Packet::Flush) => return Ok(()),
            Some(packet) => {
                return Err(Error::Unexpected {
                    at,
                    expected: "a side-band packet or a flush-pkt",
                    found: packet.describe(),
                });
            }
            None => {
                return Err(Error::Unexpected {
                    at,
                    expected: "a side-band packet or a flush-pkt",
                    found: "the end of the input".into(),
                });
            }
        }
    }
}

/// The band and payload of a side-band packet starting at `at`.
pub(crate) fn split(at: usize, data: &[u8]) -> Result<(Band, &[u8]), Error> {
    let band = match data.first() {
        Some(1) => Band::Data,
        Some(2) => Band::Progress,
        Some(3) => Band::Error,
        Some(other) => {
            return Err(Error::Malformed {
                at,
                reason: format!("unknown side-band {other}"),
            });
        }
        None => {
            return Err(Error::Malformed {
                at,
                reason: "a side-band packet without a band byte".into(),
            });
        }
    };
    Ok((band, &data[1..]))
}

/// The remote's error from its band-3 message.
pub(crate) fn remote(message: &[u8]) -> Error {
    Error::Remote {
        message: String::from_utf8_lossy(pkt::chomp(message)).into_owned(),
    }
}
