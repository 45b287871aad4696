//! Protocol v0 for `git-receive-pack` (gitprotocol-pack), what `git push` speaks (git
//! has no push over v2), both sides:
//!
//! - the ref advertisement ([`Advertisement`]): each ref as `<id> <name>`, the
//!   capabilities after a NUL on the first line (`<zero id> capabilities^{}` when there
//!   are no refs), a flush. Over smart HTTP, [`Service::write_header`] goes first.
//! - the push request ([`PushRequest`]): `shallow` lines, the commands `<old> <new>
//!   <ref>` (the client's capabilities after a NUL on the first), a flush, push options
//!   and a flush when `push-options` was chosen, then the pack (none when every command
//!   deletes).
//! - report-status ([`Report`]): `unpack ok` or `unpack <error>`, then `ok <ref>` or
//!   `ng <ref> <reason>` per command, a flush; inside band 1 of side-band-64k (then
//!   followed by the outer flush) when the client chose `side-band-64k`.
//!
//! ```
//! use snapgit_core::{ObjectId, remote::{Capabilities, Limits, http::Service, v0}};
//!
//! let limits = Limits::default();
//! let new = ObjectId::from_hex(b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")?;
//!
//! // GET /info/refs?service=git-receive-pack: an empty repository.
//! let ad = v0::Advertisement { capabilities: v0::capabilities(), ..Default::default() };
//! let mut body = Vec::new();
//! Service::ReceivePack.write_header(&mut body);
//! ad.write_to(&mut body)?;
//! let got = v0::Advertisement::from_bytes(Service::ReceivePack.strip_header(&body)?, &limits)?;
//! assert!(got.refs.is_empty() && got.capabilities.contains("report-status"));
//!
//! // POST /git-receive-pack: create refs/heads/main.
//! let pack = b"PACK\0\0\0\x02\0\0\0\0"; // a real client sends the objects
//! let push = v0::PushRequest {
//!     commands: vec![v0::Command { old: ObjectId::null(new.kind()), new, name: "refs/heads/main".into() }],
//!     capabilities: Capabilities::new(["report-status", "side-band-64k"]),
//!     pack,
//!     ..Default::default()
//! };
//! let mut body = Vec::new();
//! push.write_to(&mut body)?;
//! let got = v0::PushRequest::from_bytes(&body, &ad.capabilities, &limits)?;
//! assert_eq!(got.pack, pack);
//!
//! // The server reports, inside side-band since the client chose it.
//! let report = v0::Report {
//!     unpack: v0::Status::Ok,
//!     refs: vec![v0::RefStatus { name: "refs/heads/main".into(), status: v0::Status::Ok }],
//! };
//! let mut out = Vec::new();
//! report.write_to(&mut out, true)?;
//! assert_eq!(v0::Report::from_bytes(&out, true, &limits)?.0, report);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Service::write_header`]: super::http::Service::write_header

mod report;

pub use report::{RefStatus, Report, Status};

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;

use super::{
    AGENT, Capabilities, Error, Hex, Limits, capabilities::key_of, error::show, lines::Lines, parse_id, pkt,
    pkt::Packet, ref_name, utf8,
};

/// The name of the line that carries the capabilities when there is no ref.
const NO_REFS: &[u8] = b"capabilities^{}";

/// The capabilities a snapgit receive-pack advertises: `report-status`, `delete-refs`,
/// `side-band-64k`, `quiet`, `ofs-delta`, `no-thin` (a pushed pack must hold every base
/// of its deltas), `object-format=sha1` and `agent=snapgit/<version>`.
pub fn capabilities() -> Capabilities {
    Capabilities::new([
        "report-status".to_owned(),
        "delete-refs".to_owned(),
        "side-band-64k".to_owned(),
        "quiet".to_owned(),
        "ofs-delta".to_owned(),
        "no-thin".to_owned(),
        "object-format=sha1".to_owned(),
        format!("agent={AGENT}"),
    ])
}

/// A v0 ref advertisement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertisement {
    /// The refs, `HEAD` first if it is sent, the rest sorted by name.
    pub refs: Vec<AdvertisedRef>,
    /// The server's capabilities.
    pub capabilities: Capabilities,
    /// `shallow <id>`: the server's shallow commits.
    pub shallow: Vec<ObjectId>,
}

/// A ref of a v0 advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedRef {
    /// Its full name.
    pub name: BString,
    /// The object it points at.
    pub id: ObjectId,
    /// For an annotated tag, the object it peels to (sent as `<id> <name>^{}`).
    pub peeled: Option<ObjectId>,
}

impl Advertisement {
    /// Write the advertisement (without the smart-HTTP header): the refs, the
    /// capabilities after a NUL on the first line, the shallow lines, a flush.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        pkt::whole(out, |out| self.write(out))
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let caps = joined(&self.capabilities)?;
        if self.refs.is_empty() {
            let zero = Hex::new(&ObjectId::null(gix_hash::Kind::Sha1));
            pkt::text(out, &[zero.as_bytes(), b" ", NO_REFS, b"\0", &caps])?;
        }
        for (i, r) in self.refs.iter().enumerate() {
            ref_name(&r.name)?;
            let id = Hex::new(&r.id);
            if i == 0 {
                pkt::text(out, &[id.as_bytes(), b" ", &r.name, b"\0", &caps])?;
            } else {
                pkt::text(out, &[id.as_bytes(), b" ", &r.name])?;
            }
            if let Some(peeled) = &r.peeled {
                pkt::text(out, &[Hex::new(peeled).as_bytes(), b" ", &r.name, b"^{}"])?;
            }
        }
        for id in &self.shallow {
            pkt::text(out, &[b"shallow ", Hex::new(id).as_bytes()])?;
        }
        pkt::flush(out);
        Ok(())
    }

    /// Read an advertisement (after the smart-HTTP header: see
    /// [`super::http::Service::strip_header`]), for a client. A `version 1` line first is
    /// allowed; `.have` lines (the tips of the server's alternates) are left out; a
    /// `<name>^{}` line must follow its ref.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Advertisement, Error> {
        let mut lines = Lines::response(bytes, limits, false);
        let mut ad = Advertisement::default();
        let expected = "a ref, a shallow line or a flush-pkt";
        let mut first = true;
        while let Some((at, line)) = lines.line_or_flush(expected)? {
            if first && line == b"version 1" {
                continue;
            }
            let line = if first {
                first = false;
                match line.split_once_str(b"\0") {
                    Some((line, caps)) => {
                        for token in caps.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
                            ad.capabilities.push(utf8(at, "capability", token)?);
                        }
                        line
                    }
                    None => line,
                }
            } else {
                line
            };
            if let Some(id) = line.strip_prefix(b"shallow ") {
                ad.shallow.push(parse_id(at, id)?);
                continue;
            }
            let Some((id, name)) = line.split_once_str(b" ") else {
                return Err(Error::Malformed {
                    at,
                    reason: format!("the ref line {:?} has no name", show(line)),
                });
            };
            let id = parse_id(at, id)?;
            if name == NO_REFS && id.is_null() || name == b".have" {
                continue;
            }
            if let Some(tag) = name.strip_suffix(b"^{}") {
                match ad.refs.last_mut() {
                    Some(last) if last.name == tag && last.peeled.is_none() => last.peeled = Some(id),
                    _ => {
                        return Err(Error::Malformed {
                            at,
                            reason: format!("the peeled {:?} does not follow its ref", show(name)),
                        });
                    }
                }
                continue;
            }
            ad.refs.push(AdvertisedRef {
                name: ref_name(name)?,
                id,
                peeled: None,
            });
        }
        lines.end()?;
        Ok(ad)
    }
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The id the ref has on the server; the zero id to create it.
    pub old: ObjectId,
    /// The id it should get; the zero id to delete it.
    pub new: ObjectId,
    /// The ref's full name, under `refs/`.
    pub name: BString,
}

impl Command {
    /// `true` if the command creates the ref.
    pub fn is_create(&self) -> bool {
        self.old.is_null()
    }

    /// `true` if the command deletes the ref.
    pub fn is_delete(&self) -> bool {
        self.new.is_null()
    }
}

/// A push: the request body of `POST /git-receive-pack`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest<'a> {
    /// `shallow <id>`: the client's shallow commits, sent before the commands.
    pub shallow: Vec<ObjectId>,
    /// The ref updates, in order.
    pub commands: Vec<Command>,
    /// The capabilities the client chose (after the NUL of the first command).
    pub capabilities: Capabilities,
    /// The push options, sent when the client chose `push-options`.
    pub push_options: Vec<String>,
    /// The pack: every object the updates need that the server lacks; empty when every
    /// command deletes.
    pub pack: &'a [u8],
}

impl<'a> PushRequest<'a> {
    /// Read a push, for a server that advertised `advertised`: the commands (at least
    /// one; ref names
    /// checked with git's rules, under `refs/`, each ref once), the capabilities (each
    /// one advertised), the push options, and the rest of `bytes` as the pack, which must
    /// be there (starting with `PACK`) unless every command deletes, and must not be
    /// there then. A delete needs `delete-refs` advertised; push certificates are refused.
    pub fn from_bytes(bytes: &'a [u8], advertised: &Capabilities, limits: &Limits) -> Result<Self, Error> {
        let mut lines = Lines::request(bytes, limits);
        let mut push = PushRequest::default();
        let mut names = std::collections::BTreeSet::new();
        let expected = "a command or a flush-pkt";
        loop {
            let (at, line) = match lines.next(expected)? {
                (at, Packet::Flush) if push.commands.is_empty() => {
                    return Err(Error::Unexpected {
                        at,
                        expected: "a command (a push sends at least one)",
                        found: Packet::Flush.describe(),
                    });
                }
                (_, Packet::Flush) => break,
                (at, Packet::Data(line)) => (at, line),
                (at, packet) => {
                    return Err(Error::Unexpected {
                        at,
                        expected,
                        found: packet.describe(),
                    });
                }
            };
            if push.commands.is_empty()
                && let Some(id) = line.strip_prefix(b"shallow ")
            {
                push.shallow.push(parse_id(at, id)?);
                continue;
            }
            if line.starts_with(b"push-cert") {
                return Err(Error::Malformed {
                    at,
                    reason: "push certificates are not accepted".into(),
                });
            }
            let line = if push.commands.is_empty() {
                match line.split_once_str(b"\0") {
                    Some((line, caps)) => {
                        push.capabilities = chosen(at, caps, advertised)?;
                        line
                    }
                    None => line,
                }
            } else {
                line
            };
            let command = parse_command(at, line)?;
            if command.is_delete() && !advertised.contains("delete-refs") {
                return Err(Error::Malformed {
                    at,
                    reason: format!(
                        "a delete of {:?}, but delete-refs was not advertised",
                        show(&command.name)
                    ),
                });
            }
            if !names.insert(command.name.clone()) {
                return Err(Error::Malformed {
                    at,
                    reason: format!("the ref {:?} is updated twice", show(&command.name)),
                });
            }
            push.commands.push(command);
        }
        if push.capabilities.contains("push-options") {
            let expected = "a push option or a flush-pkt";
            while let Some((at, option)) = lines.line_or_flush(expected)? {
                if option.contains(&0) {
                    return Err(Error::Malformed {
                        at,
                        reason: format!("the push option {:?} contains a NUL", show(option)),
                    });
                }
                push.push_options.push(utf8(at, "push option", option)?);
            }
        }
        let at = lines.at();
        push.pack = lines.rest();
        let needs_pack = push.commands.iter().any(|c| !c.is_delete());
        if needs_pack && !push.pack.starts_with(b"PACK") {
            return Err(Error::Unexpected {
                at,
                expected: "a pack after the commands",
                found: if push.pack.is_empty() {
                    "the end of the input".into()
                } else {
                    format!("{:?}", show(&push.pack[..push.pack.len().min(16)]))
                },
            });
        }
        if !needs_pack && !push.pack.is_empty() {
            return Err(Error::Unexpected {
                at,
                expected: "the end of a push that only deletes",
                found: format!("{} more bytes", push.pack.len()),
            });
        }
        Ok(push)
    }

    /// Write the push, for a client: the shallow lines, the commands (the capabilities,
    /// if any, after a NUL on the first), a flush, the push options and a flush if
    /// `push-options` is among the capabilities, then the pack.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        pkt::whole(out, |out| self.write(out))
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let caps = joined(&self.capabilities)?;
        if self.commands.is_empty() {
            return Err(Error::InvalidValue {
                what: "push",
                value: "no commands (a push sends at least one)".into(),
            });
        }
        let needs_pack = self.commands.iter().any(|c| !c.is_delete());
        if needs_pack == self.pack.is_empty() {
            return Err(Error::InvalidValue {
                what: "pack",
                value: if needs_pack {
                    "none, for a push that creates or updates refs".into()
                } else {
                    "one, for a push that only deletes refs".into()
                },
            });
        }
        let with_options = self.capabilities.contains("push-options");
        if !with_options && !self.push_options.is_empty() {
            return Err(Error::InvalidValue {
                what: "push options",
                value: "without the push-options capability".into(),
            });
        }
        for id in &self.shallow {
            pkt::text(out, &[b"shallow ", Hex::new(id).as_bytes()])?;
        }
        for (i, command) in self.commands.iter().enumerate() {
            check_command(&command.name)?;
            if command.old.is_null() && command.new.is_null() {
                return Err(Error::InvalidValue {
                    what: "command",
                    value: format!("zero ids on both sides for {:?}", show(&command.name)),
                });
            }
            let (old, new) = (Hex::new(&command.old), Hex::new(&command.new));
            let mut parts: Vec<&[u8]> = vec![old.as_bytes(), b" ", new.as_bytes(), b" ", &command.name];
            if i == 0 && !caps.is_empty() {
                parts.extend([b"\0".as_slice(), &caps]);
            }
            pkt::text(out, &parts)?;
        }
        pkt::flush(out);
        if with_options {
            for option in &self.push_options {
                if option.contains(['\0', '\n']) {
                    return Err(Error::InvalidValue {
                        what: "push option",
                        value: show(option.as_bytes()),
                    });
                }
                pkt::text(out, &[option.as_bytes()])?;
            }
            pkt::flush(out);
        }
        out.extend_from_slice(self.pack);
        Ok(())
    }
}

/// Capabilities as v0 lists them: separated by spaces.
fn joined(capabilities: &Capabilities) -> Result<Vec<u8>, Error> {
    let mut caps = Vec::new();
    for (i, token) in capabilities.iter().enumerate() {
        if token.is_empty() || token.contains([' ', '\0', '\n']) {
            return Err(Error::InvalidValue {
                what: "capability",
                value: show(token.as_bytes()),
            });
        }
        if i > 0 {
            caps.push(b' ');
        }
        caps.extend_from_slice(token.as_bytes());
    }
    Ok(caps)
}

/// The capabilities a client chose, each one the server advertised.
fn chosen(at: usize, caps: &[u8], advertised: &Capabilities) -> Result<Capabilities, Error> {
    let mut chosen = Capabilities::default();
    for token in caps.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let token = utf8(at, "capability", token)?;
        if !advertised.contains(key_of(&token)) {
            return Err(Error::UnknownCapability { capability: token });
        }
        chosen.push(token);
    }
    if chosen.contains("side-band") && chosen.contains("side-band-64k") {
        return Err(Error::Malformed {
            at,
            reason: "both side-band and side-band-64k were chosen".into(),
        });
    }
    Ok(chosen)
}

/// `<old> <new> <name>`.
fn parse_command(at: usize, line: &[u8]) -> Result<Command, Error> {
    let mut fields = line.splitn(3, |&b| b == b' ');
    let (Some(old), Some(new), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(Error::Malformed {
            at,
            reason: format!("the command {:?} is not <old> <new> <ref>", show(line)),
        });
    };
    let command = Command {
        old: parse_id(at, old)?,
        new: parse_id(at, new)?,
        name: check_command(name)?,
    };
    if command.old.is_null() && command.new.is_null() {
        return Err(Error::Malformed {
            at,
            reason: format!("the command {:?} has zero ids on both sides", show(line)),
        });
    }
    Ok(command)
}

/// A ref a push may name: valid, under `refs/` (as git's receive-pack requires), and
/// UTF-8 (git allows any bytes, but a store's refs are names of text: a name read
/// lossily would update another ref than the one the client named).
fn check_command(name: &[u8]) -> Result<BString, Error> {
    let name = ref_name(name)?;
    if !name.starts_with(b"refs/") {
        return Err(Error::InvalidRefName {
            name: show(&name),
            reason: "a pushed ref must be under refs/".into(),
        });
    }
    if std::str::from_utf8(&name).is_err() {
        return Err(Error::InvalidRefName {
            name: show(&name),
            reason: "a pushed ref must be UTF-8".into(),
        });
    }
    Ok(name)
}
