//! Serving an app the way a production server should: a deadline for each request head,
//! so a client that sends half a request cannot hold a connection open for ever, and a
//! graceful stop on Ctrl-C or SIGTERM that lets the requests in flight finish.
//!
//! `axum::serve` sets no header-read timeout, so the examples serve through hyper-util's
//! connection builder (HTTP/1 and, for gRPC, HTTP/2), which takes one.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a client has to send a request head (and, on a new connection, its first
/// byte) before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may run on after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// HTTP/2 connections are pinged this often, and closed when a ping goes unanswered.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Resolves on Ctrl-C or, on unix, SIGTERM (what `docker stop` and Kubernetes send).
/// The handlers are installed by this call, not on first poll: call it before announcing
/// the server, so a signal sent as soon as the address is printed is not missed.
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub(crate) fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish (up to 10 s) and returns.
///
/// Accept errors (out of file descriptors, say) are logged and retried after a pause,
/// as `axum::serve` does, rather than ending the server.
pub(crate) async fn serve<S, B>(listener: TcpListener, app: S, shutdown: impl Future<Output = ()>)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEP_ALIVE);
    let builder = Arc::new(builder);
    let (stop, stopping) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let service = TowerToHyperService::new(app.clone());
                tokio::spawn(serve_connection(
                    builder.clone(),
                    stream,
                    service,
                    stopping.clone(),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    // New connections are refused from here; each open one holds a receiver until done.
    drop(listener);
    drop(stopping);
    stop.send_replace(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            open = stop.receiver_count(),
            "connections still open after the shutdown grace period; closing them"
        );
    }
}

/// One connection: HTTP/1 or HTTP/2 as the client speaks, closed gracefully (the request
/// in flight answered, then `Connection: close`) once `stopping` changes.
async fn serve_connection<S, B>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    service: TowerToHyperService<S>,
    mut stopping: watch::Receiver<()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // The protocol is told from the first bytes, before HTTP/1's header timer starts:
    // a client that sends nothing at all gets the same deadline here.
    let mut first = [0; 1];
    tokio::select! {
        peeked = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)) => {
            if !matches!(peeked, Ok(Ok(1..))) {
                return;
            }
        }
        _ = stopping.changed() => return,
    }
    let mut connection =
        pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopping.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Timeouts and clients that hang up: per connection, not an operator's concern.
        tracing::debug!(%error, "connection ended with an error");
    }
}
