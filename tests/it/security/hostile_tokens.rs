//! Token corpus: every hostile or broken `lftoken` we can think of is refused by
//! the validator with the right typed error, and through the layer with exactly a 403,
//! an empty body and `Cache-Control: no-store`; then 10 000 single-bit and single-byte
//! mutations of a valid token, all refused the same way.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use pingpull::clock::ManualClock;
use pingpull::pull::{InMemorySource, PullLayer, Rejection};
use pingpull::token::{self, MAX_TOKEN_LEN, SystemTokenValidator, TokenError};
use pingpull::{Network, Profile};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::{Layer, ServiceExt, service_fn};

use crate::support::forge;

const NOW: u64 = 1_700_000_000;
const KEY: &str = "testkeytest";
const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;
const TEMPLATE: &str = "/livefyre/pull?id={id}";

fn network() -> Network {
    Network::new("example.fyre.co", KEY).unwrap()
}

fn validator() -> SystemTokenValidator {
    SystemTokenValidator::new(network()).clock(ManualClock::at_unix(NOW))
}

fn claims(expires: &str) -> String {
    format!(
        r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":{expires}}}"#
    )
}

fn good() -> String {
    forge(HEADER, &claims("1700086400"), KEY)
}

/// `header.payload` segments as given, signed over exactly those bytes with `key`.
fn sign_segments(header: &str, payload: &str, key: &str) -> String {
    use hmac::{Hmac, Mac};
    let message = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    format!(
        "{message}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Percent-encodes arbitrary bytes for a query value (everything but unreserved).
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The corpus: a name, the token, and the error the validator must give.
fn corpus() -> Vec<(&'static str, String, TokenError)> {
    let good = good();
    let payload = claims("1700086400");
    let segments: Vec<&str> = good.split('.').collect();
    let malformed = |reason| TokenError::Malformed { reason };
    let unpadded_payload = {
        // A payload whose base64 needs padding, and whose url-safe spelling holds `-`/`_`,
        // so padding and the standard alphabet each make a distinct spelling.
        let mut name = String::from("s");
        loop {
            let p = format!(
                r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"{name}?>~","expires":1700086400}}"#
            );
            let encoded = URL_SAFE_NO_PAD.encode(&p);
            if p.len() % 3 != 0 && encoded.contains(['-', '_']) {
                break p;
            }
            name.push('s');
        }
    };
    let header_b64 = URL_SAFE_NO_PAD.encode(HEADER);
    let mut cases = vec![
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(&payload)
            ),
            TokenError::WrongAlgorithm,
        ),
        (
            "alg none, HS256 signature",
            forge(r#"{"alg":"none"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "alg None",
            forge(r#"{"alg":"None"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "HS384",
            forge(r#"{"alg":"HS384"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "HS512",
            forge(r#"{"alg":"HS512"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "RS256 with the key as an HMAC secret",
            forge(r#"{"alg":"RS256"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "ES256",
            forge(r#"{"alg":"ES256"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "no alg",
            forge(r#"{"typ":"JWT"}"#, &payload, KEY),
            TokenError::WrongAlgorithm,
        ),
        (
            "alg not a string",
            forge(r#"{"alg":["HS256"]}"#, &payload, KEY),
            malformed("header is not a JSON object with a string `alg`"),
        ),
        (
            "crit extension",
            forge(
                r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
                &payload,
                KEY,
            ),
            malformed("header has `crit` extensions"),
        ),
        (
            "wrong key",
            forge(HEADER, &payload, "wrongkey"),
            TokenError::BadSignature,
        ),
        (
            "kid and jku naming an attacker's key, signed with it",
            forge(
                r#"{"alg":"HS256","kid":"attacker","jku":"JKU_URL"}"#,
                &payload,
                "attacker-key",
            ),
            TokenError::BadSignature,
        ),
        (
            "empty key",
            forge(HEADER, &payload, ""),
            TokenError::BadSignature,
        ),
        (
            "expired a second ago",
            forge(HEADER, &claims("1699999999"), KEY),
            TokenError::Expired {
                expires: 1_699_999_999.0,
                now: NOW as f64,
            },
        ),
        (
            "expires missing",
            forge(
                HEADER,
                r#"{"domain":"example.fyre.co","user_id":"system","display_name":"system"}"#,
                KEY,
            ),
            TokenError::MissingClaim { claim: "expires" },
        ),
        (
            "expires a string",
            forge(HEADER, &claims(r#""1700086400""#), KEY),
            TokenError::InvalidClaim { claim: "expires" },
        ),
        (
            "expires a bool",
            forge(HEADER, &claims("true"), KEY),
            TokenError::InvalidClaim { claim: "expires" },
        ),
        (
            "expires null",
            forge(HEADER, &claims("null"), KEY),
            TokenError::MissingClaim { claim: "expires" },
        ),
        (
            "expires beyond f64",
            forge(HEADER, &claims("1e400"), KEY),
            TokenError::InvalidClaim { claim: "expires" },
        ),
        (
            "expires an object",
            forge(HEADER, &claims(r#"{"$gt":0}"#), KEY),
            TokenError::InvalidClaim { claim: "expires" },
        ),
        (
            "expires negative",
            forge(HEADER, &claims("-1"), KEY),
            TokenError::Expired {
                expires: -1.0,
                now: NOW as f64,
            },
        ),
        (
            "expires most negative",
            forge(HEADER, &claims("-9223372036854775808"), KEY),
            TokenError::Expired {
                expires: -9_223_372_036_854_775_808.0,
                now: NOW as f64,
            },
        ),
        (
            "expires the string NaN",
            forge(HEADER, &claims(r#""NaN""#), KEY),
            TokenError::InvalidClaim { claim: "expires" },
        ),
        (
            "expires bare NaN (not JSON)",
            forge(HEADER, &claims("NaN"), KEY),
            malformed("payload is not a JSON object"),
        ),
        (
            "expires bare Infinity (not JSON)",
            forge(HEADER, &claims("Infinity"), KEY),
            malformed("payload is not a JSON object"),
        ),
        (
            "expires repeated, the second one far ahead",
            forge(
                HEADER,
                r#"{"domain":"example.fyre.co","user_id":"system","expires":1,"expires":9999999999}"#,
                KEY,
            ),
            malformed("payload is not a JSON object"),
        ),
        (
            "wrong domain",
            forge(
                HEADER,
                r#"{"domain":"other.fyre.co","user_id":"system","display_name":"system","expires":1700086400}"#,
                KEY,
            ),
            TokenError::WrongNetwork {
                expected: "example.fyre.co".into(),
            },
        ),
        (
            "domain differing only in case",
            forge(
                HEADER,
                r#"{"domain":"EXAMPLE.fyre.co","user_id":"system","display_name":"system","expires":1700086400}"#,
                KEY,
            ),
            TokenError::WrongNetwork {
                expected: "example.fyre.co".into(),
            },
        ),
        (
            "user token",
            token::user_auth_token_at(
                &network(),
                "u1",
                "Ada",
                std::time::UNIX_EPOCH + Duration::from_secs(NOW),
                Duration::from_secs(3600),
            )
            .unwrap()
            .into_string(),
            TokenError::NotSystemToken,
        ),
        (
            "user_id `system ` with a space",
            forge(
                HEADER,
                r#"{"domain":"example.fyre.co","user_id":"system ","expires":1700086400}"#,
                KEY,
            ),
            TokenError::NotSystemToken,
        ),
        (
            "user_id not a string",
            forge(
                HEADER,
                r#"{"domain":"example.fyre.co","user_id":0,"expires":1700086400}"#,
                KEY,
            ),
            TokenError::InvalidClaim { claim: "user_id" },
        ),
        (
            "signature missing its last character",
            good[..good.len() - 1].to_owned(),
            malformed("signature is not base64url"),
        ),
        (
            "signature truncated to 30 bytes",
            good[..good.len() - 3].to_owned(),
            TokenError::BadSignature,
        ),
        (
            "signature dropped",
            format!("{}.{}.", segments[0], segments[1]),
            TokenError::BadSignature,
        ),
        (
            "truncated to two segments",
            format!("{}.{}", segments[0], segments[1]),
            malformed("expected 3 segments"),
        ),
        (
            "truncated inside the header",
            good[..10].to_owned(),
            malformed("expected 3 segments"),
        ),
        ("empty", String::new(), malformed("expected 3 segments")),
        (
            "dots only",
            "..".to_owned(),
            malformed("header is not a JSON object with a string `alg`"),
        ),
        (
            "extra segment",
            format!("{good}.{}", segments[2]),
            malformed("expected 3 segments"),
        ),
        (
            "trailing dot",
            format!("{good}."),
            malformed("expected 3 segments"),
        ),
        (
            "five-part JWE",
            format!(
                "{}.{}.{}.{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM"}"#),
                "",
                URL_SAFE_NO_PAD.encode([7u8; 12]),
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode([9u8; 16])
            ),
            malformed("expected 3 segments"),
        ),
        (
            "padded payload, signed as sent",
            sign_segments(
                &header_b64,
                &format!(
                    "{}{}",
                    URL_SAFE_NO_PAD.encode(&unpadded_payload),
                    "=".repeat((3 - unpadded_payload.len() % 3) % 3)
                ),
                KEY,
            ),
            malformed("payload is not base64url"),
        ),
        (
            "standard-alphabet payload, signed as sent",
            sign_segments(
                &header_b64,
                &STANDARD.encode(&unpadded_payload).replace('=', ""),
                KEY,
            ),
            malformed("payload is not base64url"),
        ),
        (
            "padded signature",
            format!("{good}="),
            malformed("signature is not base64url"),
        ),
        (
            "standard-alphabet signature",
            {
                // A valid token whose signature spells `-` or `_` in url-safe base64.
                let mut n = 0u64;
                loop {
                    let t = forge(HEADER, &claims(&(1_700_086_400 + n).to_string()), KEY);
                    let (message, signature) = t.rsplit_once('.').unwrap();
                    if signature.contains(['-', '_']) {
                        break format!(
                            "{message}.{}",
                            signature.replace('-', "+").replace('_', "/")
                        );
                    }
                    n += 1;
                }
            },
            malformed("signature is not base64url"),
        ),
        (
            "padded header",
            format!("{}=.{}.{}", segments[0], segments[1], segments[2]),
            malformed("header is not base64url"),
        ),
        (
            "whitespace around the token",
            format!(" {good}"),
            malformed("header is not base64url"),
        ),
        (
            "payload a JSON array",
            forge(HEADER, r#"["system"]"#, KEY),
            malformed("payload is not a JSON object"),
        ),
    ];
    // Over the size limit, though signed with the right key: refused before any parsing.
    let long = forge(
        HEADER,
        &format!(
            r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"{}","expires":1700086400}}"#,
            "x".repeat(MAX_TOKEN_LEN)
        ),
        KEY,
    );
    let len = long.len();
    cases.push(("over the size limit", long, TokenError::TooLong { len }));
    let junk = "A".repeat(MAX_TOKEN_LEN + 1);
    cases.push((
        "junk one byte over the limit",
        junk,
        TokenError::TooLong {
            len: MAX_TOKEN_LEN + 1,
        },
    ));
    cases
}

type App = pingpull::pull::Pull<
    tower::util::ServiceFn<
        fn(Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>>,
    >,
>;

fn app() -> App {
    let users = InMemorySource::new();
    users.insert(Profile::builder("u1", "Ada").build()).unwrap();
    let layer = PullLayer::new(TEMPLATE, network(), users)
        .unwrap()
        .clock(ManualClock::at_unix(NOW));
    fn inner(_: Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>> {
        std::future::ready(Ok(Response::new("inner".to_owned())))
    }
    layer.layer(service_fn(
        inner as fn(Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>>,
    ))
}

/// Pulls u1 with `encoded_token` as the raw `lftoken` query value.
async fn pull_with(
    app: App,
    encoded_token: &str,
) -> (StatusCode, http::HeaderMap, Option<Rejection>, bytes::Bytes) {
    let uri = format!("/livefyre/pull?id=u1&lftoken={encoded_token}");
    let request = Request::get(uri).body(String::new()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        parts.extensions.get::<Rejection>().cloned(),
        body,
    )
}

fn assert_refused(
    what: &str,
    (status, headers, _, body): &(StatusCode, http::HeaderMap, Option<Rejection>, bytes::Bytes),
) {
    assert_eq!(*status, StatusCode::FORBIDDEN, "{what}");
    assert!(body.is_empty(), "{what}: body {body:?}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    assert_eq!(headers["content-length"], "0", "{what}");
}

#[test]
fn control_the_good_token_passes_both_ways() {
    // Without this, a broken forger would make every refusal below pass vacuously.
    validator().validate(&good()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (status, ..) = rt.block_on(pull_with(app(), &encode_bytes(good().as_bytes())));
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn unknown_header_fields_are_ignored_as_the_protocol_decides() {
    // docs/protocol.md §3: only `alg` matters (`typ` optional, `crit` refused);
    // `kid`/`jku` signed with the network key are accepted, and name no key we would
    // ever use.
    let token = forge(
        r#"{"alg":"HS256","typ":"JWT","kid":"other","jku":"http://127.0.0.1:1/keys","x5u":"http://127.0.0.1:1/x"}"#,
        &claims("1700086400"),
        KEY,
    );
    validator().validate(&token).unwrap();
}

#[test]
fn a_far_future_expiry_signed_with_the_key_is_valid() {
    // Only the key holder can sign one; the protocol sets no upper bound on `expires`.
    validator()
        .validate(&forge(HEADER, &claims("99999999999999999999999999"), KEY))
        .unwrap();
}

#[tokio::test]
async fn every_corpus_token_is_refused_with_its_error_and_an_empty_403() {
    // A `jku` pointing at a listener of ours: validation must never connect to it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let jku = format!("http://{}/keys", listener.local_addr().unwrap());
    let corpus = corpus();
    assert!(corpus.len() >= 45, "{}", corpus.len());
    for (name, token, expected) in corpus {
        let token = if name.starts_with("kid and jku") {
            // Re-forge with the live jku URL (the corpus entry is a template).
            forge(
                &format!(r#"{{"alg":"HS256","kid":"attacker","jku":"{jku}"}}"#),
                &claims("1700086400"),
                "attacker-key",
            )
        } else {
            token
        };
        assert_eq!(
            validator().validate(&token),
            Err(expected.clone()),
            "{name}"
        );
        let answer = pull_with(app(), &encode_bytes(token.as_bytes())).await;
        assert_refused(name, &answer);
        assert_eq!(answer.2, Some(Rejection::InvalidToken(expected)), "{name}");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "validation connected to the token's jku"
    );
}

#[tokio::test]
async fn tokens_that_do_not_even_decode_are_empty_403s() {
    let good = good();
    for (name, raw) in [
        ("bad escape", format!("{good}%")),
        ("bad hex escape", format!("%zz{good}")),
        ("invalid UTF-8", format!("%FF{good}")),
        ("overlong UTF-8 dot", good.replacen('.', "%C0%AE", 1)),
    ] {
        let answer = pull_with(app(), &raw).await;
        assert_refused(name, &answer);
        assert_eq!(answer.2, Some(Rejection::UndecodableToken), "{name}");
    }
    let repeated = format!("{good}&lftoken={good}");
    let answer = pull_with(app(), &repeated).await;
    assert_refused("repeated", &answer);
    assert_eq!(answer.2, Some(Rejection::RepeatedToken));
}

/// One mutation of the good token: flip one bit, or set one byte.
#[derive(Debug, Clone)]
enum Mutation {
    Bit { index: usize, bit: u8 },
    Byte { index: usize, byte: u8 },
}

fn mutation(len: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..len, 0..8u8).prop_map(|(index, bit)| Mutation::Bit { index, bit }),
        (0..len, any::<u8>()).prop_map(|(index, byte)| Mutation::Byte { index, byte }),
    ]
}

#[test]
fn ten_thousand_mutations_of_a_valid_token_are_all_refused() {
    let good = good();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let validator = validator();
    let app = app();
    let seen = RefCell::new(0usize);
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&mutation(good.len()), |m| {
            let mut bytes = good.clone().into_bytes();
            match m {
                Mutation::Bit { index, bit } => bytes[index] ^= 1 << bit,
                Mutation::Byte { index, byte } => {
                    prop_assume!(bytes[index] != byte);
                    bytes[index] = byte;
                }
            }
            *seen.borrow_mut() += 1;
            // The validator takes text; bytes that are not UTF-8 can only arrive
            // percent-encoded, and the layer refuses them before validation.
            if let Ok(text) = std::str::from_utf8(&bytes) {
                prop_assert!(validator.validate(text).is_err(), "{text}");
            }
            let answer = rt.block_on(pull_with(app.clone(), &encode_bytes(&bytes)));
            prop_assert_eq!(answer.0, StatusCode::FORBIDDEN);
            prop_assert!(answer.3.is_empty());
            prop_assert_eq!(&answer.1["cache-control"], "no-store");
            prop_assert!(matches!(
                answer.2,
                Some(Rejection::InvalidToken(_) | Rejection::UndecodableToken)
            ));
            Ok(())
        })
        .unwrap();
    assert!(*seen.borrow() >= 10_000, "{}", seen.borrow());
}
