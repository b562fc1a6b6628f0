//! A connection's byte stream (plain TCP, or TLS over it) that refuses to read more than a
//! budget of bytes until it is lifted: how the gateway bounds what an unauthenticated client can
//! make it buffer.

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

pub struct LimitedStream {
    inner: Transport,
    /// Bytes still allowed; `None` once the client is authenticated.
    budget: Option<usize>,
}

impl LimitedStream {
    pub fn new(inner: Transport, budget: usize) -> Self {
        LimitedStream {
            inner,
            budget: Some(budget),
        }
    }
    pub fn set_budget(&mut self, budget: Option<usize>) {
        self.budget = budget;
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
