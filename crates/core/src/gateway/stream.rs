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
    /// The upgrade's answer and what follows it, on their way out (empty, and unallocated,
    /// once they are).
    out: Vec<u8>,
    answer: Answer,
}

/// The upgrade's `101 Switching Protocols`, which waits for the first frame after it
/// (`connect.challenge`) so that the two leave in one send: one segment and one wake-up for
/// the client, one system call for the gateway. A refusal (any other status) goes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing written yet.
    Awaited,
    /// The `101` is in `out`, waiting for the first frame.
    Held,
    /// Written through; `out` holds only what the socket has not taken yet.
    Through,
}

/// The most of a first frame that joins the held answer; a larger one is written after it.
const JOIN_AT_MOST: usize = 4096;

impl LimitedStream {
    pub fn new(inner: Transport, budget: usize) -> Self {
        LimitedStream {
            inner,
            budget: Some(budget),
            framer: Framer::default(),
            held: Vec::new(),
            held_from: 0,
            out: Vec::new(),
            answer: Answer::Awaited,
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

impl LimitedStream {
    /// Writes what is waiting in `out`; ready once the socket has taken all of it.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.out.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out = Vec::new();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.answer {
            Answer::Awaited if data.starts_with(b"HTTP/1.1 101 ") => {
                this.answer = Answer::Held;
                this.out.extend_from_slice(data);
                return Poll::Ready(Ok(data.len()));
            }
            Answer::Awaited => this.answer = Answer::Through,
            Answer::Held => {
                this.answer = Answer::Through;
                if data.len() <= JOIN_AT_MOST {
                    this.out.extend_from_slice(data);
                    // Taken: what the socket does not take now, the next flush writes.
                    if let Poll::Ready(Err(e)) = this.poll_out(cx) {
                        return Poll::Ready(Err(e));
                    }
                    return Poll::Ready(Ok(data.len()));
                }
            }
            Answer::Through => {}
        }
        std::task::ready!(this.poll_out(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answer == Answer::Held {
            // The upgrade's own flush: the answer waits for the first frame.
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(this.poll_out(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.answer = Answer::Through;
        std::task::ready!(this.poll_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

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

    /// A gateway-side stream over loopback TCP, and the client's end of it.
    async fn pair() -> (LimitedStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (
            LimitedStream::new(Transport::Plain(server), 1 << 16),
            client,
        )
    }

    /// Writes `bytes` to the gateway's side and flushes, as the WebSocket library does.
    async fn send(server: &mut LimitedStream, bytes: &[u8]) {
        server.write_all(bytes).await.unwrap();
        server.flush().await.unwrap();
    }

    /// What the client can read now, after giving the bytes on their way time to arrive.
    async fn readable_now(client: &TcpStream) -> Vec<u8> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut buf = vec![0; 16 * 1024];
        match client.try_read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("read: {e}"),
        }
    }

    #[tokio::test]
    async fn the_upgrade_answer_leaves_with_the_first_frame_in_one_send() {
        let (mut server, client) = pair().await;
        let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        send(&mut server, answer).await;
        assert_eq!(
            readable_now(&client).await,
            b"",
            "the answer waits for the frame"
        );
        let challenge = b"\x81\x05hello";
        send(&mut server, challenge).await;
        // One read takes both: they left as one segment.
        assert_eq!(
            readable_now(&client).await,
            [&answer[..], challenge].concat()
        );
        // After that, writes go straight through.
        send(&mut server, b"\x81\x01x").await;
        assert_eq!(readable_now(&client).await, b"\x81\x01x");
        assert!(server.out.capacity() == 0, "nothing kept once sent");
    }

    #[tokio::test]
    async fn a_refused_upgrade_and_a_large_first_frame_are_not_held() {
        let (mut server, client) = pair().await;
        let refusal = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
        send(&mut server, refusal).await;
        assert_eq!(readable_now(&client).await, refusal);

        let (mut server, client) = pair().await;
        let answer = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";
        server.write_all(answer).await.unwrap();
        let large = vec![b'x'; JOIN_AT_MOST + 1];
        send(&mut server, &large).await;
        assert_eq!(readable_now(&client).await, [&answer[..], &large].concat());

        // Closing sends a held answer rather than dropping it.
        let (mut server, client) = pair().await;
        server.write_all(answer).await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(readable_now(&client).await, answer);
    }
}
