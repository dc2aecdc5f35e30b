//! The ping hook pings after the route's 2xx only: never after a 4xx (the update was
//! refused: nothing changed), a 3xx or a 5xx.

use std::time::Duration;

use http::{Request, Response};
use pingpull::Network;
use pingpull::ping::{PingHookLayer, Pinger};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// A route answering the status its request's body names, hooked to `pinger` with the
/// user id from the path (`/users/{id}`).
fn route_answering_the_body(
    pinger: Pinger,
) -> impl tower::Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible>
+ Clone {
    let hook = PingHookLayer::new(pinger, |request: &Request<String>| {
        request
            .uri()
            .path()
            .strip_prefix("/users/")
            .map(str::to_owned)
    });
    ServiceBuilder::new()
        .layer(hook)
        .service(service_fn(|request: Request<String>| async move {
            let status: u16 = request.body().parse().unwrap();
            Ok(Response::builder()
                .status(status)
                .body(String::new())
                .unwrap())
        }))
}

#[tokio::test]
async fn the_hook_pings_after_a_2xx_and_never_after_a_4xx() {
    // Nothing is sent (a day's debounce): the Pinger's record says who was pinged.
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://127.0.0.1:9")
        .debounce(Duration::from_secs(86_400))
        .spawn()
        .unwrap();
    let route = route_answering_the_body(pinger.clone());
    let statuses = [200, 201, 204, 400, 401, 404, 409, 422, 301, 500, 503];
    for status in statuses {
        let request = Request::put(format!("/users/u{status}"))
            .body(status.to_string())
            .unwrap();
        let response = route.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "the response is untouched");
    }
    let report = pinger.shutdown(Duration::ZERO).await;
    assert_eq!(report.undelivered, ["u200", "u201", "u204"]);
    assert_eq!(report.stats.pinged, 3);
}
