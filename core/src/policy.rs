//! Write policies for a repo: file size, excluded paths, objects per commit.
//!
//! A policy is checked when a commit is requested (nothing is read or written when it
//! fails) and can be checked on its own with [`Policy::check`]. Each violation names the
//! path and the rule.

use bstr::{BStr, BString, ByteSlice};

use crate::commit::Change;

/// What commits to a repo must respect.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The largest file a commit may write, in bytes.
    pub max_file_bytes: Option<u64>,
    /// The most objects one commit may write (blobs, trees and the commit).
    pub max_objects_per_commit: Option<usize>,
    exclude: Vec<Exclude>,
}

/// One exclude pattern: as given, parsed, and what names it in a verdict.
#[derive(Debug, Clone)]
struct Exclude {
    text: String,
    pattern: gix_glob::Pattern,
    /// Where it came from, for a pattern of an ignore file below the root
    /// (`sub/.gitignore: dist/`); `None`: the text itself.
    shown: Option<String>,
}

/// One rule a change breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The path matches an exclude pattern.
    #[error("path {path:?} is excluded by the pattern {pattern:?}")]
    Excluded {
        /// The path written.
        path: BString,
        /// The pattern that excludes it.
        pattern: String,
    },
    /// The file is larger than the policy allows.
    #[error("file {path:?} is {size} bytes, over the policy's limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: BString,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The commit would write more objects than the policy allows.
    #[error("the commit writes {count} objects, over the policy's limit of {limit}")]
    TooManyObjects {
        /// Objects the commit writes.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// An exclude pattern git's gitignore syntax cannot parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid exclude pattern {pattern:?}")]
pub struct PatternError {
    /// The pattern, as given.
    pub pattern: String,
}

impl Policy {
    /// A policy that allows everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add gitignore-style exclude patterns (`*.log`, `node_modules/`, `/build`, `!keep.log`);
    /// later patterns win over earlier ones, as in a `.gitignore` file.
    pub fn exclude<I, S>(mut self, patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for pattern in patterns {
            let pattern = pattern.into();
            let parsed = gix_glob::parse(pattern.as_bytes()).ok_or_else(|| PatternError {
                pattern: pattern.clone(),
            })?;
            self.exclude.push(Exclude {
                text: pattern,
                pattern: parsed,
                shown: None,
            });
        }
        Ok(self)
    }

    /// Add the patterns of the ignore file `file` (a repo path, such as `sub/.gitignore`)
    /// whose text is `text`, read as [`ignore_file_patterns`] reads it: they apply below
    /// the file's folder. A path they leave out is said to be excluded by
    /// `"<file>: <line>"`.
    pub fn exclude_file(self, file: &BStr, text: &str) -> Result<Self, PatternError> {
        let base = file.rfind_byte(b'/').map_or(&file[..0], |slash| &file[..slash]);
        self.exclude_lines(&file.to_str_lossy(), base.as_bstr(), text)
    }

    /// Add the patterns of an ignore file read for the whole folder, wherever it is kept
    /// (`--exclude-from rules.txt`): as a `.gitignore` at the folder's root, a path they
    /// leave out said to be excluded by `"<shown>: <line>"`.
    pub fn exclude_from(self, shown: &str, text: &str) -> Result<Self, PatternError> {
        self.exclude_lines(shown, BStr::new(""), text)
    }

    fn exclude_lines(mut self, shown: &str, base: &BStr, text: &str) -> Result<Self, PatternError> {
        for (line, pattern) in ignore_file_lines(base, text) {
            let parsed = gix_glob::parse(pattern.as_bytes()).ok_or_else(|| PatternError {
                pattern: format!("{shown}: {line}"),
            })?;
            self.exclude.push(Exclude {
                shown: Some(format!("{shown}: {line}")),
                text: pattern,
                pattern: parsed,
            });
        }
        Ok(self)
    }

    /// The exclude patterns, as given.
    pub fn exclude_patterns(&self) -> impl Iterator<Item = &str> {
        self.exclude.iter().map(|e| e.text.as_str())
    }

    /// The first violation among `changes`, if any.
    pub fn check(&self, changes: &[Change]) -> Result<(), Violation> {
        for change in changes {
            let (path, size) = match change {
                Change::Put { path, data, .. } => (path, Some(data.len() as u64)),
                Change::Rename { to, .. } => (to, None),
                Change::Delete { .. } => continue,
            };
            if let Some(pattern) = self.excluded(path.as_bstr()) {
                return Err(Violation::Excluded {
                    path: path.clone(),
                    pattern: pattern.to_owned(),
                });
            }
            if let (Some(size), Some(limit)) = (size, self.max_file_bytes)
                && size > limit
            {
                return Err(Violation::FileTooLarge {
                    path: path.clone(),
                    size,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Check the number of objects a built commit writes.
    pub fn check_objects(&self, count: usize) -> Result<(), Violation> {
        match self.max_objects_per_commit {
            Some(limit) if count > limit => Err(Violation::TooManyObjects { count, limit }),
            _ => Ok(()),
        }
    }

    /// The pattern that excludes `path`, if one does: a path is excluded when it or one
    /// of its folders is, the last matching pattern deciding (a `!` pattern re-includes).
    pub fn excluded(&self, path: &BStr) -> Option<&str> {
        let mut end = 0;
        loop {
            let next = path[end..].find_byte(b'/').map(|i| end + i);
            let (prefix, is_dir) = match next {
                Some(slash) => (&path[..slash], true),
                None => (path, false),
            };
            if let Some(pattern) = self.decide(prefix.as_bstr(), is_dir) {
                return Some(pattern);
            }
            match next {
                Some(slash) => end = slash + 1,
                None => return None,
            }
        }
    }

    /// The pattern that excludes `path` itself, a folder when `is_dir`, if one does, its
    /// folders having been checked already (as a walk down a folder checks each level).
    pub fn excluded_here(&self, path: &BStr, is_dir: bool) -> Option<&str> {
        if self.exclude.is_empty() {
            return None;
        }
        self.decide(path, is_dir)
    }

    fn decide(&self, path: &BStr, is_dir: bool) -> Option<&str> {
        let basename = path.rfind_byte(b'/').map(|i| i + 1);
        let mut verdict = None;
        for Exclude { text, pattern, shown } in &self.exclude {
            if pattern.matches_repo_relative_path(
                path,
                basename,
                Some(is_dir),
                gix_glob::pattern::Case::Sensitive,
                gix_glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
            ) {
                verdict = (!pattern.is_negative()).then_some(shown.as_deref().unwrap_or(text));
            }
        }
        verdict
    }
}

/// The patterns of an ignore file (`.gitignore`, `.snapgitignore`) in the folder `base`
/// (a repo path; empty for the root), as patterns on repo paths that [`Policy::exclude`]
/// takes, in the file's order.
///
/// The file's lines are read as git reads them: blank lines and lines starting with `#`
/// are skipped, a trailing `\r` and trailing spaces not escaped with a backslash are
/// dropped. A pattern of a file below the root applies below its folder only, as git has
/// it: one with no slash but a trailing one matches at any depth below `base`
/// (`/base/**/pattern`), one with a slash elsewhere is relative to `base`
/// (`/base/pattern`); characters of `base` that a pattern would read as wildcards are
/// escaped. Patterns from files deeper down come later, so they win, as in git.
pub fn ignore_file_patterns(base: &BStr, text: &str) -> Vec<String> {
    ignore_file_lines(base, text)
        .into_iter()
        .map(|(_, pattern)| pattern)
        .collect()
}

/// [`ignore_file_patterns`], each with the line it was read from.
fn ignore_file_lines<'a>(base: &BStr, text: &'a str) -> Vec<(&'a str, String)> {
    let mut folder = String::new();
    for c in base.to_str_lossy().chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            folder.push('\\');
        }
        folder.push(c);
    }
    text.split('\n')
        .filter_map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('#') {
                return None;
            }
            let line = trim_unescaped_spaces(line);
            if line.is_empty() {
                return None;
            }
            if folder.is_empty() {
                return Some((line, line.to_owned()));
            }
            let (negated, body) = match line.strip_prefix('!') {
                Some(body) => ("!", body),
                None => ("", line),
            };
            // `/` at the start or in the middle anchors the pattern to its file's folder.
            let anchored = body.trim_end_matches('/').contains('/');
            let body = body.strip_prefix('/').unwrap_or(body);
            let pattern = if anchored {
                format!("{negated}/{folder}/{body}")
            } else {
                format!("{negated}/{folder}/**/{body}")
            };
            Some((line, pattern))
        })
        .collect()
}

/// `line` without its trailing spaces, but for one escaped with a backslash.
fn trim_unescaped_spaces(line: &str) -> &str {
    let trimmed = line.trim_end_matches(' ');
    if trimmed.len() < line.len() && trimmed.ends_with('\\') && !trimmed.ends_with("\\\\") {
        &line[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

/// A policy's serde form: `{ maxFileBytes, maxObjectsPerCommit, exclude }`, each optional.
#[derive(serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Spec {
    #[serde(default)]
    max_file_bytes: Option<u64>,
    #[serde(default)]
    max_objects_per_commit: Option<usize>,
    #[serde(default)]
    exclude: Vec<String>,
}

impl serde::Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Spec {
            max_file_bytes: self.max_file_bytes,
            max_objects_per_commit: self.max_objects_per_commit,
            exclude: self.exclude_patterns().map(str::to_owned).collect(),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = Spec::deserialize(d)?;
        let mut policy = Policy::new().exclude(spec.exclude).map_err(serde::de::Error::custom)?;
        policy.max_file_bytes = spec.max_file_bytes;
        policy.max_objects_per_commit = spec.max_objects_per_commit;
        Ok(policy)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::{
        PartialSchema, ToSchema,
        openapi::{RefOr, schema::Schema},
    };

    use super::{Policy, Spec};

    impl PartialSchema for Policy {
        fn schema() -> RefOr<Schema> {
            Spec::schema()
        }
    }

    impl ToSchema for Policy {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Policy")
        }
    }
}
