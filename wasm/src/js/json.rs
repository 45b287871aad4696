//! JSON text for steps and results. A result made of strings, numbers and flags crosses
//! into JS as one string that `JSON.parse` turns into objects, which costs far less than
//! building each object and string through separate calls across the boundary.

use std::fmt::Write as _;

use bstr::{BStr, ByteSlice};
use snapgit_core::ObjectId;

/// JSON text under construction. Write an object with [`Json::open`], then a
/// [`Json::field`] before each value, then [`Json::close`]; an array with
/// [`Json::open_array`], an [`Json::item`] before each value and [`Json::close_array`].
#[derive(Debug, Default)]
pub struct Json(String);

impl Json {
    /// Empty text, with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Json(String::with_capacity(capacity))
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A comma, unless the next value is the first of its object or array.
    fn separate(&mut self) {
        if !matches!(self.0.as_bytes().last(), None | Some(b'{' | b'[')) {
            self.0.push(',');
        }
    }

    /// `{`.
    pub fn open(&mut self) -> &mut Self {
        self.0.push('{');
        self
    }

    /// `}`.
    pub fn close(&mut self) -> &mut Self {
        self.0.push('}');
        self
    }

    /// `[`.
    pub fn open_array(&mut self) -> &mut Self {
        self.0.push('[');
        self
    }

    /// `]`.
    pub fn close_array(&mut self) -> &mut Self {
        self.0.push(']');
        self
    }

    /// The name of the next field of an object (a literal: nothing to escape).
    pub fn field(&mut self, name: &'static str) -> &mut Self {
        self.separate();
        self.0.push('"');
        self.0.push_str(name);
        self.0.push_str("\":");
        self
    }

    /// Before the next value of an array.
    pub fn item(&mut self) -> &mut Self {
        self.separate();
        self
    }

    /// JSON text made by another `Json`, as a value.
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.0.push_str(json);
        self
    }

    /// A string, escaped.
    pub fn string(&mut self, text: &str) -> &mut Self {
        self.0.reserve(text.len() + 2);
        self.0.push('"');
        let mut start = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&text[start..i]);
            if escape.is_empty() {
                // Writing to a String cannot fail.
                let _ = write!(self.0, "\\u{byte:04x}");
            } else {
                self.0.push_str(escape);
            }
            start = i + 1;
        }
        self.0.push_str(&text[start..]);
        self.0.push('"');
        self
    }

    /// Bytes as text, invalid UTF-8 replaced.
    pub fn text(&mut self, text: &BStr) -> &mut Self {
        self.string(&text.to_str_lossy())
    }

    /// An id as lowercase hex.
    pub fn id(&mut self, id: &ObjectId) -> &mut Self {
        let mut buf = [0u8; 64];
        self.0.push('"');
        self.0.push_str(id.hex_to_buf(&mut buf));
        self.0.push('"');
        self
    }

    /// An optional id, `null` when absent.
    pub fn opt_id(&mut self, id: Option<&ObjectId>) -> &mut Self {
        match id {
            Some(id) => self.id(id),
            None => self.null(),
        }
    }

    /// A whole number. JS numbers hold integers exactly up to 2^53, far beyond any count here.
    pub fn number(&mut self, n: u64) -> &mut Self {
        let _ = write!(self.0, "{n}");
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.0.push_str("null");
        self
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(&mut self, items: impl IntoIterator<Item = S>) -> &mut Self {
        self.open_array();
        for item in items {
            self.item().string(item.as_ref());
        }
        self.close_array()
    }
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn escapes_what_json_requires() {
        let mut json = Json::default();
        json.open()
            .field("a")
            .string("q\"b\\n\nt\tc\u{1}é")
            .field("b")
            .open_array()
            .item()
            .number(1)
            .item()
            .null()
            .close_array()
            .close();
        assert_eq!(json.as_str(), r#"{"a":"q\"b\\n\nt\tc\u0001é","b":[1,null]}"#);
    }

    #[test]
    fn nested_first_values_take_no_comma() {
        let mut json = Json::default();
        json.open()
            .field("x")
            .open()
            .field("y")
            .number(1)
            .close()
            .field("z")
            .strings(["p", "q"])
            .close();
        assert_eq!(json.as_str(), r#"{"x":{"y":1},"z":["p","q"]}"#);
    }
}
