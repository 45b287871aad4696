//! The wire protocol's codecs: byte-exact framing from git's documents, round trips of
//! every encoder and decoder, hostile input as typed errors, and real git on the other
//! side of each exchange (`git upload-pack` and `git receive-pack` answering our
//! requests; `git clone` and `git push` reading our answers).

#[cfg(unix)]
mod git;
mod http;
mod pkt;
mod v0;
mod v2;

use snapgit_core::ObjectId;

/// An id made of one repeated byte.
fn id(n: u8) -> ObjectId {
    ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).unwrap()
}

/// `data` framed as one pkt-line.
fn line(data: &str) -> Vec<u8> {
    let mut out = Vec::new();
    snapgit_core::remote::pkt::line(&mut out, data.as_bytes()).unwrap();
    out
}

/// Lines, each framed, then the given trailer (`"0000"`...).
fn lines(data: &[&str], trailer: &str) -> Vec<u8> {
    let mut out: Vec<u8> = data.iter().flat_map(|d| line(d)).collect();
    out.extend_from_slice(trailer.as_bytes());
    out
}

/// What a hostile input's error must be.
type Check = fn(&snapgit_core::remote::Error) -> bool;
