//! The Pull endpoint and the ping hook as actix-web middleware, on a real actix server on
//! 127.0.0.1:0: the conformance check the tower layer passes, a signed profile, an empty
//! 403, the app's own routes untouched, and a ping after an update route's 2xx only.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle, ServiceRequest};
use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::actix::{PingHookMiddleware, PullMiddleware};
use pingpull::check::{CheckOptions, check_endpoint};
use pingpull::emulator::Emulator;
use pingpull::ping::Pinger;
use pingpull::profile::{self, SIGNATURE_HEADER};
use pingpull::pull::PullLayer;
use pingpull::token;

// The same network and users the tower stacks are checked with.
use super::frameworks::{network, users};

/// An actix server on its own thread and `System`, stopped when dropped.
struct ActixServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl ActixServer {
    /// Runs the server `serve` makes on a listener bound to 127.0.0.1:0.
    fn start(serve: impl FnOnce(std::net::TcpListener) -> Server + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = serve(listener);
                sender.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        let handle = receiver.recv().unwrap();
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ActixServer {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        // Awaited on a thread of its own: the test's runtime may be the current thread.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(stop);
        })
        .join()
        .unwrap();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

async fn send(method: http::Method, url: &str) -> (StatusCode, http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// An app with the Pull middleware, a route of its own and a 404 for the rest, served
/// by one worker without actix's own signal handling.
fn serve_with_pull(layer: PullLayer) -> impl FnOnce(std::net::TcpListener) -> Server + Send {
    move |listener| {
        HttpServer::new(move || {
            App::new()
                .wrap(PullMiddleware::new(layer.clone()))
                .route("/hello", web::get().to(|| async { "hello" }))
                .default_service(web::to(HttpResponse::NotFound))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_middleware_passes_the_conformance_check() {
    let layer = PullLayer::new("/livefyre/pull?id={id}", network(), users()).unwrap();
    let server = ActixServer::start(serve_with_pull(layer));
    let options = CheckOptions::new(network(), server.url("/livefyre/pull?id={id}"), "u1")
        .unknown_user("nobody");
    let report = check_endpoint(&options).await.unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.warnings().count(), 0, "{report}");
    assert_eq!(report.cases.len(), 10, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_signed_profile_refuses_a_bad_token_and_leaves_other_routes_alone() {
    let layer = PullLayer::new("/users/{id}/livefyre", network(), users()).unwrap();
    let server = ActixServer::start(serve_with_pull(layer));
    let template =
        pingpull::template::PullUrlTemplate::parse(&server.url("/users/{id}/livefyre")).unwrap();

    let lftoken = token::system_token(&network());
    let url = template.url_for("u1", lftoken.as_str());
    let (status, headers, body) = send(http::Method::GET, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    profile::verify_body_signature(&network(), signature, &body).unwrap();
    assert_eq!(
        profile::read_tolerant(&body, Some("u1"))
            .unwrap()
            .display_name,
        "Ada"
    );

    // HEAD: GET's head, its length, no body.
    let (status, headers, head_body) = send(http::Method::HEAD, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    assert!(head_body.is_empty());

    let (status, _, body) = send(http::Method::GET, &template.url_for("u1", "not-a-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.is_empty());

    let (status, _, body) = send(http::Method::GET, &server.url("/hello")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "hello");
    let (status, _, _) = send(http::Method::GET, &server.url("/users/u1/other")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_hook_pings_after_a_2xx_only() {
    let emulator = Emulator::start(network()).await.unwrap();
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .spawn()
        .unwrap();
    let hooked = pinger.clone();
    let server = ActixServer::start(move |listener| {
        HttpServer::new(move || {
            let hook = PingHookMiddleware::new(hooked.clone(), |request: &ServiceRequest| {
                request.match_info().get("id").map(str::to_owned)
            });
            App::new().service(web::resource("/users/{id}/profile").wrap(hook).route(
                web::put().to(|path: web::Path<String>| async move {
                    if path.as_str() == "u404" {
                        HttpResponse::NotFound().finish()
                    } else {
                        HttpResponse::Ok().body("saved")
                    }
                }),
            ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run()
    });

    let (status, _, _) = send(http::Method::PUT, &server.url("/users/u404/profile")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        pinger.stats().pinged,
        0,
        "a 404 from the route pings nobody"
    );

    let (status, _, _) = send(http::Method::PUT, &server.url("/users/u1/profile")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pinger.stats().pinged, 1);
    let report = pinger.shutdown(Duration::from_secs(10)).await;
    assert!(report.undelivered.is_empty(), "{report:?}");
    assert_eq!(emulator.pings_received("u1"), 1);
    assert_eq!(emulator.pings_received("u404"), 0);
}
