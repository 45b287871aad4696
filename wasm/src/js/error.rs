//! Every error that reaches JavaScript, made here and nowhere else.
//!
//! Each is a JS `Error` named `SnapgitError` with a stable `code` (one per cause, listed
//! in [`Code`]), a human message, and `value`: the offending value where the cause names
//! one (a path, a name, an id, a limit). Some carry more, named after the core field
//! (`expected` and `actual` for a moved head; `ours` and `theirs` beside a conflict's path).

use bstr::ByteSlice;
use js_sys::{Error as JsError, Object, Reflect};
use snapgit_core::{
    error::{Classify, Value},
    id,
    step::Misuse,
};
use wasm_bindgen::JsValue;

/// The cause of an error: the stable `code` string JavaScript sees.
pub use snapgit_core::error::Code;

/// A JS error under construction.
pub struct Thrown(Object);

impl Thrown {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: &str) -> Self {
        let error = JsError::new(message);
        error.set_name("SnapgitError");
        let thrown = Thrown(error.into());
        thrown.with("code", code.as_str())
    }

    /// Set a field.
    pub fn with(self, field: &str, value: impl Into<JsValue>) -> Self {
        // Setting a property on a fresh plain error cannot fail.
        let _ = Reflect::set(&self.0, &field.into(), &value.into());
        self
    }

    /// Set `value`, the offending value.
    pub fn value(self, value: impl Into<JsValue>) -> Self {
        self.with("value", value)
    }
}

impl From<Thrown> for JsValue {
    fn from(thrown: Thrown) -> Self {
        thrown.0.into()
    }
}

/// A ref in storage whose value is not an object id.
pub fn bad_ref(key: &str, err: &id::Error) -> JsValue {
    Thrown::new(Code::Corrupt, &format!("ref {key:?} is corrupt: {err}"))
        .value(err.value.as_str())
        .with("key", key)
        .into()
}

/// An operation driven out of order.
pub fn misuse(what: &'static str) -> JsValue {
    to_js(&Misuse(what))
}

/// The JS error for any core error.
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
                thrown.with(name, js_value(value))
            })
    }
}

fn js_value(value: Value<'_>) -> JsValue {
    match value {
        Value::Text(text) => text.into(),
        Value::Path(path) => path.to_str_lossy().as_ref().into(),
        Value::Id(id) => id.to_string().into(),
        // Counts and limits stay below 2^53 in practice; a larger one loses precision,
        // as any JS number would.
        Value::Number(n) => (n as f64).into(),
        _ => JsValue::NULL,
    }
}
