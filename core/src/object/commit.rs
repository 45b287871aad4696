//! Commits in git's text format: parsing and encoding, without gix-object's parser.
//!
//! The parser follows the layout git writes (and gix-object reads): `tree`, `parent`s,
//! `author`, `committer`, an optional `encoding`, extra headers (single-line, or
//! multi-line with continuation lines that start with a space), a blank line and the
//! message. It splits the fields; whether the bytes are canonical is decided by
//! encoding the parsed commit again and comparing, in [`super::parse`].

use bstr::BString;
use gix_actor::Signature;
use gix_hash::ObjectId;
use gix_object::Commit;

use super::push_decimal;

/// Why a commit cannot be written in git's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwritable {
    /// A name or an email contains `<`, `>` or a newline.
    Token,
    /// A time zone offset beyond what git writes (`±9959`).
    Offset,
    /// The `encoding` header is empty or holds a newline.
    Encoding,
}

impl Unwritable {
    /// What is wrong, in words.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unwritable::Token => "a name or email contains '<', '>' or a newline",
            Unwritable::Offset => "a time zone offset is beyond what git writes (+-9959)",
            Unwritable::Encoding => "the encoding header is empty or holds a newline",
        }
    }
}

/// The number of bytes [`encode`] writes for `commit`, if it can be written.
fn encoded_len(commit: &Commit) -> usize {
    let id = commit.tree.kind().len_in_hex();
    let signature = |s: &Signature| s.name.len() + s.email.len() + 40;
    "tree \n".len()
        + id
        + commit.parents.len() * ("parent \n".len() + id)
        + "author \n".len()
        + signature(&commit.author)
        + "committer \n".len()
        + signature(&commit.committer)
        + commit.encoding.as_ref().map_or(0, |e| "encoding \n".len() + e.len())
        + commit
            .extra_headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 2 + value.iter().filter(|&&b| b == b'\n').count())
            .sum::<usize>()
        + 1
        + commit.message.len()
}

/// Encode `commit` in git's format, as `git commit-tree` writes it.
pub(crate) fn encode(commit: &Commit) -> Result<Vec<u8>, Unwritable> {
    let mut out = Vec::with_capacity(encoded_len(commit));
    encode_to(commit, &mut out)?;
    Ok(out)
}

/// Append the encoding of `commit` to `out`.
pub(crate) fn encode_to(commit: &Commit, out: &mut Vec<u8>) -> Result<(), Unwritable> {
    push_id(out, b"tree", &commit.tree);
    for parent in &commit.parents {
        push_id(out, b"parent", parent);
    }
    push_signature(out, b"author", &commit.author)?;
    push_signature(out, b"committer", &commit.committer)?;
    if let Some(encoding) = &commit.encoding {
        if encoding.is_empty() || encoding.contains(&b'\n') {
            return Err(Unwritable::Encoding);
        }
        push_field(out, b"encoding", encoding);
    }
    for (name, value) in &commit.extra_headers {
        out.extend_from_slice(name);
        out.push(b' ');
        // Continuation lines start with a space; the value's own last newline ends it.
        let mut lines = value.split_inclusive(|&b| b == b'\n');
        if let Some(first) = lines.next() {
            out.extend_from_slice(first);
        }
        for line in lines {
            out.push(b' ');
            out.extend_from_slice(line);
        }
        if value.last() != Some(&b'\n') {
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    out.extend_from_slice(&commit.message);
    Ok(())
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn push_id(out: &mut Vec<u8>, name: &[u8], id: &ObjectId) {
    let mut hex = [0u8; 64];
    push_field(out, name, id.hex_to_buf(&mut hex).as_bytes());
}

fn push_signature(out: &mut Vec<u8>, name: &[u8], signature: &Signature) -> Result<(), Unwritable> {
    let token = |value: &[u8]| !value.iter().any(|b| matches!(b, b'<' | b'>' | b'\n'));
    if !token(&signature.name) || !token(&signature.email) {
        return Err(Unwritable::Token);
    }
    const SECONDS_PER_HOUR: u32 = 3600;
    let offset = signature.time.offset.unsigned_abs();
    let hours = offset / SECONDS_PER_HOUR;
    let minutes = (offset % SECONDS_PER_HOUR) / 60;
    if hours > 99 {
        return Err(Unwritable::Offset);
    }
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(&signature.name);
    out.extend_from_slice(b" <");
    out.extend_from_slice(&signature.email);
    out.extend_from_slice(b"> ");
    if signature.time.seconds < 0 {
        out.push(b'-');
    }
    push_decimal(out, signature.time.seconds.unsigned_abs());
    out.push(b' ');
    out.push(if signature.time.offset < 0 { b'-' } else { b'+' });
    for two_digits in [hours, minutes] {
        // Both are below 100.
        out.push(b'0' + (two_digits / 10) as u8);
        out.push(b'0' + (two_digits % 10) as u8);
    }
    out.push(b'\n');
    Ok(())
}

/// Split `content` into a commit's fields. Fails with what is missing or malformed;
/// forms that parse but are not canonical are caught by encoding again.
pub(crate) fn parse(content: &[u8], hash_kind: gix_hash::Kind) -> Result<Commit, &'static str> {
    let mut rest = content;
    let tree = field(&mut rest, b"tree").ok_or("it has no tree header")?;
    let tree = parse_id(tree, hash_kind).ok_or("its tree id is malformed")?;
    let mut parents = Vec::new();
    while let Some(parent) = field(&mut rest, b"parent") {
        parents.push(parse_id(parent, hash_kind).ok_or("a parent id is malformed")?);
    }
    let author = field(&mut rest, b"author").ok_or("it has no author header after the parents")?;
    let author = parse_signature(author).ok_or("its author is malformed")?;
    let committer = field(&mut rest, b"committer").ok_or("it has no committer header after the author")?;
    let committer = parse_signature(committer).ok_or("its committer is malformed")?;
    let encoding = field(&mut rest, b"encoding").map(BString::from);
    let mut extra_headers = Vec::new();
    while let Some((name, value, after)) = multi_line_header(rest).or_else(|| single_line_header(rest)) {
        extra_headers.push((BString::from(name), value));
        rest = after;
    }
    let message = rest
        .strip_prefix(b"\n")
        .ok_or("its headers do not end with a blank line")?;
    Ok(Commit {
        tree,
        parents: parents.into(),
        author,
        committer,
        encoding,
        message: BString::from(message),
        extra_headers,
    })
}

/// The value of the header line `<name> <value>\n` at the start of `rest`, which then
/// moves past it; `None` (and `rest` unchanged) if the line is not there.
fn field<'a>(rest: &mut &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let after_name = rest.strip_prefix(name)?.strip_prefix(b" ")?;
    let end = after_name.iter().position(|&b| b == b'\n')?;
    let (value, after) = after_name.split_at(end);
    *rest = after.get(1..)?;
    Some(value)
}

/// The name of the header at the start of `rest` and what follows its space: a name is
/// at least one byte, up to a space, and never holds a newline.
fn header_name(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = rest.iter().position(|&b| b == b' ' || b == b'\n')?;
    if end == 0 || rest.get(end) != Some(&b' ') {
        return None;
    }
    Some((&rest[..end], &rest[end + 1..]))
}

/// `<name> <line>\n` followed by at least one ` <line>\n`: the name, the value with the
/// continuation lines' leading spaces removed (newlines kept), and the rest.
fn multi_line_header(rest: &[u8]) -> Option<(&[u8], BString, &[u8])> {
    let (name, mut after) = header_name(rest)?;
    let first_end = after.iter().position(|&b| b == b'\n')?;
    let mut value = after[..=first_end].to_vec();
    after = &after[first_end + 1..];
    let mut continued = false;
    while let Some(line) = after.strip_prefix(b" ") {
        let end = line.iter().position(|&b| b == b'\n')?;
        value.extend_from_slice(&line[..=end]);
        after = &line[end + 1..];
        continued = true;
    }
    continued.then(|| (name, BString::from(value), after))
}

/// `<name> <value>\n`: the name, the value (without its newline) and the rest.
fn single_line_header(rest: &[u8]) -> Option<(&[u8], BString, &[u8])> {
    let (name, after) = header_name(rest)?;
    let end = after.iter().position(|&b| b == b'\n')?;
    Some((name, BString::from(&after[..end]), &after[end + 1..]))
}

/// A full object id of `kind` in hex. Uppercase digits parse, but do not encode back.
fn parse_id(hex: &[u8], kind: gix_hash::Kind) -> Option<ObjectId> {
    crate::id::from_hex(hex).filter(|id| id.kind() == kind)
}

/// `<name> <<email>> <seconds> <+|-><hhmm>`. The name is everything before the first
/// `<` but the one space before it; the email ends at the first `>`.
fn parse_signature(value: &[u8]) -> Option<Signature> {
    let open = value.iter().position(|&b| b == b'<')?;
    let name = value[..open].strip_suffix(b" ")?;
    let after_open = &value[open + 1..];
    let close = after_open.iter().position(|&b| b == b'>')?;
    let email = &after_open[..close];
    let time = after_open[close + 1..].strip_prefix(b" ")?;
    let space = time.iter().position(|&b| b == b' ')?;
    let (seconds, zone) = (&time[..space], &time[space + 1..]);
    let seconds = parse_seconds(seconds)?;
    let [sign, h1, h2, m1, m2] = *zone else { return None };
    let digits = [h1, h2, m1, m2];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let [h1, h2, m1, m2] = digits.map(|d| i32::from(d - b'0'));
    let offset = (h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60;
    let offset = match sign {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };
    Some(Signature {
        name: BString::from(name),
        email: BString::from(email),
        time: gix_object::date::Time { seconds, offset },
    })
}

/// Decimal seconds with an optional `-`, within `i64`.
fn parse_seconds(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(b - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}
