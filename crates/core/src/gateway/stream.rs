//! A connection's byte stream (plain TCP, or TLS over it) that refuses to read more than a
//! budget of bytes until it is lifted — how the gateway bounds what an unauthenticated client
//! can make it buffer — and that hands the WebSocket library at most one frame (or the upgrade
//! request) per read, holding back whatever the client sent beyond it. The library's buffer
//! then holds nothing past the message it just returned, so a session can give that buffer
//! back after a large message ([`LimitedStream::at_boundary`]) without losing a byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// What a connection speaks over: TCP, or TLS (`gateway.tls`). The TLS state is boxed, so a
/// plain connection does not carry its size.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(t) => Pin::new(t).poll_read(cx, buf),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(t) => Pin::new(t).poll_write(cx, data),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, data),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(t) => Pin::new(t).poll_flush(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(t) => Pin::new(t).poll_shutdown(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where the bytes handed on so far stand: in the upgrade request, or in WebSocket framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The HTTP upgrade request; `matched` bytes of its closing `\r\n\r\n` seen.
    Request { matched: u8 },
    /// A frame header: its first `have` bytes seen (kept in `header`).
    Header { have: u8 },
    /// A frame's payload, with this many bytes still to come.
    Payload { left: u64 },
}

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

pub struct LimitedStream {
    inner: Transport,
    /// Bytes still allowed; `None` once the client is authenticated.
    budget: Option<usize>,
    framer: Framer,
    /// Bytes read past the end of the current frame, handed on by the next reads; empty (and
    /// unallocated) unless the client sent ahead.
    held: Vec<u8>,
    held_from: usize,
}

impl LimitedStream {
    pub fn new(inner: Transport, budget: usize) -> Self {
        LimitedStream {
            inner,
            budget: Some(budget),
            framer: Framer::default(),
            held: Vec::new(),
            held_from: 0,
        }
    }
    pub fn set_budget(&mut self, budget: Option<usize>) {
        self.budget = budget;
    }

    /// Whether every byte handed on ends a frame, and no message is half read (its first
    /// fragments in the library's hands): the library holds nothing of the client's then.
    pub fn at_boundary(&self) -> bool {
        self.framer.at_boundary() && !self.framer.in_message
    }

    /// Whether a frame larger than `limit` was handed on since the last call.
    pub fn take_large(&mut self, limit: usize) -> bool {
        std::mem::take(&mut self.framer.largest) > limit as u64
    }
}

/// Follows the bytes handed on through the upgrade request and the frames after it.
struct Framer {
    framing: Framing,
    header: [u8; MAX_HEADER],
    /// A data frame without FIN went by: the rest of its message is still to come.
    in_message: bool,
    /// The largest frame payload seen since [`LimitedStream::take_large`] last looked.
    largest: u64,
}

impl Default for Framer {
    fn default() -> Self {
        Framer {
            framing: Framing::Request { matched: 0 },
            header: [0; MAX_HEADER],
            in_message: false,
            largest: 0,
        }
    }
}

impl Framer {
    fn at_boundary(&self) -> bool {
        self.framing == Framing::Header { have: 0 }
    }

    /// Walks `bytes` (the next ones handed on) through the framing, up to and including the
    /// first end of a frame or of the upgrade request. Returns how many of them that is.
    fn walk(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            match self.framing {
                Framing::Request { matched } => {
                    let b = bytes[i];
                    i += 1;
                    let want = b"\r\n\r\n"[matched as usize];
                    let matched = if b == want {
                        matched + 1
                    } else {
                        u8::from(b == b'\r')
                    };
                    if matched == 4 {
                        self.framing = Framing::Header { have: 0 };
                        return i;
                    }
                    self.framing = Framing::Request { matched };
                }
                Framing::Header { have } => {
                    self.header[have as usize] = bytes[i];
                    i += 1;
                    let have = have as usize + 1;
                    let need = header_len(&self.header[..have]);
                    if have < need {
                        self.framing = Framing::Header { have: have as u8 };
                        continue;
                    }
                    let len = payload_len(&self.header[..have]);
                    self.largest = self.largest.max(len);
                    // Data frames (continuation, text, binary) carry a message's parts;
                    // control frames may come between them and change nothing.
                    let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
                    if opcode <= 2 {
                        self.in_message = !fin;
                    }
                    if len == 0 {
                        self.framing = Framing::Header { have: 0 };
                        return i;
                    }
                    self.framing = Framing::Payload { left: len };
                }
                Framing::Payload { left } => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    if take == left {
                        self.framing = Framing::Header { have: 0 };
                        return i;
                    }
                    self.framing = Framing::Payload { left: left - take };
                }
            }
        }
        i
    }
}

/// A frame header's full length, known once its first two bytes are (2 until then).
fn header_len(h: &[u8]) -> usize {
    let Some(&b1) = h.get(1) else { return 2 };
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// A complete header's payload length.
fn payload_len(h: &[u8]) -> u64 {
    match h[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => h[2..10].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)),
        n => u64::from(n),
    }
}

/// The error a read returns once the pre-auth budget is spent.
pub fn is_budget_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData && e.to_string() == BUDGET_MSG
}

const BUDGET_MSG: &str = "pre-authentication size limit exceeded";

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // What the client sent ahead goes first, one frame at a time.
        if this.held_from < this.held.len() {
            let held = std::mem::take(&mut this.held);
            let from = this.held_from;
            let room = buf.remaining().min(held.len() - from);
            let n = this.framer.walk(&held[from..from + room]);
            buf.put_slice(&held[from..from + n]);
            this.held_from += n;
            if this.held_from < held.len() {
                this.held = held;
            } else {
                this.held_from = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = this.read_inner(cx, buf);
        let after = buf.filled().len();
        if after > before {
            let n = this.framer.walk(&buf.filled()[before..after]);
            if before + n < after {
                this.held
                    .extend_from_slice(&buf.filled()[before + n..after]);
                buf.set_filled(before + n);
            }
        }
        r
    }
}

impl LimitedStream {
    /// One read from the socket, within the budget.
    fn read_inner(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self;
        match this.budget {
            None => Pin::new(&mut this.inner).poll_read(cx, buf),
            Some(0) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, BUDGET_MSG))),
            Some(left) => {
                let want = buf.remaining().min(left);
                let mut limited = buf.take(want);
                let r = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
                let n = limited.filled().len();
                // SAFETY: `take` views the outer buffer's unfilled region; the inner read just
                // initialised its first `n` bytes, so the outer buffer may count them as filled.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                this.budget = Some(left - n);
                r
            }
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame of `len` payload bytes (the mask is zero: framing is all that
    /// matters here).
    fn frame(opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[0; 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    /// Splits `bytes` the way reads of the stream would hand them on.
    fn handed_on(bytes: &[u8]) -> (Vec<usize>, Framer) {
        let mut f = Framer::default();
        let mut sizes = vec![];
        let mut i = 0;
        while i < bytes.len() {
            let n = f.walk(&bytes[i..]);
            sizes.push(n);
            i += n;
        }
        (sizes, f)
    }

    #[test]
    fn each_read_ends_at_the_upgrade_request_or_a_frame() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n".to_vec();
        let frames = [frame(1, 5), frame(9, 0), frame(1, 300), frame(2, 70_000)];
        let mut all = request.clone();
        for f in &frames {
            all.extend_from_slice(f);
        }
        let (sizes, s) = handed_on(&all);
        let mut want = vec![request.len()];
        want.extend(frames.iter().map(Vec::len));
        assert_eq!(sizes, want);
        assert!(s.at_boundary());
        assert_eq!(s.largest, 70_000);
    }

    #[test]
    fn a_message_in_fragments_is_half_read_until_its_last_one() {
        let (_, mut f) = handed_on(b"GET / HTTP/1.1\r\n\r\n");
        let mut first = frame(1, 10);
        first[0] &= 0x7f; // no FIN
        let mut more = frame(0, 10);
        more[0] &= 0x7f;
        f.walk(&first);
        assert!(f.at_boundary() && f.in_message);
        f.walk(&frame(9, 0)); // a ping between the fragments
        assert!(f.in_message);
        f.walk(&more);
        assert!(f.in_message);
        f.walk(&frame(0, 10)); // the last part, with FIN
        assert!(f.at_boundary() && !f.in_message);
    }

    #[test]
    fn a_frame_split_across_reads_ends_where_it_ends() {
        let (_, mut s) = handed_on(b"GET / HTTP/1.1\r\n\r\n");
        let f = frame(1, 200);
        assert_eq!(s.walk(&f[..1]), 1);
        assert_eq!(s.walk(&f[1..3]), 2);
        assert!(!s.at_boundary());
        assert_eq!(s.walk(&f[3..100]), 97);
        let mut rest = f[100..].to_vec();
        rest.extend_from_slice(&frame(1, 1));
        assert_eq!(s.walk(&rest), f.len() - 100);
        assert!(s.at_boundary());
    }
}
