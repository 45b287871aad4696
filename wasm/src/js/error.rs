//! Every error that reaches JavaScript, made here and nowhere else.
//!
//! Each is thrown as JSON text, `{ code, message, value?, ... }`, which the package
//! turns into a `SnapgitError` (`js/src/errors.ts`): a stable `code` (one per cause,
//! listed in [`Code`]), a human message, and `value`: the offending value where the
//! cause names one (a path, a name, an id, a limit). Some carry more, named after the
//! core field (`expected` and `actual` for a moved head; `ours` and `theirs` beside a
//! conflict's path).

use bstr::ByteSlice;
use snapgit_core::{
    error::{Classify, Value},
    id,
    step::Misuse,
};
use wasm_bindgen::JsValue;

use super::json::Json;

/// The cause of an error: the stable `code` string JavaScript sees.
pub use snapgit_core::error::Code;

/// A JS error under construction: the JSON object's text, left open for more fields.
pub struct Thrown(Json);

impl Thrown {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: &str) -> Self {
        let mut json = Json::with_capacity(64 + message.len());
        json.open()
            .field("code")
            .string(code.as_str())
            .field("message")
            .string(message);
        Thrown(json)
    }

    /// Set a field to a string.
    pub fn with(mut self, field: &'static str, value: &str) -> Self {
        self.0.field(field).string(value);
        self
    }

    fn value(mut self, field: &'static str, value: Value<'_>) -> Self {
        self.0.field(field);
        match value {
            Value::Text(text) => self.0.string(text),
            Value::Path(path) => self.0.text(path.as_bstr()),
            Value::Id(id) => self.0.id(id),
            // Counts and limits stay below 2^53 in practice; a larger one loses
            // precision, as any JS number would.
            Value::Number(n) => self.0.number(n),
            _ => self.0.null(),
        };
        self
    }
}

impl From<Thrown> for JsValue {
    fn from(mut thrown: Thrown) -> Self {
        thrown.0.close();
        JsValue::from_str(thrown.0.as_str())
    }
}

/// A ref in storage whose value is not an object id.
#[cold]
#[inline(never)]
pub fn bad_ref(key: &str, err: &id::Error) -> JsValue {
    Thrown::new(Code::Corrupt, &format!("ref {key:?} is corrupt: {err}"))
        .with("value", err.value.as_str())
        .with("key", key)
        .into()
}

/// A result that cannot be written for JS (a bug).
#[cold]
#[inline(never)]
pub fn misuse_text(what: &str) -> JsValue {
    Thrown::new(Code::Misuse, what).into()
}

/// An operation driven out of order.
#[cold]
#[inline(never)]
pub fn misuse(what: &'static str) -> JsValue {
    to_js(&Misuse(what))
}

/// The JS error for any core error.
#[cold]
#[inline(never)]
pub fn to_js<E: ToJs + ?Sized>(err: &E) -> JsValue {
    err.to_js().into()
}

/// A core error that maps to a JS error.
pub trait ToJs {
    /// The JS error.
    fn to_js(&self) -> Thrown;
}

/// Every core error: core decides its code and the values it names ([`Classify`]);
/// here they become the error's `code`, `value` and detail fields.
///
/// Storage failures never come back through core: the JS driver raises them itself,
/// keeping the adapter's error. A driver that passes one through anyway gets `STORAGE`.
impl<E: Classify> ToJs for E {
    fn to_js(&self) -> Thrown {
        self.fields()
            .into_iter()
            .fold(Thrown::new(self.code(), &self.to_string()), |thrown, (name, value)| {
                thrown.value(name, value)
            })
    }
}
