//! The git wire protocol's codecs, for a smart-HTTP server and client: bytes in, typed
//! values out, and back; no IO.
//!
//! - [`pkt`]: pkt-line framing (gitprotocol-common): data lines, flush `0000`, delim
//!   `0001`, response-end `0002`, and a [`pkt::Reader`] over a buffer.
//! - [`sideband`]: side-band-64k multiplexing: pack data on band 1, progress on band 2, a
//!   fatal error on band 3, and the demultiplexer a client reads them with.
//! - [`http`]: smart HTTP (gitprotocol-http): service names, content types, the
//!   `# service=` first packet, and the version a `Git-Protocol` header asks for.
//! - [`v2`]: protocol v2 (gitprotocol-v2), what `git fetch` and `git ls-remote` speak:
//!   the capability advertisement, `ls-refs` and `fetch` requests, and their responses,
//!   for both sides.
//! - [`refs`], [`upload`], [`receive`]: the operations that serve a repo of the store as
//!   a remote: its refs as a client sees them, a fetch (what the client lacks, as a pack),
//!   and a push (the pack checked and stored, each ref compare-and-swapped).
//! - [`v0`]: protocol v0 for `git-receive-pack` (gitprotocol-pack), what `git push`
//!   speaks (push has no v2): the ref advertisement, the push request with its pack, and
//!   report-status, for both sides.
//!
//! A fetch is served only over v2: a `GET /info/refs?service=git-upload-pack` without
//! `Git-Protocol: version=2` can be answered with [`http::Service::write_header`] and
//! [`write_error`], which git shows as `remote error: <message>`.
//!
//! Every decoder takes the whole message as a byte slice and bounds its work by
//! [`Limits`]; hostile input is a typed [`Error`] naming the offset and the offending
//! value, never a panic. Every encoder appends to a `Vec<u8>`, and one that refuses its
//! input (a ref name git would refuse, a value with a newline) leaves it as it was.
//! Object ids are SHA-1 (`object-format=sha1`).
//!
//! Not implemented, and not advertised: v2's `packfile-uris`, `object-info`,
//! `bundle-uri` and `session-id`; v0's `report-status-v2`, `atomic` and push
//! certificates; v0 fetch (`multi_ack` negotiation).
//!
//! A fetch over smart HTTP, both sides:
//!
//! ```
//! use snapgit_core::{ObjectId, remote::{Limits, v2}};
//!
//! let limits = Limits::default();
//! let tip = ObjectId::from_hex(b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")?;
//!
//! // GET /info/refs?service=git-upload-pack, Git-Protocol: version=2
//! let mut advertisement = Vec::new();
//! v2::advertise(&mut advertisement, &v2::Features::default());
//! let capabilities = v2::parse_advertisement(&advertisement, &limits)?;
//! assert!(capabilities.supports("fetch", "shallow"));
//!
//! // POST /git-upload-pack: the client asks for `tip`, the server reads the request...
//! let fetch = v2::Fetch { wants: vec![tip], done: true, ofs_delta: true, ..Default::default() };
//! let mut body = Vec::new();
//! v2::Request::new(v2::Command::Fetch(fetch)).write_to(&mut body)?;
//! let request = v2::Request::from_bytes(&body, &v2::Features::default(), &limits)?;
//! let Some(v2::Request { command: v2::Command::Fetch(fetch), .. }) = request else { unreachable!() };
//! assert_eq!(fetch.wants, vec![tip]);
//!
//! // ...and answers with a pack, which the client takes out of the side-band.
//! let pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec(); // a real server sends a whole pack
//! let response = v2::FetchResponse::Pack(v2::PackResponse::new(pack.clone()));
//! let mut out = Vec::new();
//! response.write_to(&mut out, false)?;
//! let v2::FetchResponse::Pack(got) = v2::FetchResponse::from_bytes(&out, false, &limits)? else { unreachable!() };
//! assert_eq!(got.pack, pack);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ancestry;
mod capabilities;
pub mod client;
mod error;
pub mod http;
mod lines;
mod op_error;
pub mod pkt;
pub(crate) mod promised;
pub mod receive;
pub mod refs;
pub mod sideband;
pub mod upload;
pub mod v0;
pub mod v2;

pub use capabilities::Capabilities;
pub use error::Error;
pub use op_error::OpError;

/// The agent snapgit names itself with (`agent=snapgit/<version>`).
pub const AGENT: &str = concat!("snapgit/", env!("CARGO_PKG_VERSION"));

/// Bounds on what one decoder reads, so that no message makes it work or allocate
/// without bound.
///
/// They count the pkt-lines of a message: the lines of a request, an advertisement, a ref
/// listing or a report. The pack a push carries after its commands, and the side-band
/// packets of a fetch response's pack, are not counted: they are bounded by the size of
/// the input, which the caller chose to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most data lines one message may hold (wants, haves, refs, commands...).
    pub max_lines: usize,
    /// The most bytes those lines may take, headers included.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lines: 1_000_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Write an `ERR <message>` line: a fatal error git shows as `remote error: <message>`,
/// wherever it reads a pkt-line (after the `# service=` header of a smart-HTTP
/// advertisement, for one). A message that does not fit one line is cut; newlines in it
/// become spaces.
pub fn write_error(out: &mut Vec<u8>, message: &str) {
    let mut text: Vec<u8> = message.bytes().map(|b| if b == b'\n' { b' ' } else { b }).collect();
    text.truncate(pkt::MAX_DATA_BYTES - "ERR \n".len());
    pkt::text(out, &[b"ERR ", &text]).expect("the message was cut to fit one line");
}

/// The message of an `ERR` line, for a client reading the remote's answer.
pub(crate) fn remote_error(line: &[u8]) -> Option<Error> {
    line.strip_prefix(b"ERR ").map(|message| Error::Remote {
        message: String::from_utf8_lossy(message).into_owned(),
    })
}

/// The id of the full SHA-1 hex `hex`, in either case, from the line at `at`.
pub(crate) fn parse_id(at: usize, hex: &[u8]) -> Result<gix_hash::ObjectId, Error> {
    if hex.len() == gix_hash::Kind::Sha1.len_in_hex()
        && let Some(id) = crate::id::from_hex(hex)
    {
        return Ok(id);
    }
    Err(Error::InvalidId {
        at,
        value: error::show(hex),
    })
}

/// A ref name git's `check-ref-format` accepts (`HEAD` too), as a `BString`.
pub(crate) fn ref_name(name: &[u8]) -> Result<bstr::BString, Error> {
    use bstr::ByteSlice;
    match gix_validate::reference::name(name.as_bstr()) {
        Ok(_) => Ok(name.into()),
        Err(err) => Err(Error::InvalidRefName {
            name: error::show(name),
            reason: err.to_string(),
        }),
    }
}

/// The hex of an id, without allocating.
pub(crate) struct Hex {
    buf: [u8; 64],
    len: usize,
}

impl Hex {
    pub(crate) fn new(id: &gix_hash::oid) -> Self {
        let mut buf = [0u8; 64];
        let len = id.hex_to_buf(&mut buf).len();
        Hex { buf, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A value of a line that must be UTF-8 (an agent, an option, a capability).
pub(crate) fn utf8(at: usize, what: &'static str, value: &[u8]) -> Result<String, Error> {
    match std::str::from_utf8(value) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(Error::Malformed {
            at,
            reason: format!("the {what} {:?} is not UTF-8", error::show(value)),
        }),
    }
}
