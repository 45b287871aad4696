//! The error of every codec of the wire protocol.

/// A message that breaks the wire protocol, or a value that cannot go on the wire.
///
/// Offsets (`at`) count bytes from the start of the input the decoder was given (for a
/// report-status inside side-band, from the start of the demultiplexed band 1). Values
/// are quoted as they arrived, cut to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that break the protocol's grammar: a length that is not four hex digits, a
    /// reserved length, a line that is not what its place allows.
    #[error("malformed message at byte {at}: {reason}")]
    Malformed {
        /// Where the offending packet starts.
        at: usize,
        /// What is wrong, naming the offending value.
        reason: String,
    },
    /// A pkt-line whose payload is longer than the 65516 bytes one can hold.
    // 65516: git's limit (gitprotocol-common), `pkt::MAX_DATA_BYTES`; written out so that
    // the errors need nothing of the codecs that raise them.
    #[error("a pkt-line of {len} payload bytes{} is longer than the 65516 one can hold", at.map(|at| format!(" at byte {at}")).unwrap_or_default())]
    TooLong {
        /// Where the packet starts, when decoding.
        at: Option<usize>,
        /// Its payload length.
        len: usize,
    },
    /// The input ends inside a packet.
    #[error("the input ends inside the packet at byte {at}: it needs {needed} bytes, {available} are left")]
    Truncated {
        /// Where the packet starts.
        at: usize,
        /// The bytes it needs (its length header, or the length it declares).
        needed: usize,
        /// The bytes left in the input.
        available: usize,
    },
    /// A packet other than the one the grammar calls for here: a missing flush, a
    /// section out of order, the end of the input too early, bytes after the end.
    #[error("expected {expected} at byte {at}, found {found}")]
    Unexpected {
        /// Where the packet (or the end of the input) is.
        at: usize,
        /// What the grammar calls for.
        expected: &'static str,
        /// What came instead.
        found: String,
    },
    /// An object id that is not the full hex of a SHA-1.
    #[error("invalid object id {value:?} at byte {at}")]
    InvalidId {
        /// Where the line holding it starts.
        at: usize,
        /// The text given.
        value: String,
    },
    /// A ref name that git's rules (`git check-ref-format`) refuse.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A command the server does not offer (`command=<name>`).
    #[error("unknown command {command:?}")]
    UnknownCommand {
        /// The command asked for.
        command: String,
    },
    /// A capability in a request that the server did not advertise or does not know.
    #[error("unknown capability {capability:?}")]
    UnknownCapability {
        /// The capability given.
        capability: String,
    },
    /// An argument the command does not take, or one of a feature the server did not
    /// advertise.
    #[error("unknown argument of {command}: {argument:?}")]
    UnknownArgument {
        /// The command (`ls-refs`, `fetch`).
        command: &'static str,
        /// The argument line.
        argument: String,
    },
    /// A filter other than `blob:none`, `blob:limit=<n>` and `tree:<depth>`.
    #[error("unsupported filter {spec:?}: only blob:none, blob:limit=<n> and tree:<depth> are served")]
    UnsupportedFilter {
        /// The filter spec given.
        spec: String,
    },
    /// An object format other than SHA-1.
    #[error("unsupported object format {format:?}: only sha1 is served")]
    UnsupportedObjectFormat {
        /// The object format given.
        format: String,
    },
    /// The other side speaks another protocol version than the one expected.
    #[error("unsupported protocol: expected {expected}, found {found:?}")]
    UnsupportedVersion {
        /// The version expected.
        expected: &'static str,
        /// What came instead of its first line.
        found: String,
    },
    /// A value given to an encoder that cannot go on the wire: a capability with a
    /// space, an option with a newline, a reason that is empty.
    #[error("invalid {what} {value:?}: it cannot go on the wire")]
    InvalidValue {
        /// What the value is (`capability`, `server option`...).
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A message over a bound of [`super::Limits`].
    #[error("the message holds more {what} than the limit of {limit}")]
    LimitExceeded {
        /// `lines` or `bytes`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The remote's own error: an `ERR` line, or a message on side-band 3.
    #[error("remote error: {message}")]
    Remote {
        /// What the remote said.
        message: String,
    },
}

/// A value quoted in an error: lossy UTF-8, cut to 100 characters.
pub(crate) fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(100).collect()
}
