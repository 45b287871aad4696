//! Unified patch text in git's format, as `git diff` writes it and `git apply` reads it.
//!
//! One section per file: the `diff --git` line, the mode, rename and `index` lines, then
//! hunks with three lines of context (`\ No newline at end of file` where a side ends
//! without one), or a binary marker. A type change (file to symlink, say) is written as
//! a deletion followed by a creation, as git does.

use gix_hash::ObjectId;
use imara_diff::{Algorithm, Hunk, InternedInput};

use crate::{
    diff::{ChangeKind, FileChange, is_binary},
    tree::Mode,
};

/// How a patch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Lines of unchanged context around each change (git's default is 3).
    pub context: u32,
    /// Write binary files as `GIT binary patch` data that `git apply` can apply anywhere,
    /// instead of a `Binary files ... differ` line.
    pub binary: bool,
    /// Hex digits of the ids on `index` lines of text files (git's default is 7); binary
    /// files always get full ids.
    pub abbrev: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            context: 3,
            binary: false,
            abbrev: 7,
        }
    }
}

/// Append the patch of one changed file to `out`.
///
/// `old` and `new` are the contents of the two sides (`None` where a side is absent);
/// they are only looked at when the ids differ. For a submodule, pass the text git
/// diffs for it (`Subproject commit <id>\n`).
pub fn write(out: &mut Vec<u8>, change: &FileChange, old: Option<&[u8]>, new: Option<&[u8]>, options: &Options) {
    if change.kind == ChangeKind::TypeChanged {
        let (old_path, new_path) = (change.path.as_slice(), change.path.as_slice());
        section(out, old_path, new_path, change.old, None, old, None, false, options);
        section(out, old_path, new_path, None, change.new, None, new, false, options);
        return;
    }
    let (old_path, renamed) = match &change.kind {
        ChangeKind::Renamed { from } => (from.as_slice(), true),
        _ => (change.path.as_slice(), false),
    };
    section(
        out,
        old_path,
        &change.path,
        change.old,
        change.new,
        old,
        new,
        renamed,
        options,
    );
}

#[allow(clippy::too_many_arguments)]
fn section(
    out: &mut Vec<u8>,
    old_path: &[u8],
    new_path: &[u8],
    old_side: Option<(ObjectId, Mode)>,
    new_side: Option<(ObjectId, Mode)>,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    renamed: bool,
    options: &Options,
) {
    let a = quoted(b"a/", old_path);
    let b = quoted(b"b/", new_path);
    out.extend_from_slice(b"diff --git ");
    out.extend_from_slice(&a);
    out.push(b' ');
    out.extend_from_slice(&b);
    out.push(b'\n');
    match (old_side, new_side) {
        (None, Some((_, mode))) => line(out, format!("new file mode {:06o}", mode.as_u32())),
        (Some((_, mode)), None) => line(out, format!("deleted file mode {:06o}", mode.as_u32())),
        (Some((_, a)), Some((_, b))) if a != b => {
            line(out, format!("old mode {:06o}", a.as_u32()));
            line(out, format!("new mode {:06o}", b.as_u32()));
        }
        _ => {}
    }
    if renamed {
        out.extend_from_slice(b"similarity index 100%\nrename from ");
        out.extend_from_slice(&quoted(b"", old_path));
        out.extend_from_slice(b"\nrename to ");
        out.extend_from_slice(&quoted(b"", new_path));
        out.push(b'\n');
    }
    let old_id = old_side.map(|(id, _)| id);
    let new_id = new_side.map(|(id, _)| id);
    if old_id == new_id {
        return;
    }
    let old = old.unwrap_or_default();
    let new = new.unwrap_or_default();
    let binary = is_binary(old) || is_binary(new);
    let kind = old_id.or(new_id).map_or(gix_hash::Kind::Sha1, |id| id.kind());
    let abbrev = if binary { kind.len_in_hex() } else { options.abbrev };
    let hex = |id: Option<ObjectId>| {
        let id = id.unwrap_or_else(|| ObjectId::null(kind));
        let full = id.to_hex().to_string();
        full[..abbrev.clamp(4, full.len())].to_owned()
    };
    let mut index = format!("index {}..{}", hex(old_id), hex(new_id));
    if let (Some((_, a)), Some((_, b))) = (old_side, new_side)
        && a == b
    {
        index.push_str(&format!(" {:06o}", a.as_u32()));
    }
    line(out, index);

    let label_a = if old_side.is_some() { a } else { b"/dev/null".to_vec() };
    let label_b = if new_side.is_some() { b } else { b"/dev/null".to_vec() };
    if binary {
        if options.binary {
            out.extend_from_slice(b"GIT binary patch\n");
            binary_hunk(out, new);
            binary_hunk(out, old);
        } else {
            out.extend_from_slice(b"Binary files ");
            out.extend_from_slice(&label_a);
            out.extend_from_slice(b" and ");
            out.extend_from_slice(&label_b);
            out.extend_from_slice(b" differ\n");
        }
        return;
    }
    hunks(out, &label_a, &label_b, old, new, options.context);
}

fn line(out: &mut Vec<u8>, text: String) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// The `---`/`+++` lines and every hunk; nothing when the contents have no line diff.
fn hunks(out: &mut Vec<u8>, label_a: &[u8], label_b: &[u8], old: &[u8], new: &[u8], context: u32) {
    let input = InternedInput::new(old, new);
    let mut diff = imara_diff::Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_lines(&input);
    let changes: Vec<Hunk> = diff.hunks().collect();
    if changes.is_empty() {
        return;
    }
    for (sign, label) in [(&b"--- "[..], label_a), (&b"+++ "[..], label_b)] {
        out.extend_from_slice(sign);
        out.extend_from_slice(label);
        // As git does, so that tools splitting on whitespace find the end of the name.
        if label.contains(&b' ') {
            out.push(b'\t');
        }
        out.push(b'\n');
    }
    let old_lines: Vec<&[u8]> = imara_diff::sources::byte_lines(old).collect();
    let new_lines: Vec<&[u8]> = imara_diff::sources::byte_lines(new).collect();
    let old_len = old_lines.len() as u32;
    let mut functions = FunctionLines::default();

    let mut start = 0;
    while start < changes.len() {
        // Changes closer than twice the context share one hunk, as in git.
        let mut end = start + 1;
        while end < changes.len() && changes[end].before.start - changes[end - 1].before.end <= 2 * context {
            end += 1;
        }
        let group = &changes[start..end];
        let first = &group[0];
        let last = &group[group.len() - 1];
        let before = context.min(first.before.start);
        let after = context.min(old_len - last.before.end);
        let old_start = first.before.start - before;
        let new_start = first.after.start - before;
        let old_count = last.before.end + after - old_start;
        let new_count = last.after.end + after - new_start;

        out.extend_from_slice(b"@@ -");
        range(out, old_start, old_count);
        out.extend_from_slice(b" +");
        range(out, new_start, new_count);
        out.extend_from_slice(b" @@");
        if let Some(function) = functions.before(&old_lines, old_start) {
            out.push(b' ');
            out.extend_from_slice(function);
        }
        out.push(b'\n');

        let mut at = old_start;
        for change in group {
            for l in &old_lines[at as usize..change.before.start as usize] {
                hunk_line(out, b' ', l);
            }
            for l in &old_lines[change.before.start as usize..change.before.end as usize] {
                hunk_line(out, b'-', l);
            }
            for l in &new_lines[change.after.start as usize..change.after.end as usize] {
                hunk_line(out, b'+', l);
            }
            at = change.before.end;
        }
        for l in &old_lines[at as usize..(last.before.end + after) as usize] {
            hunk_line(out, b' ', l);
        }
        start = end;
    }
}

/// A hunk range as git writes it: the count is left out when it is 1, and an empty
/// range names the line before it.
fn range(out: &mut Vec<u8>, start: u32, count: u32) {
    let first = if count == 0 { start } else { start + 1 };
    out.extend_from_slice(first.to_string().as_bytes());
    if count != 1 {
        out.push(b',');
        out.extend_from_slice(count.to_string().as_bytes());
    }
}

fn hunk_line(out: &mut Vec<u8>, sign: u8, text: &[u8]) {
    out.push(sign);
    out.extend_from_slice(text);
    if !text.ends_with(b"\n") {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
}

/// The longest function name git puts after a hunk header.
const MAX_FUNCTION_BYTES: usize = 80;

/// git's default function-line rule for hunk headers: the nearest line above the hunk
/// that starts with a letter, `_` or `$`. Hunks come in order, so the search resumes
/// where the previous one stopped.
#[derive(Default)]
struct FunctionLines<'a> {
    searched: usize,
    found: Option<&'a [u8]>,
}

impl<'a> FunctionLines<'a> {
    fn before(&mut self, lines: &[&'a [u8]], hunk_start: u32) -> Option<&'a [u8]> {
        let end = (hunk_start as usize).min(lines.len());
        for l in &lines[self.searched.min(end)..end] {
            if l.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'$')
            {
                let mut text = &l[..l.len().min(MAX_FUNCTION_BYTES)];
                while let Some((last, rest)) = text.split_last()
                    && matches!(last, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
                {
                    text = rest;
                }
                self.found = Some(text);
            }
        }
        self.searched = self.searched.max(end);
        self.found.filter(|f| !f.is_empty())
    }
}

/// One `literal` hunk of a `GIT binary patch`: the content deflated, in base85 lines.
fn binary_hunk(out: &mut Vec<u8>, data: &[u8]) {
    let deflated = miniz_oxide::deflate::compress_to_vec_zlib(data, 6);
    out.extend_from_slice(format!("literal {}\n", data.len()).as_bytes());
    for chunk in deflated.chunks(52) {
        let len = chunk.len() as u8;
        out.push(if len <= 26 { b'A' + len - 1 } else { b'a' + len - 27 });
        base85(out, chunk);
        out.push(b'\n');
    }
    out.push(b'\n');
}

const BASE85: &[u8; 85] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

/// git's base85: each group of four bytes (the last one zero-padded) as five digits,
/// most significant first.
fn base85(out: &mut Vec<u8>, data: &[u8]) {
    for group in data.chunks(4) {
        let mut bytes = [0u8; 4];
        bytes[..group.len()].copy_from_slice(group);
        let mut acc = u32::from_be_bytes(bytes);
        let mut digits = [0u8; 5];
        for digit in digits.iter_mut().rev() {
            *digit = BASE85[(acc % 85) as usize];
            acc /= 85;
        }
        out.extend_from_slice(&digits);
    }
}

/// `prefix` + `path`, in double quotes with C escapes if git would quote it (control
/// characters, `"`, `\` and bytes outside ASCII).
fn quoted(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    let needs = |c: u8| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x7f;
    let mut out = Vec::with_capacity(prefix.len() + path.len() + 2);
    if !prefix.iter().chain(path).any(|&c| needs(c)) {
        out.extend_from_slice(prefix);
        out.extend_from_slice(path);
        return out;
    }
    out.push(b'"');
    for &c in prefix.iter().chain(path) {
        match c {
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0b => out.extend_from_slice(b"\\v"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c if needs(c) => out.extend_from_slice(format!("\\{c:03o}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
    out
}
