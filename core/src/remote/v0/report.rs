//! report-status: what a receive-pack tells the client after a push.

use bstr::{BString, ByteSlice};

use crate::remote::{
    Error, Limits,
    error::show,
    lines::Lines,
    pkt::{self, Reader},
    ref_name,
    sideband::{self, Band},
};

/// The outcome of one step of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It went through (`unpack ok`, `ok <ref>`).
    Ok,
    /// It failed, for this reason (`unpack <reason>`, `ng <ref> <reason>`).
    Failed(String),
}

/// What became of one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefStatus {
    /// The ref's full name.
    pub name: BString,
    /// Whether it was updated.
    pub status: Status,
}

/// A report-status (the `report-status` capability, v1 of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Whether the pack was received and unpacked.
    pub unpack: Status,
    /// Each command's ref, in the order of the commands.
    pub refs: Vec<RefStatus>,
}

impl Report {
    /// Write the report: `unpack ...`, a line per ref, a flush; with `sideband` (the
    /// client chose `side-band-64k`) all of it, flush included, as band-1 data, then the
    /// flush that ends the side-band stream, as git's receive-pack sends it. Progress a
    /// server sends before goes on band 2 ([`sideband::write`]).
    pub fn write_to(&self, out: &mut Vec<u8>, sideband: bool) -> Result<(), Error> {
        let mut report = Vec::new();
        match &self.unpack {
            Status::Ok => pkt::text(&mut report, &[b"unpack ok"])?,
            Status::Failed(reason) => pkt::text(&mut report, &[b"unpack ", check_reason(reason, true)?])?,
        }
        for r in &self.refs {
            ref_name(&r.name)?;
            match &r.status {
                Status::Ok => pkt::text(&mut report, &[b"ok ", &r.name])?,
                Status::Failed(reason) => {
                    pkt::text(&mut report, &[b"ng ", &r.name, b" ", check_reason(reason, false)?])?;
                }
            }
        }
        pkt::flush(&mut report);
        if sideband {
            sideband::write(out, Band::Data, &report);
            pkt::flush(out);
        } else {
            out.extend_from_slice(&report);
        }
        Ok(())
    }

    /// Read a report, for a client (`sideband` if it chose `side-band-64k`), with the
    /// progress that came on band 2. `option` lines (report-status-v2, which snapgit does
    /// not ask for) are refused; a band-3 message or an `ERR` line is
    /// [`Error::Remote`].
    pub fn from_bytes(bytes: &[u8], sideband: bool, limits: &Limits) -> Result<(Report, Vec<u8>), Error> {
        if !sideband {
            return Ok((parse(bytes, limits)?, Vec::new()));
        }
        let mut reader = Reader::new(bytes);
        let got = sideband::demux(&mut reader)?;
        if !reader.rest().is_empty() {
            return Err(Error::Unexpected {
                at: reader.offset(),
                expected: "the end of the report",
                found: format!("{} more bytes", reader.rest().len()),
            });
        }
        Ok((parse(&got.data, limits)?, got.progress))
    }
}

fn parse(bytes: &[u8], limits: &Limits) -> Result<Report, Error> {
    let mut lines = Lines::response(bytes, limits, false);
    let (at, line) = lines.line("unpack ok or unpack <error>")?;
    let unpack = match line.strip_prefix(b"unpack ") {
        Some(b"ok") => Status::Ok,
        Some(reason) if !reason.is_empty() => Status::Failed(show_all(reason)),
        _ => {
            return Err(Error::Unexpected {
                at,
                expected: "unpack ok or unpack <error>",
                found: format!("the line {:?}", show(line)),
            });
        }
    };
    let mut report = Report {
        unpack,
        refs: Vec::new(),
    };
    let expected = "ok <ref>, ng <ref> <reason> or a flush-pkt";
    while let Some((at, line)) = lines.line_or_flush(expected)? {
        let status = if let Some(name) = line.strip_prefix(b"ok ") {
            RefStatus {
                name: ref_name(name)?,
                status: Status::Ok,
            }
        } else if let Some((name, reason)) = line.strip_prefix(b"ng ").and_then(|rest| rest.split_once_str(b" ")) {
            RefStatus {
                name: ref_name(name)?,
                status: Status::Failed(show_all(reason)),
            }
        } else {
            return Err(Error::Unexpected {
                at,
                expected,
                found: format!("the line {:?}", show(line)),
            });
        };
        report.refs.push(status);
    }
    lines.end()?;
    Ok(report)
}

/// A reason as it arrived, whole (lossy UTF-8).
fn show_all(reason: &[u8]) -> String {
    String::from_utf8_lossy(reason).into_owned()
}

/// A reason that fits its line: not empty, no newline or NUL, and for `unpack` not `ok`.
fn check_reason(reason: &str, unpack: bool) -> Result<&[u8], Error> {
    if reason.is_empty() || reason.contains(['\n', '\0']) || (unpack && reason == "ok") {
        return Err(Error::InvalidValue {
            what: "reason",
            value: show(reason.as_bytes()),
        });
    }
    Ok(reason.as_bytes())
}
