//! Capabilities: `key[=value]` tokens, listed after a NUL on v0's first line (separated
//! by spaces) and one per line in v2's advertisement.

/// A list of capabilities, in the order given.
///
/// ```
/// use snapgit_core::remote::Capabilities;
///
/// let caps = Capabilities::new(["report-status", "agent=git/2.47.3", "fetch=shallow filter"]);
/// assert!(caps.contains("report-status"));
/// assert_eq!(caps.value("agent"), Some("git/2.47.3"));
/// assert!(caps.supports("fetch", "filter"));
/// assert!(!caps.contains("agent=git/2.47.3"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    /// Capabilities from their tokens (`side-band-64k`, `agent=snapgit/0.1.0`).
    pub fn new<S: Into<String>>(tokens: impl IntoIterator<Item = S>) -> Self {
        Capabilities(tokens.into_iter().map(Into::into).collect())
    }

    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// `true` if there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `true` if a capability has this key, with or without a value.
    pub fn contains(&self, key: &str) -> bool {
        self.iter().any(|token| key_of(token) == key)
    }

    /// The value of the first capability with this key (`agent=<value>`).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.iter()
            .find_map(|token| token.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// `true` if the capability `key` lists `feature` among the space-separated features
    /// of its value (v2's `fetch=shallow filter`).
    pub fn supports(&self, key: &str, feature: &str) -> bool {
        self.value(key).is_some_and(|v| v.split(' ').any(|f| f == feature))
    }

    pub(crate) fn push(&mut self, token: String) {
        self.0.push(token);
    }
}

/// The key of a `key[=value]` token.
pub(crate) fn key_of(token: &str) -> &str {
    token.split_once('=').map_or(token, |(key, _)| key)
}
