//! One template rule everywhere: a template whose every pull would fail (`{id}` twice, or
//! as the `lftoken` parameter) is refused alike by the Pull layer, the client's
//! registration, the emulator's `POST /` and `pingpull register`.

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::emulator::{Emulator, EmulatorEvent};
use pingpull::ping::{LivefyreClient, RequestError};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::template::TemplateError;
use pingpull::{Network, token};

/// Each accepted at registration before, and every pull of it then failed with 403.
const UNPULLABLE: [(&str, TemplateError); 3] = [
    (
        "https://s.example/p?id={id}&again={id}",
        TemplateError::ManyIds,
    ),
    (
        "https://s.example/users/{id}/x/{id}",
        TemplateError::ManyIds,
    ),
    (
        "https://s.example/p?id={id}&lftoken={id}",
        TemplateError::ManyIds,
    ),
];

const GOOD: &str = "https://s.example/users/{id}/livefyre";

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

#[test]
fn the_pull_layer_refuses_them() {
    for (template, error) in UNPULLABLE {
        let refused = PullLayer::new(template, network(), InMemorySource::new()).unwrap_err();
        assert_eq!(refused, error, "{template}");
    }
    PullLayer::new(GOOD, network(), InMemorySource::new()).unwrap();
}

fn registrations(emulator: &Emulator) -> usize {
    emulator
        .events()
        .iter()
        .filter(|event| matches!(event, EmulatorEvent::Registration { .. }))
        .count()
}

#[tokio::test]
async fn the_client_refuses_them_without_sending() {
    let emulator = Emulator::start(network()).await.unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    for (template, error) in UNPULLABLE {
        match client.register_pull_url(template).await {
            Err(RequestError::InvalidTemplate(refused)) => assert_eq!(refused, error),
            other => panic!("{template}: {other:?}"),
        }
    }
    assert_eq!(registrations(&emulator), 0, "nothing was sent");
    client.register_pull_url(GOOD).await.unwrap();
    assert_eq!(emulator.pull_url().as_deref(), Some(GOOD));
}

async fn post_registration(base: &str, template: &str) -> (u16, String) {
    let token = token::system_token(&network());
    let body = format!(
        "actor_token={}&pull_profile_url={}",
        urlencode(token.as_str()),
        urlencode(template)
    );
    let request = http::Request::post(format!("{base}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::from(body))
        .unwrap();
    let response = Client::builder(TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>()
        .request(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_emulator_answers_400_with_the_reason() {
    let emulator = Emulator::builder(network())
        .pull_url(GOOD)
        .unwrap()
        .start()
        .await
        .unwrap();
    for (template, error) in UNPULLABLE {
        let (status, body) = post_registration(&emulator.base_url(), template).await;
        assert_eq!((status, body), (400, error.to_string()), "{template}");
    }
    assert_eq!(emulator.pull_url().as_deref(), Some(GOOD), "unchanged");
    let (status, _) = post_registration(&emulator.base_url(), "https://s.example/p?uid={id}").await;
    assert_eq!(status, 204);
}

#[test]
fn the_emulator_builder_refuses_them() {
    for (template, error) in UNPULLABLE {
        assert_eq!(
            Emulator::builder(network()).pull_url(template).err(),
            Some(error),
            "{template}"
        );
    }
}

#[cfg(feature = "cli")]
#[test]
fn pingpull_register_refuses_them() {
    use crate::cli::commands::{EmulatorProcess, run, stderr};
    let emulator = EmulatorProcess::start(&[]);
    for (template, error) in UNPULLABLE {
        let refused = run(&["register", "--base-url", &emulator.base_url, template]);
        assert_eq!(refused.status.code(), Some(2), "{template}");
        assert_eq!(stderr(&refused), format!("pingpull: {error}\n"));
    }
    let registered = run(&["register", "--base-url", &emulator.base_url, GOOD]);
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
}
