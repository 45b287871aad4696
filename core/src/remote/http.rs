//! Smart HTTP (gitprotocol-http): the two services, their content types, the
//! `# service=` packet that opens a v0 advertisement, and the protocol version a
//! `Git-Protocol` header asks for.
//!
//! A server answers `GET $GIT_URL/info/refs?service=<service>` with the advertisement,
//! then `POST $GIT_URL/<service>` with the response to the request in the body:
//!
//! - `git-upload-pack` (fetch, ls-remote, clone) is served over [`super::v2`]: git asks for
//!   it with `Git-Protocol: version=2`, and the v2 advertisement has no `# service=`
//!   header (git's own `http-backend` leaves it out). A client that does not ask for v2
//!   can be refused with the header, a flush and [`super::write_error`].
//! - `git-receive-pack` (push) is always [`super::v0`], whatever the header says (git
//!   has no push over v2, and its clients send no header for push): the
//!   [`super::v0::Advertisement`] after [`Service::write_header`].

use super::{
    Error,
    pkt::{self, Packet, Reader},
};

/// A smart-HTTP service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `git-upload-pack`: fetch, clone, ls-remote.
    UploadPack,
    /// `git-receive-pack`: push.
    ReceivePack,
}

impl Service {
    /// The service's name: `git-upload-pack`, `git-receive-pack`.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The service of a `service=` query parameter or a request path's last part; `None`
    /// for any other name (which a server answers with `403 Forbidden`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    /// The content type of the `info/refs` advertisement.
    pub fn advertisement_type(self) -> &'static str {
        match self {
            Service::UploadPack => "application/x-git-upload-pack-advertisement",
            Service::ReceivePack => "application/x-git-receive-pack-advertisement",
        }
    }

    /// The content type of a request's body.
    pub fn request_type(self) -> &'static str {
        match self {
            Service::UploadPack => "application/x-git-upload-pack-request",
            Service::ReceivePack => "application/x-git-receive-pack-request",
        }
    }

    /// The content type of a response's body.
    pub fn result_type(self) -> &'static str {
        match self {
            Service::UploadPack => "application/x-git-upload-pack-result",
            Service::ReceivePack => "application/x-git-receive-pack-result",
        }
    }

    /// Write the packet that opens a v0 smart-HTTP advertisement,
    /// `# service=<name>\n`, and the flush after it.
    pub fn write_header(self, out: &mut Vec<u8>) {
        pkt::text(out, &[b"# service=", self.name().as_bytes()]).expect("a service name fits a line");
        pkt::flush(out);
    }

    /// The advertisement after its `# service=<name>` packet and the lines up to the
    /// flush that ends the header, for a client: the first packet must name this service.
    pub fn strip_header(self, body: &[u8]) -> Result<&[u8], Error> {
        let mut reader = Reader::new(body);
        match reader.read()? {
            Some(Packet::Data(line))
                if pkt::chomp(line).strip_prefix(b"# service=") == Some(self.name().as_bytes()) => {}
            other => {
                return Err(Error::UnsupportedVersion {
                    expected: "a smart-HTTP advertisement starting with # service=",
                    found: other.map_or("the end of the input".into(), |p| p.describe()),
                });
            }
        }
        // Git allows more header lines before the flush, and so far ignores them.
        loop {
            let at = reader.offset();
            match reader.read()? {
                Some(Packet::Flush) => return Ok(reader.rest()),
                Some(Packet::Data(_)) => {}
                other => {
                    return Err(Error::Unexpected {
                        at,
                        expected: "a flush-pkt after the # service= line",
                        found: other.map_or("the end of the input".into(), |p| p.describe()),
                    });
                }
            }
        }
    }
}

/// A version of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// The original protocol.
    V0,
    /// v0 with a `version 1` line first.
    V1,
    /// Protocol v2.
    V2,
}

impl Version {
    /// The version a client asks for in its `Git-Protocol` header (colon-separated
    /// parameters): the greatest `version=<n>` it names, as git's servers choose; `V0`
    /// without the header or without a version in it. Unknown versions are ignored.
    pub fn requested(git_protocol: Option<&str>) -> Version {
        git_protocol
            .into_iter()
            .flat_map(|header| header.split(':'))
            .filter_map(|param| match param.trim().strip_prefix("version=")? {
                "0" => Some(Version::V0),
                "1" => Some(Version::V1),
                "2" => Some(Version::V2),
                _ => None,
            })
            .max()
            .unwrap_or(Version::V0)
    }
}
