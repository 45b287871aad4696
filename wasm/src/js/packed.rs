//! A commit request's names, signatures and changes packed by the package into one
//! buffer (`js/src/pack.ts` writes it and documents the layout). The package packs only
//! values of the expected types, so a buffer that does not read back is misuse, not
//! invalid input.

use snapgit_core::{
    Mode,
    commit::{Change, Signature, Time},
};
use wasm_bindgen::JsValue;

use super::{convert::JsResult, error};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// The unpacked fields.
pub struct Fields {
    /// The repo's name.
    pub repo: String,
    /// The branch's name.
    pub branch: String,
    /// The commit message.
    pub message: String,
    /// The author.
    pub author: Signature,
    /// The committer, if not the author.
    pub committer: Option<Signature>,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

fn malformed() -> JsValue {
    error::misuse("a packed commit request does not read back")
}

impl<'a> Reader<'a> {
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

    fn u32(&mut self) -> JsResult<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn whole(&mut self, max: f64) -> JsResult<f64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        let n = f64::from_le_bytes(buf);
        if n.fract() == 0.0 && n.abs() <= max {
            Ok(n)
        } else {
            Err(malformed())
        }
    }

    fn bytes(&mut self) -> JsResult<Vec<u8>> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self) -> JsResult<String> {
        String::from_utf8(self.bytes()?).map_err(|_| malformed())
    }

    fn signature(&mut self) -> JsResult<Signature> {
        let name = self.string()?;
        let email = self.string()?;
        let seconds = self.whole(MAX_SAFE)? as i64;
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
}

/// Read the fields back.
pub fn unpack(bytes: &[u8]) -> JsResult<Fields> {
    let mut r = Reader { bytes };
    let repo = r.string()?;
    let branch = r.string()?;
    let message = r.string()?;
    let author = r.signature()?;
    let committer = match r.u8()? {
        0 => None,
        1 => Some(r.signature()?),
        _ => return Err(malformed()),
    };
    let count = r.u32()? as usize;
    // Each change takes at least five bytes: no allocation larger than the buffer.
    let mut changes = Vec::with_capacity(count.min(r.bytes.len() / 5));
    for _ in 0..count {
        changes.push(r.change()?);
    }
    if !r.bytes.is_empty() {
        return Err(malformed());
    }
    Ok(Fields {
        repo,
        branch,
        message,
        author,
        committer,
        changes,
    })
}
