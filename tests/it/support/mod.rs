//! Test doubles shared by the integration tests.

#[cfg(feature = "postgres")]
pub(crate) mod database;
#[cfg(feature = "ping")]
pub(crate) mod fake_livefyre;
#[cfg(feature = "ping")]
pub(crate) mod forward_proxy;
#[cfg(feature = "ping")]
pub(crate) mod scripted_livefyre;
#[cfg(feature = "rustls")]
pub(crate) mod tls_front;
pub(crate) mod traces;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use tracing_subscriber::fmt::MakeWriter;

/// A token with arbitrary header and payload JSON, signed with `key` (HS256), for
/// testing what validation makes of tokens no builder would make.
pub(crate) fn forge(header: &str, payload: &str, key: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{message}.{signature}")
}

/// Strict percent-decoding, written independently of the library's so tests can use it
/// as an oracle: `None` for a `%` not followed by two hex digits.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Everything a `tracing_subscriber::fmt` subscriber writes, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Writes what this thread logs up to `level` into this capture, without colour,
    /// until the guard drops.
    pub(crate) fn install(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        traces::install_for_this_thread(subscriber)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A port on 127.0.0.1 where nothing listens, for as long as the socket lives: bound
/// (so no one else can take the port: it is bound without `SO_REUSEADDR`) but never
/// listening, so the kernel refuses every connection to it. Unlike a listener bound and
/// dropped, whose port another test may take meanwhile, this is deterministic.
pub(crate) fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}
