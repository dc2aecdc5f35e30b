//! The emulator over loopback: its ping and registration endpoints, its pulls against
//! good and broken Pull endpoints, its inspection routes and its faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::emulator::{Emulator, EmulatorEvent, Faults};
use pingpull::ping::{LivefyreClient, Pinger, RetrySchedule};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile, token};
use tokio::net::TcpListener;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn send(method: &str, url: &str, content_type: Option<&str>, body: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = client
        .request(request.body(Full::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// Serves `app` on 127.0.0.1:0; the task stops with the test's runtime.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A real Pull endpoint (the layer) serving u1 and u2.
async fn good_endpoint(users: InMemorySource) -> String {
    let base =
        serve(Router::new().layer(PullLayer::new("/pull?id={id}", network(), users).unwrap()))
            .await;
    format!("{base}/pull?id={{id}}")
}

fn users() -> InMemorySource {
    [
        Profile::builder("u1", "Ada").build(),
        Profile::builder("u2", "Grace").tags(["navy"]).build(),
    ]
    .into_iter()
    .collect()
}

fn system_token() -> String {
    token::system_token(&network()).into_string()
}

#[tokio::test]
async fn accepts_pings_with_the_token_in_the_query_or_any_body_on_both_paths() {
    let emulator = Emulator::start(network()).await.unwrap();
    let base = emulator.base_url();
    let t = system_token();
    let cases = [
        (
            format!("{base}/api/v3_0/user/u1/refresh"),
            Some("application/x-www-form-urlencoded"),
            format!("lftoken={t}"),
        ),
        (
            format!("{base}/api/v3.0/user/u1/refresh?lftoken={t}"),
            None,
            String::new(),
        ),
        (
            format!("{base}/api/v3_0/user/u1/refresh"),
            Some("application/json"),
            format!("lftoken={t}"),
        ),
        (
            format!("{base}/api/v3_0/user/u1/refresh"),
            None,
            format!("lftoken={t}"),
        ),
    ];
    for (url, content_type, body) in &cases {
        assert_eq!(
            send("POST", url, *content_type, body).await.status,
            200,
            "{url}"
        );
    }
    assert_eq!(emulator.pings_received("u1"), 4);
}

#[tokio::test]
async fn refuses_bad_tokens_bad_ids_and_other_methods() {
    let emulator = Emulator::start(network()).await.unwrap();
    let base = emulator.base_url();
    let user_token =
        token::user_auth_token(&network(), "u1", "Ada", Duration::from_secs(60)).unwrap();
    let other = Network::new("other.fyre.co", "testkeytest").unwrap();
    for body in [
        String::new(),
        "lftoken=garbage".to_owned(),
        format!("lftoken={}", user_token.as_str()),
        format!("lftoken={}", token::system_token(&other).as_str()),
    ] {
        let answer = send(
            "POST",
            &format!("{base}/api/v3_0/user/u1/refresh"),
            None,
            &body,
        )
        .await;
        assert_eq!(answer.status, 403, "{body}");
    }
    let t = system_token();
    assert_eq!(
        send(
            "POST",
            &format!("{base}/api/v3_0/user/a%2Fb/refresh"),
            None,
            &format!("lftoken={t}")
        )
        .await
        .status,
        400
    );
    assert_eq!(
        send(
            "POST",
            &format!("{base}/api/v3_0/user/../refresh"),
            None,
            &format!("lftoken={t}")
        )
        .await
        .status,
        400
    );
    assert_eq!(
        send(
            "GET",
            &format!("{base}/api/v3_0/user/u1/refresh?lftoken={t}"),
            None,
            ""
        )
        .await
        .status,
        405
    );
    assert_eq!(emulator.pings_received("u1"), 0);
}

#[tokio::test]
async fn registration_takes_the_template_from_the_query_or_form_body() {
    let emulator = Emulator::start(network()).await.unwrap();
    let base = emulator.base_url();
    let t = system_token();
    let template = "https://site.example/users/{id}/livefyre";
    let encoded = "https%3A%2F%2Fsite.example%2Fusers%2F%7Bid%7D%2Flivefyre";
    let answer = send(
        "POST",
        &format!("{base}/"),
        Some("application/x-www-form-urlencoded"),
        &format!("actor_token={t}&pull_profile_url={encoded}"),
    )
    .await;
    assert_eq!(answer.status, 204);
    assert_eq!(emulator.pull_url().as_deref(), Some(template));
    let answer = send(
        "POST",
        &format!("{base}/?actor_token={t}&pull_profile_url=http://a.example/p?id%3D%7Bid%7D"),
        None,
        "",
    )
    .await;
    assert_eq!(answer.status, 204);
    assert_eq!(
        emulator.pull_url().as_deref(),
        Some("http://a.example/p?id={id}")
    );
    let no_id = send(
        "POST",
        &format!("{base}/"),
        None,
        &format!("actor_token={t}&pull_profile_url=https%3A%2F%2Fs.example%2Fu"),
    )
    .await;
    assert_eq!(no_id.status, 400);
    let bad_token = send(
        "POST",
        &format!("{base}/"),
        None,
        &format!("actor_token=x&pull_profile_url={encoded}"),
    )
    .await;
    assert_eq!(bad_token.status, 403);
    // The LivefyreClient speaks the same protocol.
    LivefyreClient::new(network(), &base)
        .unwrap()
        .register_pull_url(template)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_ping_makes_it_pull_and_store_the_remote_profile() {
    let users = users();
    let template = good_endpoint(users.clone()).await;
    let emulator = Emulator::builder(network())
        .pull_url(&template)
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    client.sync_user("u2").await.unwrap();
    let profile = emulator
        .wait_for_profile("u2", Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    assert_eq!(profile, users.get("u2").unwrap());
    let user = emulator.user("u2").unwrap();
    let pull = user.last_pull.unwrap();
    assert_eq!(
        (pull.ok, pull.status, pull.signature_verified, pull.attempts),
        (true, Some(200), Some(true), 1)
    );
    assert!(user.updated_at.is_some());

    // A change, a ping, and the remote profile follows.
    users
        .update("u2", |p| p.display_name = "Grace Hopper".into())
        .unwrap();
    client.sync_user("u2").await.unwrap();
    emulator
        .wait_for_profile("u2", Duration::from_secs(5), |p| {
            p.display_name == "Grace Hopper"
        })
        .await
        .unwrap();
}

/// Endpoints broken on purpose, one path each.
async fn broken_endpoints(hits: Arc<AtomicUsize>) -> String {
    let body =
        |json: &'static str| move || async move { ([("content-type", "application/json")], json) };
    let app = Router::new()
        .route("/forbidden/{id}", get(|| async { StatusCode::FORBIDDEN }))
        .route("/missing/{id}", get(|| async { StatusCode::NOT_FOUND }))
        .route("/not-json/{id}", get(body("<html>oops</html>")))
        .route("/no-name/{id}", get(body(r#"{"id":"u1"}"#)))
        .route(
            "/wrong-id/{id}",
            get(body(r#"{"id":"u9","display_name":"Eve"}"#)),
        )
        .route(
            "/bad-signature/{id}",
            get(|| async {
                let mut headers = HeaderMap::new();
                headers.insert(
                    "x-profile-signature",
                    "eyJhbGciOiJIUzI1NiJ9..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                        .parse()
                        .unwrap(),
                );
                (headers, r#"{"id":"u1","display_name":"Ada"}"#)
            }),
        )
        .route(
            "/flaky/{id}",
            get(move |Path(id): Path<String>| {
                let hits = hits.clone();
                async move {
                    if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(StatusCode::BAD_GATEWAY)
                    } else {
                        Ok(format!(
                            r#"{{"id":"{id}","display_name":"Flaky but fine","moderator":"true"}}"#
                        ))
                    }
                }
            }),
        )
        .route(
            "/slow/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "{}"
            }),
        );
    serve(app).await
}

#[tokio::test]
async fn records_each_kind_of_failed_pull() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = broken_endpoints(hits.clone()).await;
    // A pull timeout of seconds: on a busy machine a prompt answer still counts as one;
    // only `/slow` (an hour) times out.
    let emulator = Emulator::builder(network())
        .pull_timeout(Duration::from_secs(2))
        .pull_retries(
            RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0),
            3,
        )
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    let cases = [
        ("forbidden", Some(403), "answered 403"),
        ("missing", Some(404), "answered 404"),
        ("not-json", Some(200), "not valid JSON"),
        ("no-name", Some(200), "`display_name` is required"),
        (
            "wrong-id",
            Some(200),
            "`id` differs from the requested user id",
        ),
        (
            "bad-signature",
            Some(200),
            "X-Profile-Signature does not match",
        ),
        ("slow", None, "timed out"),
    ];
    for (path, status, error) in cases {
        emulator
            .set_pull_url(&format!("{base}/{path}/{{id}}"))
            .unwrap();
        let pings_before = emulator.pings_received("u1");
        client.sync_user("u1").await.unwrap();
        // `/slow` takes three attempts of 2 s each.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let pull = loop {
            let user = emulator.user("u1").unwrap();
            if let Some(pull) = user.last_pull.filter(|_| user.pings > pings_before)
                && emulator
                    .events()
                    .iter()
                    .filter(|e| matches!(e, EmulatorEvent::Pull { .. }))
                    .count() as u64
                    == user.pings
            {
                break pull;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: no pull recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(!pull.ok, "{path}");
        assert_eq!(pull.status, status, "{path}");
        let message = pull.error.unwrap();
        assert!(message.contains(error), "{path}: {message}");
        assert!(
            !message.contains("eyJ"),
            "{path}: no token in errors: {message}"
        );
    }
    assert!(
        emulator.remote_profile("u1").is_none(),
        "nothing invalid is stored"
    );

    // 5xx is retried: the third attempt succeeds (and "true" reads as a boolean).
    emulator
        .set_pull_url(&format!("{base}/flaky/{{id}}"))
        .unwrap();
    client.sync_user("u1").await.unwrap();
    let profile = emulator
        .wait_for_profile("u1", Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    assert_eq!(profile.moderator, Some(true));
    assert_eq!(emulator.user("u1").unwrap().last_pull.unwrap().attempts, 3);
}

/// The Pull layer answers a profile it cannot serve with a 500 that says why; the
/// emulator keeps that reason in the pull's record and event, and Studio labels the user
/// with it instead of "(not pulled yet)".
#[tokio::test]
async fn an_unservable_profile_s_reason_reaches_the_record_the_events_and_studio() {
    let source = pingpull::pull::source_fn(|id: String| async move {
        Ok::<_, pingpull::BoxError>(Some(Profile::builder(id, "").build()))
    });
    let base =
        serve(Router::new().layer(PullLayer::new("/pull?id={id}", network(), source).unwrap()))
            .await;
    let emulator = Emulator::builder(network())
        .pull_url(&format!("{base}/pull?id={{id}}"))
        .unwrap()
        .pull_retries(
            RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0),
            2,
        )
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    client.sync_user("u1").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let pull = loop {
        if let Some(pull) = emulator.user("u1").and_then(|user| user.last_pull) {
            break pull;
        }
        assert!(tokio::time::Instant::now() < deadline, "no pull recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let why = "the Pull endpoint answered 500 Internal Server Error: invalid profile: `display_name` is required and must not be empty";
    // Not retried: the same profile would get the same answer.
    assert_eq!(
        (pull.ok, pull.status, pull.error.as_deref(), pull.attempts),
        (false, Some(500), Some(why), 1)
    );
    let event_error = emulator.events().into_iter().find_map(|event| match event {
        EmulatorEvent::Pull { error, .. } => error,
        _ => None,
    });
    assert_eq!(event_error.as_deref(), Some(why));
    let page = send(
        "GET",
        &format!("{}/studio/users", emulator.base_url()),
        None,
        "",
    )
    .await;
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(!html.contains("(not pulled yet)"), "{html}");
    assert!(
        html.contains("(pull failed: the Pull endpoint answered 500 Internal Server Error: invalid profile: `display_name` is required"),
        "{html}"
    );
}

/// A 500 that lists what is wrong with the profile is recorded on the first answer:
/// pulled again seconds later, the profile would get the same answer. Other 500s (a
/// source that panicked, a server that says nothing) are still retried.
#[tokio::test]
async fn a_500_that_blames_the_profile_is_not_retried() {
    // Requests that reach each user's profile (through the Pull layer's source) or the
    // bare 500.
    let hits = Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
    let count = |hits: &Arc<std::sync::Mutex<HashMap<String, u32>>>, id: &str| {
        *hits.lock().unwrap().entry(id.to_owned()).or_default() += 1;
    };
    let loaded = hits.clone();
    let source = pingpull::pull::source_fn(move |id: String| {
        count(&loaded, &id);
        async move {
            match id.as_str() {
                "invalid" => Ok(Some(Profile::builder(id, "").build())),
                "other" => Ok(Some(Profile::builder("someone-else", "Eve").build())),
                _ => panic!("a bug in the profile source"),
            }
        }
    });
    let bare = hits.clone();
    let app = Router::new()
        .route(
            "/bare/{id}",
            get(move |Path(id): Path<String>| {
                count(&bare, &id);
                async { StatusCode::INTERNAL_SERVER_ERROR }
            }),
        )
        .layer(PullLayer::new("/pull?id={id}", network(), source).unwrap());
    let base = serve(app).await;
    let attempts = 3;
    let emulator = Emulator::builder(network())
        .pull_retries(
            RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0),
            attempts,
        )
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    let cases = [
        (
            "pull?id={id}",
            "invalid",
            1,
            "invalid profile: `display_name` is required",
        ),
        (
            "pull?id={id}",
            "other",
            1,
            "profile id differs from the requested id",
        ),
        (
            "pull?id={id}",
            "panics",
            attempts,
            "profile source panicked",
        ),
        (
            "bare/{id}",
            "bare",
            attempts,
            "answered 500 Internal Server Error",
        ),
    ];
    for (path, user, expected, error) in cases {
        emulator.set_pull_url(&format!("{base}/{path}")).unwrap();
        client.sync_user(user).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let pull = loop {
            if let Some(pull) = emulator.user(user).and_then(|user| user.last_pull) {
                break pull;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{user}: no pull recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(
            (pull.ok, pull.status, pull.attempts),
            (false, Some(500), expected),
            "{user}: {pull:?}"
        );
        assert_eq!(hits.lock().unwrap()[user], expected, "{user}");
        let message = pull.error.unwrap();
        assert!(message.contains(error), "{user}: {message}");
    }
}

#[tokio::test]
async fn inspection_routes_show_profiles_events_and_a_studio_page() {
    let template = good_endpoint(users()).await;
    let emulator = Emulator::builder(network())
        .pull_url(&template)
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    client.sync_user("u1").await.unwrap();
    emulator
        .wait_for_profile("u1", Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    let base = emulator.base_url();

    let one = send("GET", &format!("{base}/profiles/u1"), None, "").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&one.body).unwrap();
    assert_eq!(json["profile"]["display_name"], "Ada");
    assert_eq!(json["last_pull"]["status"], 200);
    assert_eq!(json["pings"], 1);

    let unknown = send("GET", &format!("{base}/profiles/nobody"), None, "").await;
    assert_eq!(unknown.status, 404);

    let all: serde_json::Value = serde_json::from_slice(
        &send("GET", &format!("{base}/profiles"), None, "")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);

    let events: serde_json::Value =
        serde_json::from_slice(&send("GET", &format!("{base}/events"), None, "").await.body)
            .unwrap();
    let kinds: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["ping", "pull"]);

    let page = send("GET", &format!("{base}/studio/users"), None, "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(
        html.contains("<td>Ada</td>")
            && html.contains("<code>u1</code>")
            && html.contains("synced"),
        "{html}"
    );
    assert!(!html.contains("<script"), "no JavaScript");
}

#[tokio::test]
async fn faults_fail_pings_on_purpose() {
    let emulator = Emulator::builder(network())
        .faults(Faults::none().fail_rate(1.0))
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    assert_eq!(
        client.sync_user("u1").await,
        Err(pingpull::ping::RequestError::Status(
            http::StatusCode::INTERNAL_SERVER_ERROR
        ))
    );
    let emulator = Emulator::builder(network())
        .faults(Faults::none().rate_429(1.0))
        .start()
        .await
        .unwrap();
    let answer = send(
        "POST",
        &format!("{}/api/v3_0/user/u1/refresh", emulator.base_url()),
        None,
        &format!("lftoken={}", system_token()),
    )
    .await;
    assert_eq!(
        (
            answer.status,
            answer.headers["retry-after"].to_str().unwrap()
        ),
        (429, "1")
    );
    assert_eq!(
        emulator.pings_received("u1"),
        0,
        "faulted pings are not accepted"
    );
    assert!(
        Emulator::builder(network())
            .faults(Faults::none().fail_rate(1.5))
            .start()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_same_seed_fails_the_same_pings() {
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let emulator = Emulator::builder(network())
            .faults(Faults::none().fail_rate(0.5).seed(42))
            .start()
            .await
            .unwrap();
        let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
        let mut pattern = Vec::new();
        for _ in 0..20 {
            pattern.push(client.sync_user("u1").await.is_ok());
        }
        patterns.push(pattern);
    }
    assert_eq!(patterns[0], patterns[1]);
    assert!(patterns[0].contains(&true) && patterns[0].contains(&false));
}

#[tokio::test]
async fn the_pinger_gets_every_user_through_a_faulty_emulator() {
    let users: InMemorySource = (0..50)
        .map(|i| Profile::builder(format!("u{i}"), format!("User {i}")).build())
        .collect();
    let template = good_endpoint(users.clone()).await;
    let emulator = Emulator::builder(network())
        .pull_url(&template)
        .unwrap()
        .faults(
            Faults::none()
                .fail_rate(0.3)
                .rate_429(0.05)
                .latency(Duration::from_millis(2))
                .seed(7),
        )
        .start()
        .await
        .unwrap();
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .retry_schedule(
            RetrySchedule::new([Duration::from_millis(20)])
                .max_retry_after(Duration::from_millis(50)),
        )
        .spawn()
        .unwrap();
    for i in 0..50 {
        users
            .update(&format!("u{i}"), |p| {
                p.display_name = format!("Renamed {i}")
            })
            .unwrap();
        pinger.ping(&format!("u{i}")).unwrap();
    }
    for i in 0..50 {
        let expected = format!("Renamed {i}");
        emulator
            .wait_for_profile(&format!("u{i}"), Duration::from_secs(10), |p| {
                p.display_name == expected
            })
            .await
            .unwrap();
    }
    let stats = pinger.stats();
    assert!(stats.retried > 0, "the faults were felt: {stats:?}");
    assert_eq!(stats.given_up, 0);
}

#[tokio::test]
async fn quickstart_flow_end_to_end() {
    // The README's quickstart, as a test: layer + in-memory source + update route with the
    // ping hook, registration through the Pinger's client, a change, the remote copy.
    use axum::body::Body;
    use axum::extract::State;
    use axum::routing::put;
    use pingpull::ping::PingHookLayer;

    let emulator = Emulator::start(network()).await.unwrap();
    let users = users();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", listener.local_addr().unwrap());
    let template = format!("{app_url}/livefyre/pull?id={{id}}");
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .spawn()
        .unwrap();
    let update = Router::new()
        .route(
            "/users/{id}/display_name",
            put(|State(users): State<InMemorySource>, Path(id): Path<String>, name: String| async move {
                users.update(&id, |p| p.display_name = name).unwrap();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(users.clone())
        .layer(PingHookLayer::new(pinger.clone(), |r: &http::Request<Body>| {
            r.uri().path().split('/').nth(2).map(str::to_owned)
        }));
    let app = Router::new()
        .merge(update)
        .layer(PullLayer::new(&template, network(), users.clone()).unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    pinger.client().register_pull_url(&template).await.unwrap();
    let answer = send(
        "PUT",
        &format!("{app_url}/users/u1/display_name"),
        None,
        "Ada King",
    )
    .await;
    assert_eq!(answer.status, 204);
    let profile = emulator
        .wait_for_profile("u1", Duration::from_secs(5), |p| {
            p.display_name == "Ada King"
        })
        .await
        .unwrap();
    assert_eq!(profile.id, "u1");
    assert_eq!(
        emulator
            .user("u1")
            .unwrap()
            .last_pull
            .unwrap()
            .signature_verified,
        Some(true)
    );
    let report = pinger.shutdown(Duration::from_secs(2)).await;
    assert!(report.undelivered.is_empty());
}

#[tokio::test]
async fn paths_with_an_empty_segment_and_other_methods_keep_their_answers() {
    let emulator = Emulator::start(network()).await.unwrap();
    let base = emulator.base_url();
    let t = system_token();
    let empty_id = send(
        "POST",
        &format!("{base}/api/v3.0/user//refresh"),
        None,
        &format!("lftoken={t}"),
    )
    .await;
    assert_eq!(empty_id.status, 400);
    let no_token = send("POST", &format!("{base}/api/v3_0/user//refresh"), None, "").await;
    assert_eq!(no_token.status, 403);
    let empty_profile = send("GET", &format!("{base}/profiles/"), None, "").await;
    assert_eq!(empty_profile.status, 404);
    let json: serde_json::Value = serde_json::from_slice(&empty_profile.body).unwrap();
    assert_eq!(json["id"], "");
    for (method, path) in [
        ("GET", "/"),
        ("POST", "/profiles"),
        ("DELETE", "/profiles/u1"),
        ("POST", "/events"),
        ("POST", "/studio/users"),
        ("GET", "/nowhere"),
        ("GET", "/api/v3_0/user/a/b/refresh"),
    ] {
        let answer = send(method, &format!("{base}{path}"), None, "").await;
        assert_eq!(answer.status, 404, "{method} {path}");
        assert!(answer.body.is_empty(), "{method} {path}");
    }
    let wrong_method = send("PUT", &format!("{base}/api/v3.0/user/u1/refresh"), None, "").await;
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.body.is_empty());
}

/// Reads from `stream` until `until` appears in what was read (or the stream ends).
async fn read_until(stream: &mut tokio::net::TcpStream, until: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut read = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&read).contains(until) {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&read).into_owned()
}

#[tokio::test]
async fn shutdown_answers_the_request_in_progress_closes_idle_ones_and_stops_listening() {
    use tokio::io::AsyncWriteExt;
    let emulator = Emulator::start(network()).await.unwrap();
    let addr = emulator.addr();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    // `Expect: 100-continue` shows when the ping's handler has started reading the body.
    let body = format!("lftoken={}", system_token());
    let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v3_0/user/u1/refresh HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    assert!(
        read_until(&mut busy, "\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 100")
    );

    let shutdown = tokio::spawn(emulator.shutdown(Duration::from_secs(10)));
    busy.write_all(body.as_bytes()).await.unwrap();
    let answer = read_until(&mut busy, "\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(shutdown.await.unwrap(), "every connection closed in time");
    assert_eq!(
        read_until(&mut idle, "\r\n").await,
        "",
        "idle ones are closed"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// An emulator that has pulled u000 to u104 from an endpoint that knows only u000 and
/// u001 (whose display name is markup): 103 failed pulls, two pages of users.
async fn emulator_with_105_users() -> Emulator {
    let users = InMemorySource::new();
    users
        .insert(Profile::builder("u000", "Ada").build())
        .unwrap();
    users
        .insert(Profile::builder("u001", "<script>alert(1)</script>").build())
        .unwrap();
    let ids: Vec<String> = (0..105).map(|i| format!("u{i:03}")).collect();
    emulator_that_pulled(&good_endpoint(users).await, &ids).await
}

/// An emulator pulling from `pull_url` that was pinged for each of `ids` and has pulled
/// them all (successfully or not).
async fn emulator_that_pulled(pull_url: &str, ids: &[String]) -> Emulator {
    let emulator = Emulator::builder(network())
        .pull_url(pull_url)
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    for id in ids {
        client.sync_user(id).await.unwrap();
    }
    wait_for_pulls(&emulator, ids).await;
    emulator
}

async fn studio(emulator: &Emulator, query: &str) -> String {
    let url = format!("{}/studio/users{query}", emulator.base_url());
    let answer = send("GET", &url, None, "").await;
    assert_eq!(answer.status, 200);
    String::from_utf8(answer.body.to_vec()).unwrap()
}

#[tokio::test]
async fn the_studio_page_pages_filters_and_escapes() {
    let emulator = emulator_with_105_users().await;
    let first = studio(&emulator, "").await;
    assert!(first.contains("Network <strong>example.fyre.co</strong>"));
    assert!(
        first.contains("Pull URL <code>http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        first.contains("Users 1–100 of 105 · page 1 of 2"),
        "{first}"
    );
    assert!(first.contains("<code>u000</code>") && first.contains("<code>u099</code>"));
    assert!(!first.contains("<code>u100</code>"));
    assert!(first.contains("<a href=\"?page=2\">Next →</a>"));
    assert!(!first.contains("Previous"));
    // The markup in a display name is shown, never run.
    assert!(first.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert!(!first.contains("<script"));
    assert!(first.contains("(HTTP 404): <span class=\"failed\">the Pull endpoint answered 404"));

    let second = studio(&emulator, "?page=2").await;
    assert!(
        second.contains("Users 101–105 of 105 · page 2 of 2"),
        "{second}"
    );
    assert!(second.contains("<code>u104</code>") && !second.contains("<code>u099</code>"));
    assert!(second.contains("<a href=\"?page=1\">← Previous</a>"));
    assert!(!second.contains("Next →"));
    assert!(
        studio(&emulator, "?page=9")
            .await
            .contains("No users on page 9")
    );

    let failed = studio(&emulator, "?failed=1").await;
    assert!(
        failed.contains("Users 1–100 of 103 · page 1 of 2"),
        "{failed}"
    );
    assert!(!failed.contains("<code>u000</code>") && !failed.contains("<code>u001</code>"));
    assert!(failed.contains("<code>u002</code>"));
    assert!(failed.contains("<a href=\"?failed=1&amp;page=2\">Next →</a>"));
    let failed_2 = studio(&emulator, "?failed=1&page=2").await;
    assert!(failed_2.contains("Users 101–103 of 103"), "{failed_2}");
    assert!(failed_2.contains("<code>u104</code>"));
}

/// Polls until every user in `ids` has a finished pull.
/// Waits until every one of `ids` was pulled (successfully or not), for up to 20 s:
/// seconds, not milliseconds, so a busy machine only makes it slower.
async fn wait_for_pulls(emulator: &Emulator, ids: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ids
        .iter()
        .all(|id| emulator.user(id).is_some_and(|u| u.last_pull.is_some()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pulls did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn many_refused_pulls_give_one_warning() {
    use crate::support::LogCapture;
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    // The endpoint holds another key: every pull is refused with 403.
    let other = Network::new("example.fyre.co", "anotherkey1").unwrap();
    let base =
        serve(Router::new().layer(PullLayer::new("/pull?id={id}", other, users()).unwrap())).await;
    let ids: Vec<String> = (0..12).map(|n| format!("u{n}")).collect();
    let _emulator = emulator_that_pulled(&format!("{base}/pull?id={{id}}"), &ids).await;
    let text = capture.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN pingpull::emulator"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("pull failed"), "{text}");
    assert!(warnings[0].contains("kind=\"refused\""), "{text}");
    assert!(warnings[0].contains("status=403"), "{text}");
    assert!(warnings[0].contains("suppressed=0"), "{text}");
}

#[tokio::test]
async fn each_kind_of_failed_pull_gets_its_own_warning() {
    use crate::support::LogCapture;
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::DEBUG);
    // A port held bound but never listening: every pull is refused.
    let (_held, closed) = crate::support::refusing_port();
    let emulator = Emulator::builder(network())
        .pull_url(&format!("http://{closed}/pull?id={{id}}"))
        .unwrap()
        .pull_retries(RetrySchedule::default(), 1)
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    client.sync_user("u1").await.unwrap();
    wait_for_pulls(&emulator, &["u1".to_owned()]).await;
    // Then a working endpoint: its success is logged at DEBUG, not WARN.
    emulator
        .set_pull_url(&good_endpoint(users()).await)
        .unwrap();
    client.sync_user("u2").await.unwrap();
    emulator
        .wait_for_profile("u2", Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    let text = capture.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN pingpull::emulator"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("kind=\"unreachable\""), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("DEBUG") && l.contains("pull succeeded") && l.contains("u2")),
        "{text}"
    );
}

/// A 500 whose body blames the profile is told as its own kind, saying to fix the data;
/// a bare 500 stays a `status`.
#[tokio::test]
async fn a_profile_the_endpoint_would_not_serve_is_its_own_kind_of_warning() {
    use crate::support::LogCapture;
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let source = pingpull::pull::source_fn(|id: String| async move {
        Ok(Some(Profile::builder(id, "").build()))
    });
    let app = Router::new()
        .route(
            "/bare/{id}",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(PullLayer::new("/pull?id={id}", network(), source).unwrap());
    let base = serve(app).await;
    let ids = ["u1".to_owned()];
    let _invalid = emulator_that_pulled(&format!("{base}/pull?id={{id}}"), &ids).await;
    let _bare = emulator_that_pulled(&format!("{base}/bare/{{id}}"), &ids).await;
    let text = capture.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN pingpull::emulator"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    let unservable = warnings
        .iter()
        .find(|l| l.contains("kind=\"unservable_profile\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(unservable.contains("fails its validation"), "{unservable}");
    assert!(unservable.contains("display_name"), "{unservable}");
    assert!(
        warnings.iter().any(|l| l.contains("kind=\"status\"")),
        "{text}"
    );
}
