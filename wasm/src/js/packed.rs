//! Requests packed by the package into one buffer (`js/src/pack.ts` writes them, checks
//! every field's type and documents the layout). The package packs only values of the
//! expected types, so a buffer that does not read back is misuse, not invalid input.

use snapgit_core::{
    HashKind, Mode, ObjectId,
    commit::{Change, Signature, Time},
    merge::ConflictPolicy,
    policy::Policy,
    worktree,
};
use wasm_bindgen::JsValue;

use super::{JsResult, error};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A packed request being read, field by field, in the order the package wrote them.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

/// A buffer that does not read back as the request it should hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl From<Malformed> for JsValue {
    #[cold]
    #[inline(never)]
    fn from(_: Malformed) -> Self {
        error::misuse("a packed request does not read back")
    }
}

/// What reading a field gives.
type Read<T> = Result<T, Malformed>;

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Check that every byte was read.
    pub fn finish(self) -> Read<()> {
        if self.bytes.is_empty() { Ok(()) } else { Err(Malformed) }
    }

    fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Read<u8> {
        Ok(self.take(1)?[0])
    }

    /// A u32 count.
    pub fn u32(&mut self) -> Read<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A whole number of magnitude at most `max`.
    fn whole(&mut self, max: f64) -> Read<f64> {
        let n = self.number()?;
        if n.fract() == 0.0 && n.abs() <= max {
            Ok(n)
        } else {
            Err(Malformed)
        }
    }

    /// A number.
    pub fn number(&mut self) -> Read<f64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(buf))
    }

    /// A signed time (milliseconds or seconds).
    pub fn time(&mut self) -> Read<i64> {
        Ok(self.whole(MAX_SAFE)? as i64)
    }

    /// Whether an optional value follows.
    fn present(&mut self) -> Read<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed),
        }
    }

    /// A required count.
    pub fn count(&mut self) -> Read<u64> {
        Ok(self.whole(MAX_SAFE)? as u64)
    }

    /// An optional count.
    pub fn opt_count(&mut self) -> Read<Option<u64>> {
        if self.present()? {
            Ok(Some(self.whole(MAX_SAFE)? as u64))
        } else {
            Ok(None)
        }
    }

    /// An optional count that fits `u32`.
    pub fn opt_u32(&mut self) -> Read<Option<u32>> {
        Ok(self.opt_count()?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// An optional flag (`None`: the engine's default).
    pub fn flag(&mut self) -> Read<Option<bool>> {
        match self.u8()? {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            2 => Ok(None),
            _ => Err(Malformed),
        }
    }

    fn bytes(&mut self) -> Read<Vec<u8>> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    /// A required string.
    pub fn string(&mut self) -> Read<String> {
        String::from_utf8(self.bytes()?).map_err(|_| Malformed)
    }

    /// An optional string.
    pub fn opt_string(&mut self) -> Read<Option<String>> {
        if self.present()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    /// A required object id.
    pub fn id(&mut self, kind: HashKind) -> JsResult<ObjectId> {
        let text = self.string()?;
        snapgit_core::id::parse(kind, &text).map_err(|e| error::to_js(&e))
    }

    /// An optional object id.
    pub fn opt_id(&mut self, kind: HashKind) -> JsResult<Option<ObjectId>> {
        if self.present()? {
            self.id(kind).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A signature.
    pub fn signature(&mut self) -> Read<Signature> {
        let name = self.string()?;
        let email = self.string()?;
        let seconds = self.time()?;
        let offset_minutes = self.whole(1e6)? as i32;
        Ok(Signature {
            name,
            email,
            time: Time {
                seconds,
                offset_minutes,
            },
        })
    }

    /// An optional signature.
    pub fn opt_signature(&mut self) -> Read<Option<Signature>> {
        if self.present()? {
            self.signature().map(Some)
        } else {
            Ok(None)
        }
    }

    fn change(&mut self) -> Read<Change> {
        let put = |r: &mut Self, mode| -> Read<Change> {
            let path = r.string()?;
            Ok(Change::Put {
                path: path.into(),
                data: r.bytes()?,
                mode,
            })
        };
        match self.u8()? {
            0 => put(self, Mode::Regular),
            1 => put(self, Mode::Executable),
            2 => put(self, Mode::Symlink),
            3 => Ok(Change::delete(self.string()?)),
            4 => {
                let from = self.string()?;
                Ok(Change::rename(from, self.string()?))
            }
            _ => Err(Malformed),
        }
    }

    /// The changes of a commit, in order.
    pub fn changes(&mut self) -> Read<Vec<Change>> {
        let count = self.u32()? as usize;
        // Each change takes at least five bytes: no allocation larger than the buffer.
        let mut changes = Vec::with_capacity(count.min(self.bytes.len() / 5));
        for _ in 0..count {
            changes.push(self.change()?);
        }
        Ok(changes)
    }

    /// A folder's files: a u32 count, then each file's mode (0, 1, 2: regular,
    /// executable, symlink), path, id and optional content.
    pub fn folder_files(&mut self, kind: HashKind) -> JsResult<Vec<worktree::File>> {
        let count = self.u32()? as usize;
        // Each file takes at least fourteen bytes: no allocation larger than the buffer.
        let mut files = Vec::with_capacity(count.min(self.bytes.len() / 14));
        for _ in 0..count {
            let mode = match self.u8()? {
                0 => Mode::Regular,
                1 => Mode::Executable,
                2 => Mode::Symlink,
                // A folder given whole by its tree id (a diff's, core refuses it elsewhere).
                3 => Mode::Tree,
                _ => return Err(Malformed.into()),
            };
            let path = self.string()?.into();
            let id = self.id(kind)?;
            let data = if self.present()? { Some(self.bytes()?) } else { None };
            files.push(worktree::File { path, mode, id, data });
        }
        Ok(files)
    }

    /// A list of strings: a u32 count, then each.
    pub fn strings(&mut self) -> Read<Vec<String>> {
        let count = self.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(self.bytes.len() / 4));
        for _ in 0..count {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// Pairs of strings (a remote's headers): a u32 count, then each name and value.
    pub fn pairs(&mut self) -> Read<Vec<(String, String)>> {
        let count = self.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(self.bytes.len() / 8));
        for _ in 0..count {
            out.push((self.string()?, self.string()?));
        }
        Ok(out)
    }

    /// How to settle a conflict.
    pub fn conflict_policy(&mut self) -> Read<ConflictPolicy> {
        match self.u8()? {
            0 => Ok(ConflictPolicy::Fail),
            1 => Ok(ConflictPolicy::Ours),
            2 => Ok(ConflictPolicy::Theirs),
            _ => Err(Malformed),
        }
    }

    /// A write policy, or `None` for the default.
    pub fn policy(&mut self) -> JsResult<Option<Policy>> {
        if !self.present()? {
            return Ok(None);
        }
        let mut policy = Policy::new();
        policy.max_file_bytes = self.opt_count()?;
        policy.max_objects_per_commit = self.opt_count()?.map(|n| n as usize);
        if self.present()? {
            let count = self.u32()? as usize;
            let mut patterns = Vec::with_capacity(count.min(self.bytes.len() / 4));
            for _ in 0..count {
                patterns.push(self.string()?);
            }
            policy = policy.exclude(patterns).map_err(|e| error::to_js(&e))?;
        }
        Ok(Some(policy))
    }
}

#[cfg(test)]
mod tests {
    use snapgit_core::commit::Change;

    use super::{Malformed, Reader};

    fn text(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn number(out: &mut Vec<u8>, n: f64) {
        out.extend_from_slice(&n.to_le_bytes());
    }

    /// A signature and two changes, as `js/src/pack.ts` writes them.
    fn request() -> Vec<u8> {
        let mut out = Vec::new();
        text(&mut out, "Agent");
        text(&mut out, "agent@example.com");
        number(&mut out, 1_700_000_000.0);
        number(&mut out, -90.0);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.push(1);
        text(&mut out, "run.sh");
        text(&mut out, "#!/bin/sh");
        out.push(4);
        text(&mut out, "a.md");
        text(&mut out, "b.md");
        out.push(2);
        out
    }

    #[test]
    fn reads_back_what_the_package_packs() {
        let bytes = request();
        let mut r = Reader::new(&bytes);
        let signature = r.signature().unwrap();
        assert_eq!(
            (
                signature.name.as_str(),
                signature.time.seconds,
                signature.time.offset_minutes
            ),
            ("Agent", 1_700_000_000, -90)
        );
        let changes = r.changes().unwrap();
        assert!(matches!(&changes[0], Change::Put { data, .. } if data == b"#!/bin/sh"));
        assert_eq!(changes.len(), 2);
        assert_eq!(r.flag(), Ok(None));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn every_truncation_and_extra_byte_is_malformed() {
        let bytes = request();
        for len in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..len]);
            let read = r.signature().and_then(|_| r.changes()).and_then(|_| r.flag());
            assert_eq!(read.err(), Some(Malformed), "at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let mut r = Reader::new(&longer);
        r.signature().unwrap();
        r.changes().unwrap();
        r.flag().unwrap();
        assert_eq!(r.finish(), Err(Malformed));
    }

    #[test]
    fn refuses_bad_tags_lengths_and_numbers() {
        assert_eq!(Reader::new(&[3]).flag(), Err(Malformed));
        assert_eq!(Reader::new(&[9, 0, 0, 0, 0]).opt_string(), Err(Malformed));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).string(), Err(Malformed));
        assert_eq!(Reader::new(&1.5f64.to_le_bytes()).time(), Err(Malformed));
        assert_eq!(Reader::new(&f64::NAN.to_le_bytes()).count(), Err(Malformed));
        // A count far larger than the buffer allocates nothing before it fails.
        assert_eq!(Reader::new(&u32::MAX.to_le_bytes()).changes().err(), Some(Malformed));
    }
}
