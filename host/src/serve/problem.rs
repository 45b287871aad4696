//! Errors of the JSON API as `application/problem+json` (RFC 9457), carrying core's
//! [`Code`] and the values the error names.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use snapgit_core::error::{self, Classify, Code};

/// A failed request: its status, core's code, a message and the values it names.
#[derive(Debug)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// Core's code (`NOT_FOUND`...).
    pub code: Code,
    /// The code as sent: core's, or `UNAUTHORIZED` and `FORBIDDEN` for a token that
    /// does not allow the request (no core operation ran).
    pub name: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    /// The values the error names (`value`, `limit`, `expected`...).
    pub fields: Map<String, Value>,
}

impl Problem {
    /// A problem with this code and message and the status the code maps to.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Problem {
            status: status(code),
            code,
            name: code.as_str(),
            detail: detail.into(),
            fields: Map::new(),
        }
    }

    /// A bad request: `INVALID_INPUT`, 400.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Problem::new(Code::InvalidInput, detail)
    }

    /// Name the offending value.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// No token, or one the server does not know: 401 `UNAUTHORIZED`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem {
            status: StatusCode::UNAUTHORIZED,
            name: "UNAUTHORIZED",
            ..Problem::invalid(detail)
        }
    }

    /// A token that does not allow the request: 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem {
            status: StatusCode::FORBIDDEN,
            name: "FORBIDDEN",
            ..Problem::invalid(detail)
        }
    }

    /// A core error: its code (a storage failure inside it classified by what failed),
    /// its message with every cause, and its fields.
    pub fn from_core(err: &(dyn Classify + 'static)) -> Self {
        let code = crate::cli::error::classified(err);
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !detail.contains(&text) {
                detail.push_str(": ");
                detail.push_str(&text);
            }
            source = cause.source();
        }
        let mut problem = Problem::new(code, detail);
        for (name, value) in err.fields() {
            problem.fields.insert(name.to_owned(), field(value));
        }
        problem
    }
}

/// The HTTP status of a code.
pub fn status(code: Code) -> StatusCode {
    match code {
        Code::InvalidInput => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Conflict | Code::LostRace => StatusCode::CONFLICT,
        Code::HeadMoved => StatusCode::PRECONDITION_FAILED,
        Code::EmptyCommit | Code::Policy => StatusCode::UNPROCESSABLE_ENTITY,
        Code::Limit => StatusCode::PAYLOAD_TOO_LARGE,
        Code::Storage => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unsupported => StatusCode::NOT_IMPLEMENTED,
        Code::Corrupt | Code::Misuse => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn field(value: error::Value<'_>) -> Value {
    match value {
        error::Value::Text(text) => text.into(),
        error::Value::Path(path) => path.to_string().into(),
        error::Value::Id(id) => id.to_string().into(),
        error::Value::Number(n) => n.into(),
        _ => Value::Null,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:snapgit:error:{}", self.name),
            "title": self.name,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.name,
        });
        if let Value::Object(object) = &mut body {
            for (name, value) in self.fields {
                object.entry(name).or_insert(value);
            }
        }
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"snapgit\""),
            );
        }
        response
    }
}
