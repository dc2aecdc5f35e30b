//! The same layer mounted in axum, tonic and bare hyper, each served on 127.0.0.1:0 and
//! called over real HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use pingpull::profile::{self, SIGNATURE_HEADER};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile, token};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::Layer;

pub(super) fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

pub(super) fn users() -> InMemorySource {
    [Profile::builder("u1", "Ada").tags(["staff"]).build()]
        .into_iter()
        .collect()
}

/// A server task that is stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn get(url: &str) -> (StatusCode, http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// What every stack must do: serve a signed profile, refuse a bad token with an empty
/// 403, and leave the app's own route alone.
async fn check_stack(server: Server, template: &str, ordinary_path: &str, ordinary_body: &str) {
    let base = format!("http://{}", server.addr);
    let template =
        pingpull::template::PullUrlTemplate::parse(&format!("{base}{template}")).unwrap();

    let lftoken = token::system_token(&network());
    let (status, headers, body) = get(&template.url_for("u1", lftoken.as_str())).await;
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

    let (status, _, body) = get(&template.url_for("u1", "not-a-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.is_empty());

    let (status, _, body) = get(&format!("{base}{ordinary_path}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, ordinary_body);
}

#[tokio::test]
async fn mounts_in_axum() {
    use axum::{Router, routing::get as route_get};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pull = PullLayer::new("/livefyre/pull?id={id}", network(), users()).unwrap();
    let app = Router::new()
        .route("/hello", route_get(|| async { "hello" }))
        .layer(pull);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    check_stack(
        Server { addr, task },
        "/livefyre/pull?id={id}",
        "/hello",
        "hello",
    )
    .await;
}

#[tokio::test]
async fn mounts_in_tonic() {
    use tonic::transport::server::TcpIncoming;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pull = PullLayer::new("/users/{id}/livefyre", network(), users()).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(pull)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let server = Server { addr, task };

    // The gRPC service still answers through the layer.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        status.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let base = format!("http://{addr}");
    let lftoken = token::system_token(&network());
    let (status, headers, body) = get(&format!(
        "{base}/users/u1/livefyre?lftoken={}",
        lftoken.as_str()
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    profile::verify_body_signature(
        &network(),
        headers[SIGNATURE_HEADER].to_str().unwrap(),
        &body,
    )
    .unwrap();
    let (status, _, body) = get(&format!("{base}/users/u1/livefyre?lftoken=bad")).await;
    assert_eq!((status, body.is_empty()), (StatusCode::FORBIDDEN, true));
    drop(server);
}

#[tokio::test]
async fn mounts_in_bare_hyper() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pull = PullLayer::new("/pull?id={id}", network(), users()).unwrap();
    let service = pull.layer(tower::service_fn(
        |_request: Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::from("app")))
        },
    ));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    check_stack(Server { addr, task }, "/pull?id={id}", "/anything", "app").await;
}
