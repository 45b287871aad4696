//! A v2 command request: `command=<name>`, capability lines, a delim, the command's
//! arguments, a flush. [`Request::from_bytes`] reads one (a server), [`Request::write_to`]
//! writes one (a client).

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;

use super::Features;
use crate::{
    HashKind,
    remote::{
        AGENT, Error, Hex, Limits, error::show, lines::Lines, parse_id, pkt, pkt::Packet, pkt::whole, ref_name, utf8,
    },
};

/// The depth `git fetch --unshallow` asks for (`deepen 2147483647`): the whole history.
pub const UNSHALLOW_DEPTH: u32 = i32::MAX as u32;

/// A command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's `agent=` (sent only to a server that advertises `agent`).
    pub agent: Option<String>,
    /// The client's `object-format=` (sent only to a server that advertises
    /// `object-format`); only SHA-1 is accepted.
    pub object_format: Option<HashKind>,
    /// The `server-option=` values, in order.
    pub server_options: Vec<String>,
    /// The command, with its arguments.
    pub command: Command,
}

/// A command of a request, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `command=ls-refs`.
    LsRefs(LsRefs),
    /// `command=fetch`.
    Fetch(Fetch),
}

/// The arguments of `ls-refs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsRefs {
    /// `symrefs`: show the target of a symbolic ref.
    pub symrefs: bool,
    /// `peel`: show the object an annotated tag points at.
    pub peel: bool,
    /// `unborn`: show `HEAD` when its branch has no commit yet.
    pub unborn: bool,
    /// `ref-prefix <prefix>`: only refs starting with one of these (all refs when
    /// empty). A server may show more; a client filters for itself.
    pub prefixes: Vec<BString>,
}

/// The arguments of `fetch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// `want <id>`: objects the client wants.
    pub wants: Vec<ObjectId>,
    /// `want-ref <ref>`: refs the client wants, by name (`ref-in-want`).
    pub want_refs: Vec<BString>,
    /// `have <id>`: objects the client has.
    pub haves: Vec<ObjectId>,
    /// `done`: negotiation is over; send the pack.
    pub done: bool,
    /// `thin-pack`: deltas may refer to objects outside the pack that the client has.
    pub thin_pack: bool,
    /// `no-progress`: send nothing on band 2.
    pub no_progress: bool,
    /// `include-tag`: send the annotated tags that point at objects sent.
    pub include_tag: bool,
    /// `ofs-delta`: the client reads deltas against an offset in the pack.
    pub ofs_delta: bool,
    /// `shallow <id>`: commits the client has without their parents.
    pub shallows: Vec<ObjectId>,
    /// How the client wants its history cut.
    pub deepen: Option<Deepen>,
    /// `filter <spec>`: objects to leave out (a partial clone).
    pub filter: Option<Filter>,
    /// `wait-for-done`: never send `ready`; wait for `done`.
    pub wait_for_done: bool,
    /// `sideband-all`: multiplex the whole response, not only the pack.
    pub sideband_all: bool,
}

/// How a shallow fetch cuts history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deepen {
    /// `deepen <depth>`: this many commits from each wanted tip ([`UNSHALLOW_DEPTH`] for
    /// all of them); with `deepen-relative`, this many more than the client's current
    /// shallow boundary.
    Depth {
        /// The depth, at least 1.
        depth: u32,
        /// `deepen-relative`.
        relative: bool,
    },
    /// `deepen-since <time>` and/or `deepen-not <rev>` (which cannot go with `deepen`).
    Cut {
        /// `deepen-since`: no commit older than this time (seconds since the epoch).
        since: Option<u64>,
        /// `deepen-not`: no commit reachable from these revisions (ref names, usually).
        not: Vec<BString>,
    },
}

/// A filter of a partial clone: the specs snapgit serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// `blob:none`: no blobs.
    BlobNone,
    /// `blob:limit=<n>`: no blobs of `n` bytes or more.
    BlobLimit(u64),
    /// `tree:<depth>`: no trees (nor blobs) deeper than `depth` from the root tree
    /// (`tree:0`: no trees).
    TreeDepth(u64),
}

impl Filter {
    /// Parse a filter spec as `git rev-list --filter` takes it, sizes with an optional
    /// `k`, `m` or `g` (1024, 1048576, 1073741824). Other filters are
    /// [`Error::UnsupportedFilter`].
    pub fn from_spec(spec: &str) -> Result<Filter, Error> {
        let unsupported = || Error::UnsupportedFilter {
            spec: show(spec.as_bytes()),
        };
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(limit) = spec.strip_prefix("blob:limit=") {
            return scaled(limit).map(Filter::BlobLimit).ok_or_else(unsupported);
        }
        if let Some(depth) = spec.strip_prefix("tree:") {
            return scaled(depth).map(Filter::TreeDepth).ok_or_else(unsupported);
        }
        Err(unsupported())
    }
}

/// The spec, sizes written out in full (`blob:limit=1024`, never `1k`), as senders
/// should for older receivers.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::BlobNone => f.write_str("blob:none"),
            Filter::BlobLimit(limit) => write!(f, "blob:limit={limit}"),
            Filter::TreeDepth(depth) => write!(f, "tree:{depth}"),
        }
    }
}

/// A number with an optional `k`, `m` or `g`, as git's `git_parse_ulong` reads it.
fn scaled(text: &str) -> Option<u64> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1 << 10),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    decimal(digits.as_bytes())?.checked_mul(factor)
}

/// Decimal digits only (no sign, no spaces), as a `u64`.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Request {
    /// A request for `command` with snapgit's agent and `object-format=sha1`. A client
    /// should clear either for a server whose advertisement lacks `agent` or
    /// `object-format` (git refuses capabilities it did not advertise).
    pub fn new(command: Command) -> Self {
        Request {
            agent: Some(AGENT.to_owned()),
            object_format: Some(HashKind::Sha1),
            server_options: Vec::new(),
            command,
        }
    }

    /// Read a request, for a server that advertised `features`. `None` for the empty
    /// request (a lone flush), with which a client ends a session.
    ///
    /// A command other than `ls-refs` and `fetch`, a capability other than `agent`,
    /// `server-option` and `object-format=sha1`, an argument the command does not take or
    /// whose feature was not offered, an invalid id or ref name, a missing flush, and
    /// bytes after it are each a typed error.
    pub fn from_bytes(bytes: &[u8], features: &Features, limits: &Limits) -> Result<Option<Request>, Error> {
        let mut lines = Lines::request(bytes, limits);
        let mut command = None;
        let mut agent = None;
        let mut object_format = None;
        let mut server_options = Vec::new();
        let mut empty = true;
        let has_arguments = loop {
            let expected = "a command, a capability, a delim-pkt or a flush-pkt";
            let line = match lines.next(expected)? {
                (_, Packet::Delim) => break true,
                (_, Packet::Flush) if empty => {
                    lines.end()?;
                    return Ok(None);
                }
                (_, Packet::Flush) => break false,
                (at, Packet::Data(line)) => (at, line),
                (at, packet) => {
                    return Err(Error::Unexpected {
                        at,
                        expected,
                        found: packet.describe(),
                    });
                }
            };
            empty = false;
            let (at, line) = line;
            if let Some(name) = line.strip_prefix(b"command=") {
                if command.is_some() {
                    return Err(Error::Malformed {
                        at,
                        reason: format!("a second command: {:?}", show(line)),
                    });
                }
                command = Some(name);
            } else if let Some(value) = line.strip_prefix(b"agent=") {
                agent = Some(utf8(at, "agent", value)?);
            } else if let Some(option) = line.strip_prefix(b"server-option=") {
                if option.contains(&0) {
                    return Err(Error::Malformed {
                        at,
                        reason: format!("the server option {:?} contains a NUL", show(option)),
                    });
                }
                server_options.push(utf8(at, "server option", option)?);
            } else if let Some(format) = line.strip_prefix(b"object-format=") {
                if format != b"sha1" {
                    return Err(Error::UnsupportedObjectFormat { format: show(format) });
                }
                object_format = Some(HashKind::Sha1);
            } else {
                return Err(Error::UnknownCapability { capability: show(line) });
            }
        };
        let command = match command {
            Some(b"ls-refs") => Command::LsRefs(LsRefs::parse(&mut lines, has_arguments, features)?),
            Some(b"fetch") => Command::Fetch(Fetch::parse(&mut lines, has_arguments, features)?),
            Some(other) => return Err(Error::UnknownCommand { command: show(other) }),
            None => {
                return Err(Error::Malformed {
                    at: 0,
                    reason: "the request names no command (command=<name>)".into(),
                });
            }
        };
        lines.end()?;
        Ok(Some(Request {
            agent,
            object_format,
            server_options,
            command,
        }))
    }

    /// Write the request, for a client: the command, its capabilities, a delim, its
    /// arguments (in the order git sends them), a flush.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        whole(out, |out| self.write(out))
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let name: &[u8] = match self.command {
            Command::LsRefs(_) => b"ls-refs",
            Command::Fetch(_) => b"fetch",
        };
        pkt::text(out, &[b"command=", name])?;
        if let Some(agent) = &self.agent {
            if agent.is_empty() || !agent.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::InvalidValue {
                    what: "agent",
                    value: show(agent.as_bytes()),
                });
            }
            pkt::text(out, &[b"agent=", agent.as_bytes()])?;
        }
        if let Some(kind) = self.object_format {
            pkt::text(out, &[b"object-format=", kind.to_string().as_bytes()])?;
        }
        for option in &self.server_options {
            if option.contains(['\0', '\n']) {
                return Err(Error::InvalidValue {
                    what: "server option",
                    value: show(option.as_bytes()),
                });
            }
            pkt::text(out, &[b"server-option=", option.as_bytes()])?;
        }
        pkt::delim(out);
        match &self.command {
            Command::LsRefs(ls_refs) => ls_refs.write_arguments(out)?,
            Command::Fetch(fetch) => fetch.write_arguments(out)?,
        }
        pkt::flush(out);
        Ok(())
    }
}

/// The arguments of `command`, one line at a time up to the flush, each given to `each`
/// with its offset; none when the request had no delim.
fn arguments<'a>(
    lines: &mut Lines<'a>,
    has_arguments: bool,
    mut each: impl FnMut(usize, &'a [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    if !has_arguments {
        return Ok(());
    }
    loop {
        let expected = "an argument or a flush-pkt";
        match lines.next(expected)? {
            (_, Packet::Flush) => return Ok(()),
            (at, Packet::Data(line)) => each(at, line)?,
            (at, packet) => {
                return Err(Error::Unexpected {
                    at,
                    expected,
                    found: packet.describe(),
                });
            }
        }
    }
}

/// Text that goes after an argument's name: no NUL, no newline, not empty.
fn check_value(what: &'static str, value: &[u8]) -> Result<(), Error> {
    if value.is_empty() || value.contains(&0) || value.contains(&b'\n') {
        return Err(Error::InvalidValue {
            what,
            value: show(value),
        });
    }
    Ok(())
}

impl LsRefs {
    fn parse(lines: &mut Lines<'_>, has_arguments: bool, features: &Features) -> Result<LsRefs, Error> {
        let mut ls_refs = LsRefs::default();
        arguments(lines, has_arguments, |at, line| {
            match line {
                b"symrefs" => ls_refs.symrefs = true,
                b"peel" => ls_refs.peel = true,
                b"unborn" if features.unborn => ls_refs.unborn = true,
                _ if line.starts_with(b"ref-prefix ") => {
                    let prefix = &line[b"ref-prefix ".len()..];
                    if prefix.contains(&0) {
                        return Err(Error::Malformed {
                            at,
                            reason: format!("the ref prefix {:?} contains a NUL", show(prefix)),
                        });
                    }
                    ls_refs.prefixes.push(prefix.into());
                }
                _ => {
                    return Err(Error::UnknownArgument {
                        command: "ls-refs",
                        argument: show(line),
                    });
                }
            }
            Ok(())
        })?;
        Ok(ls_refs)
    }

    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        for (on, arg) in [(self.peel, "peel"), (self.symrefs, "symrefs"), (self.unborn, "unborn")] {
            if on {
                pkt::text(out, &[arg.as_bytes()])?;
            }
        }
        for prefix in &self.prefixes {
            // An empty prefix matches every ref, and is allowed.
            if !prefix.is_empty() {
                check_value("ref prefix", prefix)?;
            }
            pkt::text(out, &[b"ref-prefix ", prefix])?;
        }
        Ok(())
    }
}

impl Fetch {
    fn parse(lines: &mut Lines<'_>, has_arguments: bool, features: &Features) -> Result<Fetch, Error> {
        let mut fetch = Fetch::default();
        let mut depth = None;
        let mut relative = None;
        let mut since = None;
        let mut not = Vec::new();
        let mut cut_at = None;
        let mut want_refs = std::collections::BTreeSet::new();
        let unknown = |line: &[u8]| Error::UnknownArgument {
            command: "fetch",
            argument: show(line),
        };
        arguments(lines, has_arguments, |at, line| {
            let (name, value) = match line.split_once_str(b" ") {
                Some((name, value)) => (name, Some(value)),
                None => (line, None),
            };
            let invalid = |what: &str| Error::Malformed {
                at,
                reason: format!("invalid {what}: {:?}", show(line)),
            };
            match (name, value) {
                (b"want", Some(id)) => fetch.wants.push(parse_id(at, id)?),
                (b"have", Some(id)) => fetch.haves.push(parse_id(at, id)?),
                (b"done", None) => fetch.done = true,
                (b"thin-pack", None) => fetch.thin_pack = true,
                (b"no-progress", None) => fetch.no_progress = true,
                (b"include-tag", None) => fetch.include_tag = true,
                (b"ofs-delta", None) => fetch.ofs_delta = true,
                (b"want-ref", Some(name)) if features.ref_in_want => {
                    let name = ref_name(name)?;
                    if !want_refs.insert(name.clone()) {
                        return Err(invalid("want-ref, given twice"));
                    }
                    fetch.want_refs.push(name);
                }
                (b"wait-for-done", None) if features.wait_for_done => fetch.wait_for_done = true,
                (b"sideband-all", None) if features.sideband_all => fetch.sideband_all = true,
                (b"shallow", Some(id)) if features.shallow => fetch.shallows.push(parse_id(at, id)?),
                (b"deepen", Some(n)) if features.shallow => {
                    let n = decimal(n)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| (1..=UNSHALLOW_DEPTH).contains(n))
                        .ok_or_else(|| invalid("deepen"))?;
                    depth = Some((at, n));
                }
                (b"deepen-relative", None) if features.shallow => relative = Some(at),
                (b"deepen-since", Some(time)) if features.shallow => {
                    since = Some(decimal(time).ok_or_else(|| invalid("deepen-since"))?);
                    cut_at = Some(at);
                }
                (b"deepen-not", Some(rev)) if features.shallow => {
                    if rev.is_empty() || rev.contains(&0) {
                        return Err(invalid("deepen-not"));
                    }
                    not.push(rev.into());
                    cut_at = Some(at);
                }
                (b"filter", Some(spec)) if features.filter => {
                    if fetch.filter.is_some() {
                        return Err(invalid("filter, given twice"));
                    }
                    let spec = std::str::from_utf8(spec).map_err(|_| Error::UnsupportedFilter { spec: show(spec) })?;
                    fetch.filter = Some(Filter::from_spec(spec)?);
                }
                _ => return Err(unknown(line)),
            }
            Ok(())
        })?;
        fetch.deepen = match (depth, cut_at) {
            (Some((at, _)), Some(_)) => {
                return Err(Error::Malformed {
                    at,
                    reason: "deepen cannot go with deepen-since or deepen-not".into(),
                });
            }
            (Some((_, depth)), None) => Some(Deepen::Depth {
                depth,
                relative: relative.is_some(),
            }),
            (None, Some(_)) if relative.is_none() => Some(Deepen::Cut { since, not }),
            (None, _) => match relative {
                Some(at) => {
                    return Err(Error::Malformed {
                        at,
                        reason: "deepen-relative without deepen".into(),
                    });
                }
                None => None,
            },
        };
        Ok(fetch)
    }

    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        for (on, arg) in [
            (self.thin_pack, "thin-pack"),
            (self.no_progress, "no-progress"),
            (self.include_tag, "include-tag"),
            (self.ofs_delta, "ofs-delta"),
            (self.sideband_all, "sideband-all"),
        ] {
            if on {
                pkt::text(out, &[arg.as_bytes()])?;
            }
        }
        for id in &self.shallows {
            pkt::text(out, &[b"shallow ", Hex::new(id).as_bytes()])?;
        }
        match &self.deepen {
            None => {}
            Some(Deepen::Depth { depth, relative }) => {
                if !(1..=UNSHALLOW_DEPTH).contains(depth) {
                    return Err(Error::InvalidValue {
                        what: "depth",
                        value: depth.to_string(),
                    });
                }
                pkt::text(out, &[b"deepen ", depth.to_string().as_bytes()])?;
                if *relative {
                    pkt::text(out, &[b"deepen-relative"])?;
                }
            }
            Some(Deepen::Cut { since, not }) => {
                if let Some(since) = since {
                    pkt::text(out, &[b"deepen-since ", since.to_string().as_bytes()])?;
                }
                for rev in not {
                    check_value("deepen-not revision", rev)?;
                    pkt::text(out, &[b"deepen-not ", rev])?;
                }
            }
        }
        if let Some(filter) = &self.filter {
            pkt::text(out, &[b"filter ", filter.to_string().as_bytes()])?;
        }
        for id in &self.wants {
            pkt::text(out, &[b"want ", Hex::new(id).as_bytes()])?;
        }
        for name in &self.want_refs {
            ref_name(name)?;
            pkt::text(out, &[b"want-ref ", name])?;
        }
        for id in &self.haves {
            pkt::text(out, &[b"have ", Hex::new(id).as_bytes()])?;
        }
        if self.wait_for_done {
            pkt::text(out, &[b"wait-for-done"])?;
        }
        if self.done {
            pkt::text(out, &[b"done"])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_numbers_read_as_git_reads_them() {
        assert_eq!(scaled("0"), Some(0));
        assert_eq!(scaled("1k"), Some(1024));
        assert_eq!(scaled("2M"), Some(2 << 20));
        assert_eq!(scaled("1g"), Some(1 << 30));
        assert_eq!(scaled("k"), None);
        assert_eq!(scaled(""), None);
        assert_eq!(scaled("-1"), None);
        assert_eq!(scaled("+1"), None);
        assert_eq!(scaled("1 "), None);
        assert_eq!(scaled("18446744073709551615"), Some(u64::MAX));
        assert_eq!(scaled("18446744073709551616"), None);
        assert_eq!(scaled("18014398509481984k"), None);
    }
}
