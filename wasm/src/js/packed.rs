//! Requests packed by the package into one buffer (`js/src/pack.ts` writes them, checks
//! every field's type and documents the layout). The package packs only values of the
//! expected types, so a buffer that does not read back is misuse, not invalid input.

use snapgit_core::{
    HashKind, Mode, ObjectId,
    commit::{Change, Signature, Time},
    merge::ConflictPolicy,
    policy::Policy,
};
use wasm_bindgen::JsValue;

use super::{convert::JsResult, error};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A packed request being read, field by field, in the order the package wrote them.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

fn malformed() -> JsValue {
    error::misuse("a packed request does not read back")
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Check that every byte was read.
    pub fn finish(self) -> JsResult<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed())
        }
    }

    fn take(&mut self, n: usize) -> JsResult<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(malformed());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> JsResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// A u32 count.
    pub fn u32(&mut self) -> JsResult<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A whole number of magnitude at most `max`.
    fn whole(&mut self, max: f64) -> JsResult<f64> {
        let n = self.number()?;
        if n.fract() == 0.0 && n.abs() <= max {
            Ok(n)
        } else {
            Err(malformed())
        }
    }

    /// A number.
    pub fn number(&mut self) -> JsResult<f64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(buf))
    }

    /// A signed time (milliseconds or seconds).
    pub fn time(&mut self) -> JsResult<i64> {
        Ok(self.whole(MAX_SAFE)? as i64)
    }

    /// Whether an optional value follows.
    fn present(&mut self) -> JsResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed()),
        }
    }

    /// A required count.
    pub fn count(&mut self) -> JsResult<u64> {
        Ok(self.whole(MAX_SAFE)? as u64)
    }

    /// An optional count.
    pub fn opt_count(&mut self) -> JsResult<Option<u64>> {
        if self.present()? {
            Ok(Some(self.whole(MAX_SAFE)? as u64))
        } else {
            Ok(None)
        }
    }

    /// An optional count that fits `u32`.
    pub fn opt_u32(&mut self) -> JsResult<Option<u32>> {
        Ok(self.opt_count()?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// An optional flag (`None`: the engine's default).
    pub fn flag(&mut self) -> JsResult<Option<bool>> {
        match self.u8()? {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            2 => Ok(None),
            _ => Err(malformed()),
        }
    }

    fn bytes(&mut self) -> JsResult<Vec<u8>> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    /// A required string.
    pub fn string(&mut self) -> JsResult<String> {
        String::from_utf8(self.bytes()?).map_err(|_| malformed())
    }

    /// An optional string.
    pub fn opt_string(&mut self) -> JsResult<Option<String>> {
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
    pub fn signature(&mut self) -> JsResult<Signature> {
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
    pub fn opt_signature(&mut self) -> JsResult<Option<Signature>> {
        if self.present()? {
            self.signature().map(Some)
        } else {
            Ok(None)
        }
    }

    fn change(&mut self) -> JsResult<Change> {
        let put = |r: &mut Self, mode| -> JsResult<Change> {
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
            _ => Err(malformed()),
        }
    }

    /// The changes of a commit, in order.
    pub fn changes(&mut self) -> JsResult<Vec<Change>> {
        let count = self.u32()? as usize;
        // Each change takes at least five bytes: no allocation larger than the buffer.
        let mut changes = Vec::with_capacity(count.min(self.bytes.len() / 5));
        for _ in 0..count {
            changes.push(self.change()?);
        }
        Ok(changes)
    }

    /// How to settle a conflict.
    pub fn conflict_policy(&mut self) -> JsResult<ConflictPolicy> {
        match self.u8()? {
            0 => Ok(ConflictPolicy::Fail),
            1 => Ok(ConflictPolicy::Ours),
            2 => Ok(ConflictPolicy::Theirs),
            _ => Err(malformed()),
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
