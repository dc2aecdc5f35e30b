//! Prepared profiles: a source that keeps its profiles rendered answers exactly what a
//! source that builds them on every pull answers, and refuses invalid ones up front.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use pingpull::profile::{SIGNATURE_HEADER, verify_body_signature};
use pingpull::pull::{
    InMemorySource, Loaded, PreparedProfile, ProfileSource, PullLayer, Rejection, source_fn,
};
use pingpull::token;
use pingpull::{BoxError, Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

fn ada() -> Profile {
    Profile::builder("u1", "Ada \"the first\" Lovelace ✓")
        .image_url("https://cdn.example/u1.png?v=1")
        .tags(["staff"])
        .bio("Line one\nline two </script>")
        .moderator(true)
        .build()
}

/// What a pull answered.
struct Answer {
    status: StatusCode,
    body: Bytes,
    signature: Option<String>,
    content_length: Option<String>,
    rejection: Option<Rejection>,
}

/// Pulls `user` through a layer over `source`, signed with `network`.
async fn pull(network: &Network, source: impl ProfileSource, method: Method, user: &str) -> Answer {
    let layer = PullLayer::new("/pull?id={id}", network.clone(), source).unwrap();
    let service = layer.layer(service_fn(|_request: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let token = token::system_token(network);
    let uri = format!("/pull?id={user}&lftoken={}", token.as_str());
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let signature = header(SIGNATURE_HEADER);
    let content_length = header("content-length");
    let status = response.status();
    let rejection = response.extensions().get::<Rejection>().cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        body,
        signature,
        content_length,
        rejection,
    }
}

/// A source that builds the profile anew for every pull, as one reading a database.
fn per_pull_source() -> impl ProfileSource {
    source_fn(|id: String| async move { Ok::<_, BoxError>((id == "u1").then(ada)) })
}

#[tokio::test]
async fn a_kept_profile_is_answered_with_the_same_bytes_and_signature_as_one_built_per_pull() {
    let network = network("testkeytest");
    let users = InMemorySource::new();
    users.insert(ada()).unwrap();
    let kept = pull(&network, users.clone(), Method::GET, "u1").await;
    let built = pull(&network, per_pull_source(), Method::GET, "u1").await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.body, built.body);
    assert_eq!(kept.body, ada().to_json().as_bytes());
    assert_eq!(kept.signature, built.signature);
    let signature = kept.signature.unwrap();
    assert!(verify_body_signature(&network, &signature, &kept.body).is_ok());
    // The second pull (signature kept from the first) is the same again.
    let again = pull(&network, users, Method::GET, "u1").await;
    assert_eq!((again.body, again.signature), (kept.body, Some(signature)));
}

#[tokio::test]
async fn an_update_is_answered_on_the_next_pull_with_a_signature_of_the_new_body() {
    let network = network("testkeytest");
    let users: InMemorySource = [ada()].into_iter().collect();
    let before = pull(&network, users.clone(), Method::GET, "u1").await;
    assert!(
        users
            .update("u1", |p| p.display_name = "Ada L.".into())
            .unwrap()
    );
    let after = pull(&network, users, Method::GET, "u1").await;
    assert_ne!(after.body, before.body);
    assert!(String::from_utf8_lossy(&after.body).contains("\"Ada L.\""));
    let signature = after.signature.unwrap();
    assert!(verify_body_signature(&network, &signature, &after.body).is_ok());
    assert_ne!(Some(signature), before.signature);
}

#[tokio::test]
async fn layers_with_different_keys_sign_a_shared_profile_each_with_their_own_key() {
    let first = network("testkeytest");
    let second = network("anotherkey");
    let users: InMemorySource = [ada()].into_iter().collect();
    for _ in 0..2 {
        for (network, other) in [(&first, &second), (&second, &first)] {
            let answer = pull(network, users.clone(), Method::GET, "u1").await;
            let signature = answer.signature.unwrap();
            assert!(verify_body_signature(network, &signature, &answer.body).is_ok());
            assert!(verify_body_signature(other, &signature, &answer.body).is_err());
        }
    }
}

#[tokio::test]
async fn head_of_a_kept_profile_has_its_length_and_signature_and_no_body() {
    let network = network("testkeytest");
    let users: InMemorySource = [ada()].into_iter().collect();
    let get = pull(&network, users.clone(), Method::GET, "u1").await;
    let head = pull(&network, users, Method::HEAD, "u1").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.content_length, Some(get.body.len().to_string()));
    assert_eq!(head.signature, get.signature);
}

#[tokio::test]
async fn an_invalid_profile_is_refused_on_insert_and_never_served() {
    let network = network("testkeytest");
    let users = InMemorySource::new();
    let invalid = Profile::builder("u1", "Ada").tags(["no spaces"]).build();
    let refused = users.insert(invalid.clone()).unwrap_err();
    assert!(refused.violations().contains_field("tags[0]"));
    assert_eq!(refused.into_profile(), invalid);
    assert!(users.is_empty());
    let answer = pull(&network, users.clone(), Method::GET, "u1").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    // An update that would make a kept profile invalid is refused; the old one is served.
    users.insert(ada()).unwrap();
    let refused = users.update("u1", |p| p.display_name.clear()).unwrap_err();
    assert!(refused.violations().contains_field("display_name"));
    let answer = pull(&network, users.clone(), Method::GET, "u1").await;
    assert_eq!(answer.body, ada().to_json().as_bytes());

    // Collecting leaves an invalid profile out; `try_from_profiles` says why.
    let collected: InMemorySource = [invalid.clone(), ada()].into_iter().collect();
    assert_eq!(collected.len(), 1);
    let refused = InMemorySource::try_from_profiles([ada(), invalid]).unwrap_err();
    assert!(refused.violations().contains_field("tags[0]"));
}

/// A source that answers every id with one prepared profile.
struct Always(Arc<PreparedProfile>);

#[async_trait::async_trait]
impl ProfileSource for Always {
    async fn load(&self, _user_id: &str) -> Result<Option<Profile>, BoxError> {
        Ok(Some(Profile::clone(self.0.profile())))
    }

    async fn load_for_pull(&self, _user_id: &str) -> Result<Option<Loaded>, BoxError> {
        Ok(Some(Loaded::Prepared(self.0.clone())))
    }
}

#[tokio::test]
async fn a_prepared_profile_of_another_user_is_never_sent() {
    let network = network("testkeytest");
    let prepared = Arc::new(PreparedProfile::new(ada()).unwrap());
    let answer = pull(&network, Always(prepared.clone()), Method::GET, "u2").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.rejection, Some(Rejection::IdMismatch));
    // The body says why, and holds nothing of the profile.
    let body = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(body.starts_with(r#"{"error":"id_mismatch","#), "{body}");
    assert!(!body.contains("Ada") && !body.contains("u1"), "{body}");
    let answer = pull(&network, Always(prepared), Method::GET, "u1").await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_source_behind_arc_or_box_still_hands_out_its_prepared_profiles() {
    let network = network("testkeytest");
    let users: InMemorySource = [ada()].into_iter().collect();
    let boxed: Box<dyn ProfileSource> = Box::new(users.clone());
    let loaded = Arc::new(boxed).load_for_pull("u1").await.unwrap();
    assert!(matches!(loaded, Some(Loaded::Prepared(_))));
    let per_pull = per_pull_source().load_for_pull("u1").await.unwrap();
    assert!(matches!(per_pull, Some(Loaded::Profile(_))));
    let answer = pull(&network, Arc::new(users), Method::GET, "u1").await;
    assert_eq!(answer.status, StatusCode::OK);
}
