//! The request-head read timeout, kept in each connection's IO.
//!
//! `axum::serve` builds hyper's connections itself, without a timer, so hyper's own
//! `header_read_timeout` cannot be set. Instead every accepted stream carries a
//! [`HeadTimer`]: armed when the connection opens and again once a response is ready,
//! paused while a request is being handled (its body has its own timeout, answered 408).
//! A read while the timer is armed and past its deadline fails, and hyper closes the
//! connection, so idle and slow-loris clients cannot hold connections for ever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// A TCP listener whose connections must send each request head within `timeout`.
pub(super) struct HeadTimeoutListener {
    inner: TcpListener,
    timeout: Duration,
}

impl HeadTimeoutListener {
    pub(super) fn new(inner: TcpListener, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl Listener for HeadTimeoutListener {
    type Io = TimedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimedStream, SocketAddr) {
        // axum's accept retries a per-connection error at once and sleeps a second after
        // any other (out of file descriptors), so a failing accept never spins.
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        (
            TimedStream::new(stream, HeadTimer::armed(self.timeout)),
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The deadline of one connection's next request head; `None` while a request is handled.
#[derive(Clone)]
pub(super) struct HeadTimer {
    deadline: Arc<Mutex<Option<Instant>>>,
    timeout: Duration,
}

impl HeadTimer {
    fn armed(timeout: Duration) -> Self {
        Self {
            deadline: Arc::new(Mutex::new(Some(Instant::now() + timeout))),
            timeout,
        }
    }

    /// A request head has arrived: its handling is not timed here.
    pub(super) fn pause(&self) {
        *crate::sync::lock(&self.deadline) = None;
    }

    /// A response is ready: the next request head must arrive within the timeout.
    pub(super) fn restart(&self) {
        *crate::sync::lock(&self.deadline) = Some(Instant::now() + self.timeout);
    }

    fn deadline(&self) -> Option<Instant> {
        *crate::sync::lock(&self.deadline)
    }
}

impl Connected<IncomingStream<'_, HeadTimeoutListener>> for HeadTimer {
    fn connect_info(stream: IncomingStream<'_, HeadTimeoutListener>) -> Self {
        stream.io().timer.clone()
    }
}

/// A TCP stream whose reads fail once its [`HeadTimer`] is armed and past due.
pub(super) struct TimedStream {
    stream: TcpStream,
    timer: HeadTimer,
    sleep: Pin<Box<Sleep>>,
}

impl TimedStream {
    fn new(stream: TcpStream, timer: HeadTimer) -> Self {
        let first = timer.deadline().unwrap_or_else(Instant::now);
        Self {
            stream,
            timer,
            sleep: Box::pin(tokio::time::sleep_until(first)),
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(deadline) = this.timer.deadline() {
            if this.sleep.deadline() != deadline {
                this.sleep.as_mut().reset(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received in time",
                )));
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
