//! A finished operation's result as it crosses into JS: core's serde form (`api::Output`)
//! as JSON text, with file contents and patches out of band — each byte string is
//! written as its index `i`, and its bytes end at `ends[i]` in `data` — so that a file is
//! one copy, not an array of numbers.

use std::io;

use serde::Serialize;
use snapgit_core::api;

/// JSON text, and the byte strings it names by index, end to end.
pub struct Output {
    /// The result's JSON text.
    pub json: String,
    /// Every byte string of the result, end to end.
    pub data: Vec<u8>,
    /// Where byte string `i` ends in `data`.
    pub ends: Vec<usize>,
}

/// serde_json's compact form, except byte strings: their index, the bytes kept aside.
struct OutOfBand<'a> {
    data: &'a mut Vec<u8>,
    ends: &'a mut Vec<usize>,
}

impl serde_json::ser::Formatter for OutOfBand<'_> {
    fn write_byte_array<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(value);
        self.ends.push(self.data.len());
        write!(writer, "{}", self.ends.len() - 1)
    }
}

/// The result as JSON text with its bytes aside.
pub fn output(out: &api::Output) -> Result<Output, serde_json::Error> {
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    let mut json = Vec::with_capacity(1024);
    let formatter = OutOfBand {
        data: &mut data,
        ends: &mut ends,
    };
    out.serialize(&mut serde_json::Serializer::with_formatter(&mut json, formatter))?;
    // serde_json writes UTF-8 only.
    let json = String::from_utf8(json).unwrap_or_default();
    Ok(Output { json, data, ends })
}

/// A value with no byte strings (progress) as JSON text.
pub fn json(value: &impl Serialize) -> Result<String, serde_json::Error> {
    serde_json::to_string(value)
}
