//! The lines of one message, as the v0 and v2 grammars read them: within [`Limits`],
//! each step naming what it expects, a remote's `ERR` line and (with `sideband-all`) the
//! side-band unwrapped.

use super::{
    Error, Limits,
    pkt::{Packet, Reader, chomp},
    sideband,
};

/// The lines of one message, read within [`Limits`], each step naming what the grammar
/// expects so that an error can say it.
pub(crate) struct Lines<'a> {
    reader: Reader<'a>,
    limits: Limits,
    lines: usize,
    bytes: usize,
    /// A client reads `ERR <message>` as the remote's error.
    remote_errors: bool,
    /// With `sideband-all`, every data line starts with its band; progress (band 2) is
    /// collected here, an error (band 3) ends the message.
    sideband_all: bool,
    pub(crate) progress: Vec<u8>,
}

impl<'a> Lines<'a> {
    /// The lines of a request, read by a server.
    pub(crate) fn request(buf: &'a [u8], limits: &Limits) -> Self {
        Lines {
            reader: Reader::new(buf),
            limits: *limits,
            lines: 0,
            bytes: 0,
            remote_errors: false,
            sideband_all: false,
            progress: Vec::new(),
        }
    }

    /// The lines of a response, read by a client: `ERR` lines are the remote's errors.
    pub(crate) fn response(buf: &'a [u8], limits: &Limits, sideband_all: bool) -> Self {
        Lines {
            remote_errors: true,
            sideband_all,
            ..Lines::request(buf, limits)
        }
    }

    /// The offset of the next packet.
    pub(crate) fn at(&self) -> usize {
        self.reader.offset()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.reader.rest()
    }

    /// The packet reader, for the side-band packets of a pack (not counted as lines).
    pub(crate) fn reader(&mut self) -> &mut Reader<'a> {
        &mut self.reader
    }

    /// The next packet, a data line without its `\n`; the end of the input is an error
    /// saying `expected` was due.
    pub(crate) fn next(&mut self, expected: &'static str) -> Result<(usize, Packet<'a>), Error> {
        loop {
            let at = self.at();
            let Some(packet) = self.reader.read()? else {
                return Err(Error::Unexpected {
                    at,
                    expected,
                    found: "the end of the input".into(),
                });
            };
            self.bytes += self.at() - at;
            if self.bytes > self.limits.max_bytes {
                return Err(Error::LimitExceeded {
                    what: "bytes",
                    limit: self.limits.max_bytes,
                });
            }
            let Packet::Data(mut data) = packet else {
                return Ok((at, packet));
            };
            self.lines += 1;
            if self.lines > self.limits.max_lines {
                return Err(Error::LimitExceeded {
                    what: "lines",
                    limit: self.limits.max_lines,
                });
            }
            if self.sideband_all {
                let (band, payload) = sideband::split(at, data)?;
                match band {
                    sideband::Band::Data => data = payload,
                    sideband::Band::Progress => {
                        self.progress.extend_from_slice(payload);
                        continue;
                    }
                    sideband::Band::Error => return Err(sideband::remote(payload)),
                }
            }
            let line = chomp(data);
            if self.remote_errors
                && let Some(err) = super::remote_error(line)
            {
                return Err(err);
            }
            return Ok((at, Packet::Data(line)));
        }
    }

    /// The next packet, which must be a data line.
    pub(crate) fn line(&mut self, expected: &'static str) -> Result<(usize, &'a [u8]), Error> {
        match self.next(expected)? {
            (at, Packet::Data(line)) => Ok((at, line)),
            (at, packet) => Err(Error::Unexpected {
                at,
                expected,
                found: packet.describe(),
            }),
        }
    }

    /// The next data line, or `None` at a flush-pkt (which ends a list); anything else is
    /// unexpected.
    pub(crate) fn line_or_flush(&mut self, expected: &'static str) -> Result<Option<(usize, &'a [u8])>, Error> {
        match self.next(expected)? {
            (_, Packet::Flush) => Ok(None),
            (at, Packet::Data(line)) => Ok(Some((at, line))),
            (at, packet) => Err(Error::Unexpected {
                at,
                expected,
                found: packet.describe(),
            }),
        }
    }

    /// The end of the input, after an optional response-end-pkt (which a stateless
    /// connection may add after a response).
    pub(crate) fn end(&mut self) -> Result<(), Error> {
        let at = self.at();
        match self.reader.read()? {
            None => Ok(()),
            Some(Packet::ResponseEnd) if self.remote_errors => self.end(),
            Some(packet) => Err(Error::Unexpected {
                at,
                expected: "the end of the message",
                found: packet.describe(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::pkt;

    #[test]
    fn lines_count_against_the_limits() {
        let mut buf = Vec::new();
        for _ in 0..3 {
            pkt::line(&mut buf, b"have\n").unwrap();
        }
        let limits = Limits {
            max_lines: 2,
            max_bytes: 1000,
        };
        let mut lines = Lines::request(&buf, &limits);
        lines.line("a line").unwrap();
        lines.line("a line").unwrap();
        assert_eq!(
            lines.line("a line"),
            Err(Error::LimitExceeded {
                what: "lines",
                limit: 2
            })
        );
        let limits = Limits {
            max_lines: 10,
            max_bytes: 10,
        };
        let mut lines = Lines::request(&buf, &limits);
        lines.line("a line").unwrap();
        assert!(matches!(
            lines.line("a line"),
            Err(Error::LimitExceeded { what: "bytes", .. })
        ));
    }
}
