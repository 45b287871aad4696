//! The responses of v2's commands: the ref listing of `ls-refs`, and the sections of a
//! `fetch` response with the pack in side-band.

use bstr::BString;
use gix_hash::ObjectId;

use super::LsRefs;
use crate::remote::{
    Error, Hex, Limits,
    error::show,
    lines::Lines,
    parse_id, pkt,
    pkt::Packet,
    ref_name,
    sideband::{self, Band, Demuxed},
};

/// Git ignores the prefixes of an `ls-refs` that sends this many or more, and lists
/// every ref.
const TOO_MANY_PREFIXES: usize = 65536;

/// A ref of an `ls-refs` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Its full name (`HEAD`, `refs/heads/main`).
    pub name: BString,
    /// The object it points at; `None` for an unborn `HEAD` (a branch without commits).
    pub id: Option<ObjectId>,
    /// The ref a symbolic ref points at (`refs/heads/main` for `HEAD`).
    pub symref_target: Option<BString>,
    /// The object an annotated tag points at, peeled to a non-tag.
    pub peeled: Option<ObjectId>,
}

/// Write an `ls-refs` listing of `refs` as `request` asks: only refs under one of its
/// prefixes (all when there are none, or more than git takes), symref targets only with
/// `symrefs`, peeled ids only with `peel`, an unborn `HEAD` only with `unborn` and
/// `symrefs` (as git does); then a flush.
///
/// ```
/// use snapgit_core::{ObjectId, remote::v2::{self, LsRefs, Ref}};
///
/// let id = ObjectId::from_hex(b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")?;
/// let refs = [
///     Ref { name: "HEAD".into(), id: Some(id), symref_target: Some("refs/heads/main".into()), peeled: None },
///     Ref { name: "refs/heads/main".into(), id: Some(id), symref_target: None, peeled: None },
/// ];
/// let request = LsRefs { symrefs: true, ..Default::default() };
/// let mut out = Vec::new();
/// v2::write_refs(&mut out, &request, &refs)?;
/// assert_eq!(
///     out,
///     b"0050e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 HEAD symref-target:refs/heads/main\n\
///       003de69de29bb2d1d6434b8b29ae775ad8c2e48c5391 refs/heads/main\n\
///       0000"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_refs(out: &mut Vec<u8>, request: &LsRefs, refs: &[Ref]) -> Result<(), Error> {
    pkt::whole(out, |out| write_listing(out, request, refs))
}

fn write_listing(out: &mut Vec<u8>, request: &LsRefs, refs: &[Ref]) -> Result<(), Error> {
    let prefixes = if request.prefixes.len() >= TOO_MANY_PREFIXES {
        &[][..]
    } else {
        &request.prefixes[..]
    };
    for r in refs {
        if !prefixes.is_empty() && !prefixes.iter().any(|p| r.name.starts_with(p)) {
            continue;
        }
        let target = r.symref_target.as_ref().filter(|_| request.symrefs);
        let id = match &r.id {
            Some(id) => Some(Hex::new(id)),
            None if request.unborn && target.is_some() => None,
            None => continue,
        };
        let peeled = r
            .peeled
            .as_ref()
            .filter(|_| request.peel && r.id.is_some())
            .map(|p| Hex::new(p));
        ref_name(&r.name)?;
        let mut parts: Vec<&[u8]> = vec![id.as_ref().map_or(b"unborn", Hex::as_bytes), b" ", &r.name];
        if let Some(target) = target {
            ref_name(target)?;
            parts.extend([b" symref-target:".as_slice(), target]);
        }
        if let Some(peeled) = &peeled {
            parts.extend([b" peeled:".as_slice(), peeled.as_bytes()]);
        }
        pkt::text(out, &parts)?;
    }
    pkt::flush(out);
    Ok(())
}

/// Read an `ls-refs` listing, for a client: one ref per line, then a flush. Names are
/// checked with git's rules; attributes other than `symref-target:` and `peeled:` are
/// ignored, as git's client does.
pub fn parse_refs(bytes: &[u8], limits: &Limits) -> Result<Vec<Ref>, Error> {
    let mut lines = Lines::response(bytes, limits, false);
    let mut refs = Vec::new();
    while let Some((at, line)) = lines.line_or_flush("a ref or a flush-pkt")? {
        refs.push(parse_ref(at, line)?);
    }
    lines.end()?;
    Ok(refs)
}

fn parse_ref(at: usize, line: &[u8]) -> Result<Ref, Error> {
    let mut fields = line.split(|&b| b == b' ');
    let id = match fields.next() {
        Some(b"unborn") => None,
        Some(hex) => Some(parse_id(at, hex)?),
        None => None,
    };
    let Some(name) = fields.next() else {
        return Err(Error::Malformed {
            at,
            reason: format!("the ref line {:?} has no name", show(line)),
        });
    };
    let mut r = Ref {
        name: ref_name(name)?,
        id,
        symref_target: None,
        peeled: None,
    };
    for attribute in fields {
        if let Some(target) = attribute.strip_prefix(b"symref-target:") {
            r.symref_target = Some(ref_name(target)?);
        } else if let Some(peeled) = attribute.strip_prefix(b"peeled:") {
            r.peeled = Some(parse_id(at, peeled)?);
        }
    }
    if r.id.is_none() && r.symref_target.is_none() {
        return Err(Error::Malformed {
            at,
            reason: format!("the unborn ref {:?} has no symref-target", show(name)),
        });
    }
    Ok(r)
}

/// A response to `fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResponse {
    /// Negotiation goes on: the acknowledgments section alone, `ACK` for each `have` in
    /// common (`NAK` when there is none), then a flush. The client sends more haves.
    Acknowledgments {
        /// The haves in common.
        common: Vec<ObjectId>,
    },
    /// The pack, after the sections that go before it.
    Pack(PackResponse),
}

/// A fetch response that carries the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackResponse {
    /// The acknowledgments section, which then ends in `ready`: the haves in common
    /// (`NAK` when none). `None` leaves the section out, as it must be when the client
    /// sent `done`.
    pub acknowledgments: Option<Vec<ObjectId>>,
    /// The shallow-info section, for a shallow fetch or a shallow client.
    pub shallow_info: Option<ShallowInfo>,
    /// The wanted-refs section (left out when empty): the refs the client asked for with
    /// `want-ref`, resolved.
    pub wanted_refs: Vec<WantedRef>,
    /// The pack, sent on band 1.
    pub pack: Vec<u8>,
    /// Progress messages, sent on band 2 before the pack (none when the client sent
    /// `no-progress`). A client reads every band-2 message here.
    pub progress: Vec<u8>,
}

impl PackResponse {
    /// A response carrying `pack` and nothing else.
    pub fn new(pack: Vec<u8>) -> Self {
        PackResponse {
            acknowledgments: None,
            shallow_info: None,
            wanted_refs: Vec::new(),
            pack,
            progress: Vec::new(),
        }
    }
}

/// The shallow-info section of a fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShallowInfo {
    /// `shallow <id>`: commits whose parents the pack leaves out.
    pub shallow: Vec<ObjectId>,
    /// `unshallow <id>`: commits the client said were shallow whose parents the pack
    /// now brings.
    pub unshallow: Vec<ObjectId>,
}

/// A ref of the wanted-refs section: what a `want-ref` resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRef {
    /// The object the ref points at.
    pub id: ObjectId,
    /// The ref's full name.
    pub name: BString,
}

impl FetchResponse {
    /// Write the response, for a server: sections separated by delim-pkts, the pack in
    /// side-band-64k packets, a flush at the end. With `sideband_all` (the client asked
    /// for it), every line goes on band 1 too.
    pub fn write_to(&self, out: &mut Vec<u8>, sideband_all: bool) -> Result<(), Error> {
        pkt::whole(out, |out| self.write(out, sideband_all))
    }

    fn write(&self, out: &mut Vec<u8>, sideband_all: bool) -> Result<(), Error> {
        let band = sideband_all.then_some(Band::Data as u8);
        let text = |out: &mut Vec<u8>, parts: &[&[u8]]| pkt::text_in(out, band, parts);
        let acknowledgments = |out: &mut Vec<u8>, common: &[ObjectId]| {
            text(out, &[b"acknowledgments"])?;
            if common.is_empty() {
                text(out, &[b"NAK"])?;
            }
            for id in common {
                text(out, &[b"ACK ", Hex::new(id).as_bytes()])?;
            }
            Ok::<_, Error>(())
        };
        let response = match self {
            FetchResponse::Acknowledgments { common } => {
                acknowledgments(out, common)?;
                pkt::flush(out);
                return Ok(());
            }
            FetchResponse::Pack(response) => response,
        };
        if let Some(common) = &response.acknowledgments {
            acknowledgments(out, common)?;
            text(out, &[b"ready"])?;
            pkt::delim(out);
        }
        if let Some(info) = &response.shallow_info {
            text(out, &[b"shallow-info"])?;
            for id in &info.shallow {
                text(out, &[b"shallow ", Hex::new(id).as_bytes()])?;
            }
            for id in &info.unshallow {
                text(out, &[b"unshallow ", Hex::new(id).as_bytes()])?;
            }
            pkt::delim(out);
        }
        if !response.wanted_refs.is_empty() {
            text(out, &[b"wanted-refs"])?;
            for wanted in &response.wanted_refs {
                ref_name(&wanted.name)?;
                text(out, &[Hex::new(&wanted.id).as_bytes(), b" ", &wanted.name])?;
            }
            pkt::delim(out);
        }
        text(out, &[b"packfile"])?;
        sideband::write(out, Band::Progress, &response.progress);
        sideband::write(out, Band::Data, &response.pack);
        pkt::flush(out);
        Ok(())
    }

    /// Read a response, for a client (`sideband_all` if it asked for it): the sections
    /// in their order, `ready` exactly when a pack follows, the pack out of its
    /// side-band. An `ERR` line or a band-3 message is [`Error::Remote`]; a
    /// response-end-pkt after the final flush is allowed.
    pub fn from_bytes(bytes: &[u8], sideband_all: bool, limits: &Limits) -> Result<FetchResponse, Error> {
        let mut lines = Lines::response(bytes, limits, sideband_all);
        let mut response = PackResponse::new(Vec::new());
        // Sections come in this order, each at most once.
        let mut stage = 0;
        loop {
            let (at, header) = lines.line("a section header")?;
            match header {
                b"acknowledgments" if stage < 1 => {
                    stage = 1;
                    match read_acknowledgments(&mut lines)? {
                        (common, false) => {
                            lines.end()?;
                            return Ok(FetchResponse::Acknowledgments { common });
                        }
                        (common, true) => response.acknowledgments = Some(common),
                    }
                }
                b"shallow-info" if stage < 2 => {
                    stage = 2;
                    let mut info = ShallowInfo::default();
                    section(&mut lines, "a shallow or unshallow line", |at, line| {
                        if let Some(id) = line.strip_prefix(b"shallow ") {
                            info.shallow.push(parse_id(at, id)?);
                        } else if let Some(id) = line.strip_prefix(b"unshallow ") {
                            info.unshallow.push(parse_id(at, id)?);
                        } else {
                            return Err(unexpected_line(at, "a shallow or unshallow line", line));
                        }
                        Ok(())
                    })?;
                    response.shallow_info = Some(info);
                }
                b"wanted-refs" if stage < 3 => {
                    stage = 3;
                    section(&mut lines, "a wanted ref", |at, line| {
                        let Some((id, name)) = line
                            .split_at_checked(40)
                            .filter(|(_, rest)| rest.first() == Some(&b' '))
                        else {
                            return Err(unexpected_line(at, "a wanted ref", line));
                        };
                        response.wanted_refs.push(WantedRef {
                            id: parse_id(at, id)?,
                            name: ref_name(&name[1..])?,
                        });
                        Ok(())
                    })?;
                }
                b"packfile" => {
                    let mut got = Demuxed {
                        data: Vec::new(),
                        progress: std::mem::take(&mut lines.progress),
                    };
                    sideband::demux_into(lines.reader(), &mut got)?;
                    lines.end()?;
                    response.pack = got.data;
                    response.progress = got.progress;
                    return Ok(FetchResponse::Pack(response));
                }
                _ => return Err(unexpected_line(at, "a section header (in order)", header)),
            }
        }
    }
}

/// The lines of the acknowledgments section after its header, and whether it ended in
/// `ready` (then with a delim, a pack following) or not (then with a flush).
fn read_acknowledgments(lines: &mut Lines<'_>) -> Result<(Vec<ObjectId>, bool), Error> {
    let mut common = Vec::new();
    let mut nak = false;
    let mut ready = false;
    loop {
        let expected = "ACK, NAK, ready, a delim-pkt or a flush-pkt";
        match lines.next(expected)? {
            (at, Packet::Data(line)) if !ready => {
                if line == b"NAK" && common.is_empty() {
                    nak = true;
                } else if line == b"ready" {
                    ready = true;
                } else if let Some(id) = line.strip_prefix(b"ACK ").filter(|_| !nak) {
                    common.push(parse_id(at, id)?);
                } else {
                    return Err(unexpected_line(at, expected, line));
                }
            }
            (_, Packet::Delim) if ready => return Ok((common, true)),
            (_, Packet::Flush) if !ready => return Ok((common, false)),
            (at, packet) => {
                return Err(Error::Unexpected {
                    at,
                    expected: if ready {
                        "a delim-pkt and the pack after ready"
                    } else {
                        "a flush-pkt (sections after acknowledgments need ready)"
                    },
                    found: packet.describe(),
                });
            }
        }
    }
}

/// The lines of a section after its header, up to the delim that ends it (a pack
/// always follows these sections).
fn section<'a>(
    lines: &mut Lines<'a>,
    expected: &'static str,
    mut each: impl FnMut(usize, &'a [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    loop {
        match lines.next(expected)? {
            (_, Packet::Delim) => return Ok(()),
            (at, Packet::Data(line)) => each(at, line)?,
            (at, packet) => {
                return Err(Error::Unexpected {
                    at,
                    expected: "a delim-pkt before the next section",
                    found: packet.describe(),
                });
            }
        }
    }
}

fn unexpected_line(at: usize, expected: &'static str, line: &[u8]) -> Error {
    Error::Unexpected {
        at,
        expected,
        found: format!("the line {:?}", show(line)),
    }
}
