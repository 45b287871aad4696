//! JSON Schemas of the operations' serde forms, for an OpenAPI document of a face that
//! carries them as JSON (`snapgit serve`): every request and output type derives
//! [`utoipa::ToSchema`] with this feature (types with their own serde form implement it
//! beside it), and this module adds the forms the serde helpers of the operations' fields
//! write (file contents, sides of a change).

use std::borrow::Cow;

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Type,
        schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema},
    },
};

/// File contents: a string (its UTF-8 text; requests only), `{"text": "…"}` or
/// `{"base64": "…"}`. Responses give `text` when the bytes are UTF-8.
#[derive(Debug)]
pub struct Bytes;

impl PartialSchema for Bytes {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .property("text", ObjectBuilder::new().schema_type(Type::String))
            .required("text")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let base64 = ObjectBuilder::new()
            .property(
                "base64",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_encoding("base64"),
            )
            .required("base64")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The content as UTF-8 text (requests only)")),
            )
            .item(text)
            .item(base64)
            .description(Some("File contents: UTF-8 text, or base64 for any bytes"))
            .into()
    }
}

impl ToSchema for Bytes {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Bytes")
    }
}

/// One side of a changed file: its blob id and mode.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Side {
    /// The blob id, hex.
    id: String,
    /// The mode.
    mode: crate::Mode,
}
