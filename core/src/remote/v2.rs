//! Protocol v2 (gitprotocol-v2), for `git-upload-pack`: what `git fetch`, `git clone`
//! and `git ls-remote` speak, both sides.
//!
//! - The capability advertisement ([`advertise`], [`parse_advertisement`]): `version 2`,
//!   then one capability per line, then a flush. Over smart HTTP it is the whole answer
//!   to `GET /info/refs?service=git-upload-pack` with `Git-Protocol: version=2`, with no
//!   `# service=` header (as git's `http-backend` sends it; a client accepts one).
//! - A command request ([`Request`]): `command=<name>`, capability lines, a delim, the
//!   command's arguments, a flush. One per `POST /git-upload-pack`.
//! - The responses: a ref listing for `ls-refs` ([`write_refs`], [`parse_refs`]), and
//!   for `fetch` either acknowledgments alone (negotiation goes on) or the sections
//!   before a pack and the pack in side-band ([`FetchResponse`]).
//!
//! What a server offers beyond the base commands is one [`Features`] value, which both
//! the advertisement and the request parser follow: an argument of a feature not offered
//! is refused.

mod request;
mod response;

pub use request::{Command, Deepen, Fetch, Filter, LsRefs, Request, UNSHALLOW_DEPTH};
pub use response::{FetchResponse, PackResponse, Ref, ShallowInfo, WantedRef, parse_refs, write_refs};

use super::{
    AGENT, Capabilities, Error, Limits,
    error::show,
    lines::Lines,
    pkt::{self, Packet},
};

/// What a server offers beyond the base `ls-refs` and `fetch`: the features its
/// advertisement names and its request parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `ls-refs=unborn`: `unborn HEAD symref-target:<branch>` for a `HEAD` whose branch
    /// has no commit yet.
    pub unborn: bool,
    /// `fetch=shallow`: `shallow`, `deepen`, `deepen-relative`, `deepen-since` and
    /// `deepen-not`, and the `shallow-info` section.
    pub shallow: bool,
    /// `fetch=filter`: `filter <spec>`, for partial clones.
    pub filter: bool,
    /// `fetch=ref-in-want`: `want-ref <ref>`, and the `wanted-refs` section.
    pub ref_in_want: bool,
    /// `fetch=sideband-all`: the whole response multiplexed, not only the pack.
    pub sideband_all: bool,
    /// `fetch=wait-for-done`: the client may ask the server never to send `ready`.
    pub wait_for_done: bool,
}

impl Default for Features {
    /// `ls-refs=unborn`, `fetch=shallow filter`.
    fn default() -> Self {
        Features {
            unborn: true,
            shallow: true,
            filter: true,
            ref_in_want: false,
            sideband_all: false,
            wait_for_done: false,
        }
    }
}

/// Write the capability advertisement: `version 2`, `agent=snapgit/<version>`,
/// `ls-refs` and `fetch` with the features offered, `server-option`,
/// `object-format=sha1`, then a flush.
///
/// ```
/// use snapgit_core::remote::v2;
///
/// let mut out = Vec::new();
/// v2::advertise(&mut out, &v2::Features::default());
/// assert!(out.starts_with(b"000eversion 2\n"));
/// assert!(out.ends_with(b"0013ls-refs=unborn\n0019fetch=shallow filter\n0012server-option\n0017object-format=sha1\n0000"));
/// ```
pub fn advertise(out: &mut Vec<u8>, features: &Features) {
    let fetch: Vec<&str> = [
        (features.shallow, "shallow"),
        (features.wait_for_done, "wait-for-done"),
        (features.filter, "filter"),
        (features.ref_in_want, "ref-in-want"),
        (features.sideband_all, "sideband-all"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let fetch = if fetch.is_empty() {
        "fetch".to_owned()
    } else {
        format!("fetch={}", fetch.join(" "))
    };
    let ls_refs = if features.unborn { "ls-refs=unborn" } else { "ls-refs" };
    let agent = format!("agent={AGENT}");
    for line in [
        "version 2",
        &agent,
        ls_refs,
        &fetch,
        "server-option",
        "object-format=sha1",
    ] {
        pkt::text(out, &[line.as_bytes()]).expect("a capability fits a line");
    }
    pkt::flush(out);
}

/// Read a server's capability advertisement, for a client: an optional `# service=`
/// header (which some servers send even for v2), `version 2`, the capabilities, a flush.
/// Another first line (a v0 ref advertisement) is [`Error::UnsupportedVersion`].
pub fn parse_advertisement(bytes: &[u8], limits: &Limits) -> Result<Capabilities, Error> {
    let mut lines = Lines::response(bytes, limits, false);
    let (at, mut first) = lines.next("version 2")?;
    if let Packet::Data(line) = first
        && line.starts_with(b"# service=")
    {
        if line != b"# service=git-upload-pack" {
            return Err(Error::Malformed {
                at,
                reason: format!("the advertisement is for {:?}", show(line)),
            });
        }
        while lines.next("a flush-pkt after the # service= line")?.1 != Packet::Flush {}
        first = lines.next("version 2")?.1;
    }
    if first != Packet::Data(b"version 2") {
        return Err(Error::UnsupportedVersion {
            expected: "version 2",
            found: match first {
                Packet::Data(line) => show(line),
                other => other.describe(),
            },
        });
    }
    let mut capabilities = Capabilities::default();
    while let Some((at, line)) = lines.line_or_flush("a capability or a flush-pkt")? {
        let token = super::utf8(at, "capability", line)?;
        let key = super::capabilities::key_of(&token);
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::Malformed {
                at,
                reason: format!("the capability {token:?} has an invalid key"),
            });
        }
        capabilities.push(token);
    }
    lines.end()?;
    Ok(capabilities)
}
