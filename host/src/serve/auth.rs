//! Who may read or write which repo: bearer tokens, or basic auth whose password is a
//! token (what git's credential helpers send), each scoped to repos and to read, write or
//! admin.

use std::net::SocketAddr;

use base64::Engine as _;
use subtle::ConstantTimeEq;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Clone and fetch.
    Read,
    /// Push, commit, restore and prune too.
    Write,
    /// Delete repos too; and, with a token whose repos include `*`, the store-wide
    /// operations (GC, compaction, footprint).
    Admin,
}

/// One token: its secret, the repos it opens and what it allows there.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The secret, sent as `Authorization: Bearer <token>` or as basic auth's password.
    pub token: String,
    /// Repo names, or patterns ending in `*` (`agent-*`, `*` for every repo).
    pub repos: Vec<String>,
    /// What it allows in those repos.
    pub access: Access,
}

impl Token {
    fn opens(&self, repo: &str) -> bool {
        self.repos.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => repo.starts_with(prefix),
            None => pattern == repo,
        })
    }
}

/// The tokens a server accepts. With none it is a development server: it allows
/// everything, and listens on loopback only.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// Every token accepted.
    pub tokens: Vec<Token>,
}

/// Tokens that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not read as tokens.
    #[error("the tokens ({source_name}) do not read: {reason}")]
    Malformed {
        /// Where they came from.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// No tokens, on an address other machines reach.
    #[error(
        "refusing to listen on {addr} without tokens: a server without tokens allows everything, so it listens on loopback only (give --tokens, or listen on 127.0.0.1)"
    )]
    OpenToNetwork {
        /// The address.
        addr: SocketAddr,
    },
}

/// The most bytes of a token, and the fewest.
const MAX_TOKEN_BYTES: usize = 4096;
const MIN_TOKEN_BYTES: usize = 16;

impl Tokens {
    /// Read tokens from JSON: `{"tokens": [{"token": "…", "repos": ["agent-*"], "access":
    /// "write"}]}`. A token shorter than 16 bytes, or with no repos, is refused.
    pub fn from_json(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let malformed = |reason: String| ConfigError::Malformed {
            source_name: source_name.to_owned(),
            reason,
        };
        let tokens: Tokens = serde_json::from_str(text).map_err(|err| malformed(err.to_string()))?;
        for (i, token) in tokens.tokens.iter().enumerate() {
            let len = token.token.len();
            if !(MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&len) || token.token.chars().any(char::is_whitespace) {
                return Err(malformed(format!(
                    "token {} must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} bytes without spaces",
                    i + 1
                )));
            }
            if token.repos.is_empty() {
                return Err(malformed(format!("token {} opens no repos", i + 1)));
            }
        }
        Ok(tokens)
    }

    /// Whether the server may listen on `addr` with these tokens.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if self.tokens.is_empty() && !addr.ip().is_loopback() {
            return Err(ConfigError::OpenToNetwork { addr });
        }
        Ok(())
    }

    /// Whether a request with this `Authorization` header may do `access` in `repo`.
    pub fn allows(&self, authorization: Option<&[u8]>, repo: &str, access: Access) -> Verdict {
        self.identify(authorization).may(Some(repo), access)
    }

    /// Who sent a request with this `Authorization` header.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Caller<'_> {
        if self.tokens.is_empty() {
            return Caller::Anyone;
        }
        let Some(secret) = authorization.and_then(secret) else {
            return Caller::Unknown;
        };
        // Every token is compared, in constant time, whichever matches.
        let mut found: Option<&Token> = None;
        for token in &self.tokens {
            if bool::from(token.token.as_bytes().ct_eq(&secret)) {
                found = Some(token);
            }
        }
        found.map_or(Caller::Unknown, Caller::Token)
    }
}

/// Who sent a request.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// Anyone: the server has no tokens.
    Anyone,
    /// The holder of this token.
    Token(&'a Token),
    /// No token, or one the server does not know.
    Unknown,
}

impl Caller<'_> {
    /// Whether the caller may do `access` in `repo`, or in the whole store (`None`: only
    /// a token whose repos include `*`).
    pub fn may(&self, repo: Option<&str>, access: Access) -> Verdict {
        match self {
            Caller::Anyone => Verdict::Allowed,
            Caller::Unknown => Verdict::Unauthenticated,
            Caller::Token(token) => {
                let opens = match repo {
                    Some(repo) => token.opens(repo),
                    None => token.repos.iter().any(|pattern| pattern == "*"),
                };
                if opens && token.access >= access {
                    Verdict::Allowed
                } else {
                    Verdict::Forbidden
                }
            }
        }
    }

    /// Whether the caller may see `repo` at all (a listing of the store shows only these).
    pub fn sees(&self, repo: &str) -> bool {
        self.may(Some(repo), Access::Read) == Verdict::Allowed
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// No token, or not one the server knows: ask for credentials (401).
    Unauthenticated,
    /// A known token that does not allow this here (403).
    Forbidden,
}

/// The token in an `Authorization` header: `Bearer <token>`, or `Basic` with the token
/// as the password (any user name).
fn secret(header: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, value) = text.split_once(' ')?;
    let value = value.trim();
    if value.len() > MAX_TOKEN_BYTES * 2 {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::from_json(
            r#"{"tokens": [
                {"token": "reader-0123456789abcdef", "repos": ["agent-*"], "access": "read"},
                {"token": "writer-0123456789abcdef", "repos": ["agent-1"], "access": "write"}
            ]}"#,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn tokens_are_scoped_to_repos_and_access() {
        let t = tokens();
        let bearer = |s: &str| format!("Bearer {s}").into_bytes();
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("git:{s}"))
            )
            .into_bytes()
        };
        let reader = bearer("reader-0123456789abcdef");
        let writer = basic("writer-0123456789abcdef");
        assert_eq!(t.allows(Some(&reader), "agent-2", Access::Read), Verdict::Allowed);
        assert_eq!(t.allows(Some(&reader), "agent-2", Access::Write), Verdict::Forbidden);
        assert_eq!(t.allows(Some(&reader), "other", Access::Read), Verdict::Forbidden);
        assert_eq!(t.allows(Some(&writer), "agent-1", Access::Write), Verdict::Allowed);
        assert_eq!(t.allows(Some(&writer), "agent-2", Access::Read), Verdict::Forbidden);
        assert_eq!(t.allows(None, "agent-1", Access::Read), Verdict::Unauthenticated);
        assert_eq!(
            t.allows(Some(&bearer("writer-0123456789abcdeX")), "agent-1", Access::Read),
            Verdict::Unauthenticated
        );
        assert_eq!(
            t.allows(Some(b"Basic !!!"), "agent-1", Access::Read),
            Verdict::Unauthenticated
        );
    }

    #[test]
    fn admin_covers_write_and_read_and_the_store_needs_every_repo() {
        let t = Tokens::from_json(
            r#"{"tokens": [
                {"token": "admin-all-0123456789abcdef", "repos": ["*"], "access": "admin"},
                {"token": "admin-some-0123456789abcdef", "repos": ["agent-*"], "access": "admin"}
            ]}"#,
            "test",
        )
        .unwrap();
        let all = t.identify(Some(b"Bearer admin-all-0123456789abcdef"));
        let some = t.identify(Some(b"Bearer admin-some-0123456789abcdef"));
        assert_eq!(all.may(None, Access::Admin), Verdict::Allowed);
        assert_eq!(all.may(Some("x"), Access::Write), Verdict::Allowed);
        assert_eq!(some.may(Some("agent-1"), Access::Admin), Verdict::Allowed);
        assert_eq!(some.may(Some("agent-1"), Access::Read), Verdict::Allowed);
        assert_eq!(some.may(None, Access::Admin), Verdict::Forbidden);
        assert_eq!(some.may(None, Access::Read), Verdict::Forbidden);
        assert!(some.sees("agent-7") && !some.sees("other"));
        assert_eq!(t.identify(None).may(None, Access::Read), Verdict::Unauthenticated);
        assert_eq!(
            Tokens::default().identify(None).may(None, Access::Admin),
            Verdict::Allowed
        );
    }

    #[test]
    fn without_tokens_everything_is_allowed_on_loopback_only() {
        let none = Tokens::default();
        assert_eq!(none.allows(None, "any", Access::Write), Verdict::Allowed);
        assert!(none.check_listen("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(none.check_listen("[::1]:8080".parse().unwrap()).is_ok());
        let err = none.check_listen("0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("0.0.0.0:8080"), "{err}");
        assert!(tokens().check_listen("0.0.0.0:8080".parse().unwrap()).is_ok());
    }

    #[test]
    fn bad_token_files_are_refused() {
        for (json, says) in [
            (
                r#"{"tokens": [{"token": "short", "repos": ["*"], "access": "read"}]}"#,
                "token 1",
            ),
            (
                r#"{"tokens": [{"token": "long-enough-0123456789", "repos": [], "access": "read"}]}"#,
                "no repos",
            ),
            (
                r#"{"tokens": [{"token": "long-enough-0123456789", "repos": ["*"], "access": "owner"}]}"#,
                "owner",
            ),
            (r#"{"tokenz": []}"#, "tokenz"),
        ] {
            let err = Tokens::from_json(json, "file.json").unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("file.json"), "{err}");
        }
    }
}
