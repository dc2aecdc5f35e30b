//! docs/protocol.md §3: the known-answer vectors, every refusal kind, and property tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pingpull::clock::ManualClock;
use pingpull::token::{self, Claims, SystemTokenValidator, TokenCache, TokenError};
use pingpull::{Network, user_id::UserIdError};
use proptest::prelude::*;

use crate::support::forge;

const V2: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.fsESI7cp3uDHuqvoAr8ZDMAmzur4fFjjffZJeaH2KiA";
const V3: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.MZSBbaslZqmBM6DwdvLfU_lMAEuXYRBRoZaw5F72kUI";
const V4: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMC4xMjMsImlhdCI6MTcwMDAwMDAwMH0.MhlQd9DC4RDFBMsqXOtAM-rESVeH-0-ZRcOi1h82rc4";
const V5: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoidXNlci00Mi54X3kiLCJkaXNwbGF5X25hbWUiOiJCb2IgRG9sZSIsImV4cGlyZXMiOjE3MDAwMDM2MDB9._2QQhQo9LiZLGTAHibcR_eCjVe_9gvxlkmM1RHKjG1U";
const V7: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoidTEiLCJkaXNwbGF5X25hbWUiOiJhXC9iIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.tR_EU2F0NEjFil2YkCRdSha5DIZ_fNJ0BalsgrQyHLI";
const V8: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.HQlz2yeCd2nmUi51TLKyF5XNBGPhPEpukc456Pe0B4U";
/// The token printed in Livefyre's docs: header `{"alg":"HS256"}`, domain `test.fyre.com`.
const DOCS: &str = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJ0ZXN0LmZ5cmUuY29tIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjEzOTY2NTUwODN9.33GuJF_ou2O6CCV22Y3PlLUgP2Igy9vAXfmLONkt-Yo";

const NOW: u64 = 1_700_000_000;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn validator() -> SystemTokenValidator {
    SystemTokenValidator::new(network()).clock(ManualClock::at_unix(NOW))
}

const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

fn signed_claims(payload: &str) -> String {
    forge(HEADER, payload, "testkeytest")
}

// ---- Building -------------------------------------------------------------------------

#[test]
fn system_token_for_the_v3_claims_is_the_v3_vector() {
    let token = token::system_token_at(&network(), at(NOW), token::SYSTEM_TOKEN_LIFETIME);
    assert_eq!(token.as_str(), V3);
    assert_eq!(
        Claims::system(&network(), 1_700_086_400)
            .sign(&network())
            .as_str(),
        V3
    );
}

#[test]
fn user_auth_token_for_the_v5_claims_is_the_v5_vector() {
    let token = token::user_auth_token_at(
        &network(),
        "user-42.x_y",
        "Bob Dole",
        at(NOW),
        Duration::from_secs(3600),
    )
    .unwrap();
    assert_eq!(token.as_str(), V5);
}

#[test]
fn user_auth_token_escapes_like_the_python_library() {
    // Made with Python's json.dumps(separators=(",", ":")), hmac and base64 from the stdlib.
    let python = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoidTEiLCJkaXNwbGF5X25hbWUiOiJab1x1MDBlYiBcdTVjNzFcdTc1MzAgXHVkODNjXHVkZjg5IiwiZXhwaXJlcyI6MTcwMDAwMzYwMH0.SdneCCuDvjl_JNWbnybwW7TwuOblQ_DFQJdjVHte7w4";
    let token = token::user_auth_token_at(
        &network(),
        "u1",
        "Zoë 山田 🎉",
        at(NOW),
        Duration::from_secs(3600),
    )
    .unwrap();
    assert_eq!(token.as_str(), python);
}

#[test]
fn user_auth_token_refuses_a_bad_user_id() {
    let err =
        token::user_auth_token(&network(), "bob\n", "Bob", Duration::from_secs(60)).unwrap_err();
    assert_eq!(
        err,
        UserIdError::Character {
            index: 3,
            character: '\n'
        }
    );
}

#[test]
fn system_token_now_validates_now() {
    let network = network();
    let token = token::system_token(&network);
    let expiry = SystemTokenValidator::new(network)
        .validate(token.as_str())
        .unwrap();
    let in_a_day = SystemTime::now() + token::SYSTEM_TOKEN_LIFETIME;
    assert!(
        (expiry.expires() - in_a_day.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()).abs() < 5.0
    );
}

#[test]
fn token_debug_is_redacted() {
    let token = token::system_token(&network());
    let debug = format!("{token:?}");
    assert!(
        !debug.contains(token.as_str()) && debug.contains("redacted"),
        "{debug}"
    );
}

// ---- The vectors ----------------------------------------------------------------------

#[test]
fn v2_v3_v4_are_valid_system_tokens() {
    let validator = validator();
    assert_eq!(validator.validate(V2).unwrap().expires(), 1_700_086_400.0);
    assert_eq!(validator.validate(V3).unwrap().expires(), 1_700_086_400.0);
    assert_eq!(validator.validate(V4).unwrap().expires(), 1_700_086_400.123);
}

#[test]
fn v2_and_v3_are_valid_at_expiry_and_expired_one_second_later() {
    let validator = validator();
    for vector in [V2, V3] {
        validator.validate_at(vector, at(1_700_086_400)).unwrap();
        assert_eq!(
            validator.validate_at(vector, at(1_700_086_401)),
            Err(TokenError::Expired {
                expires: 1_700_086_400.0,
                now: 1_700_086_401.0
            })
        );
    }
}

#[test]
fn v4_float_expiry_holds_to_the_fraction() {
    let validator = validator();
    validator.validate_at(V4, at(1_700_086_400)).unwrap();
    validator
        .validate_at(V4, at(1_700_086_400) + Duration::from_millis(123))
        .unwrap();
    assert!(matches!(
        validator.validate_at(V4, at(1_700_086_400) + Duration::from_millis(124)),
        Err(TokenError::Expired { .. })
    ));
    assert!(matches!(
        validator.validate_at(V4, at(1_700_086_401)),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn v5_and_v7_have_good_signatures_but_are_not_system_tokens() {
    let validator = validator();
    assert_eq!(validator.validate(V5), Err(TokenError::NotSystemToken));
    assert_eq!(validator.validate(V7), Err(TokenError::NotSystemToken));
}

#[test]
fn v8_has_a_bad_signature() {
    assert_eq!(validator().validate(V8), Err(TokenError::BadSignature));
}

#[test]
fn docs_token_verifies_with_the_test_key_but_names_another_network() {
    // Its signature checks out with `testkeytest` (else BadSignature would come first);
    // its domain is test.fyre.com.
    assert_eq!(
        validator().validate(DOCS),
        Err(TokenError::WrongNetwork {
            expected: "example.fyre.co".into()
        })
    );
}

#[test]
fn clock_is_read_on_every_validation() {
    let clock = ManualClock::at_unix(NOW);
    let validator = SystemTokenValidator::new(network()).clock(clock.clone());
    validator.validate(V3).unwrap();
    clock.set(at(1_700_086_401));
    assert!(matches!(
        validator.validate(V3),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn leeway_extends_expiry_by_exactly_its_length() {
    let validator = validator().leeway(Duration::from_secs(30));
    validator.validate_at(V3, at(1_700_086_430)).unwrap();
    assert!(matches!(
        validator.validate_at(V3, at(1_700_086_431)),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn verify_then_check_is_validate_split_for_caches() {
    let validator = validator();
    let expiry = validator.verify(V3).unwrap();
    expiry.check(at(1_700_086_400), Duration::ZERO).unwrap();
    assert!(expiry.check(at(1_700_086_401), Duration::ZERO).is_err());
    assert_eq!(validator.verify(V8), Err(TokenError::BadSignature));
}

// ---- Every refusal kind ---------------------------------------------------------------

#[test]
fn refuses_a_token_over_the_size_limit() {
    let long = "a".repeat(token::MAX_TOKEN_LEN + 1);
    assert_eq!(
        validator().validate(&long),
        Err(TokenError::TooLong {
            len: token::MAX_TOKEN_LEN + 1
        })
    );
}

/// A system token of exactly `len` bytes, signed with `key`: its display name is padded.
fn system_token_of_len(len: usize, key: &str) -> String {
    // Three bytes of payload take four characters: start the search a little short.
    (len.saturating_sub(200) / 4 * 3..len)
        .map(|pad| {
            let payload = format!(
                r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"{}","expires":1700086400}}"#,
                "x".repeat(pad)
            );
            forge(HEADER, &payload, key)
        })
        .find(|token| token.len() == len)
        .expect("base64url reaches this length")
}

/// The limit is inclusive: a token of exactly 4 KiB is read and judged like any other,
/// one byte more is refused unread.
#[test]
fn a_token_of_exactly_the_size_limit_is_judged_on_its_merits() {
    let limit = token::MAX_TOKEN_LEN;
    let at_limit = system_token_of_len(limit, "testkeytest");
    assert!(validator().validate(&at_limit).is_ok());
    let wrong_key = system_token_of_len(limit, "wrongkey");
    assert_eq!(
        validator().validate(&wrong_key),
        Err(TokenError::BadSignature)
    );
    let over = system_token_of_len(limit + 1, "testkeytest");
    assert_eq!(
        validator().validate(&over),
        Err(TokenError::TooLong { len: limit + 1 })
    );
}

#[test]
fn refuses_malformed_structure() {
    let (h, p, s) = {
        let mut parts = V3.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    let cases = [
        String::new(),
        "abc".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}.."),
        format!("{h}=.{p}.{s}"),
        V4.replace('-', "+"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{}", s.replace('_', "/")),
        format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode("not json")),
        format!(" {h}.{p}.{s}"),
    ];
    for case in cases {
        assert!(
            matches!(
                validator().validate(&case),
                Err(TokenError::Malformed { .. })
            ),
            "{case}: {:?}",
            validator().validate(&case)
        );
    }
}

#[test]
fn refuses_a_five_part_jwe() {
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    assert!(matches!(
        validator().validate(jwe),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn refuses_payloads_that_are_not_json_objects() {
    for payload in [
        "not json",
        "[1,2]",
        "\"system\"",
        "",
        "{\"domain\":\"example.fyre.co\"",
    ] {
        assert_eq!(
            validator().validate(&signed_claims(payload)),
            Err(TokenError::Malformed {
                reason: "payload is not a JSON object"
            }),
            "{payload}"
        );
    }
}

#[test]
fn refuses_every_algorithm_but_hs256() {
    let claims = r#"{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":1700086400}"#;
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"HS384","typ":"JWT"}"#,
        r#"{"alg":"HS512"}"#,
        r#"{"alg":"RS256"}"#,
        r#"{"alg":"ES256"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"typ":"JWT"}"#,
    ] {
        assert_eq!(
            validator().validate(&forge(header, claims, "testkeytest")),
            Err(TokenError::WrongAlgorithm),
            "{header}"
        );
    }
    // `alg: none` with an empty signature, the classic downgrade.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    assert_eq!(validator().validate(&none), Err(TokenError::WrongAlgorithm));
}

#[test]
fn ignores_typ_kid_and_jku_but_refuses_crit() {
    let claims = r#"{"domain":"example.fyre.co","user_id":"system","expires":1700086400}"#;
    let ok = forge(
        r#"{"alg":"HS256","kid":"k1","jku":"https://attacker.example/keys"}"#,
        claims,
        "testkeytest",
    );
    validator().validate(&ok).unwrap();
    let crit = forge(r#"{"alg":"HS256","crit":["exp"]}"#, claims, "testkeytest");
    assert!(matches!(
        validator().validate(&crit),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn refuses_a_wrong_key_and_a_truncated_signature() {
    let claims = r#"{"domain":"example.fyre.co","user_id":"system","expires":1700086400}"#;
    assert_eq!(
        validator().validate(&forge(HEADER, claims, "testkeytes")),
        Err(TokenError::BadSignature)
    );
    // 40 characters decode cleanly to 30 bytes: a short signature, not a malformed one.
    let truncated = &V3[..V3.len() - 3];
    assert_eq!(
        validator().validate(truncated),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn refuses_missing_claims() {
    for (payload, claim) in [
        (r#"{"user_id":"system","expires":1700086400}"#, "domain"),
        (
            r#"{"domain":"example.fyre.co","expires":1700086400}"#,
            "user_id",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system"}"#,
            "expires",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system","expires":null}"#,
            "expires",
        ),
        (r#"{}"#, "domain"),
    ] {
        assert_eq!(
            validator().validate(&signed_claims(payload)),
            Err(TokenError::MissingClaim { claim }),
            "{payload}"
        );
    }
}

#[test]
fn refuses_wrongly_typed_claims() {
    for (payload, claim) in [
        (
            r#"{"domain":"example.fyre.co","user_id":"system","expires":"1700086400"}"#,
            "expires",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system","expires":true}"#,
            "expires",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system","expires":[1700086400]}"#,
            "expires",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system","expires":1e400}"#,
            "expires",
        ),
        (
            r#"{"domain":["example.fyre.co"],"user_id":"system","expires":1700086400}"#,
            "domain",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":0,"expires":1700086400}"#,
            "user_id",
        ),
        (
            r#"{"domain":"example.fyre.co","user_id":"system","display_name":7,"expires":1700086400}"#,
            "display_name",
        ),
    ] {
        assert_eq!(
            validator().validate(&signed_claims(payload)),
            Err(TokenError::InvalidClaim { claim }),
            "{payload}"
        );
    }
}

#[test]
fn refuses_a_repeated_claim() {
    // Two `user_id`s: which one a library reads differs, so neither is trusted.
    let payload =
        r#"{"domain":"example.fyre.co","user_id":"u1","user_id":"system","expires":1700086400}"#;
    assert!(matches!(
        validator().validate(&signed_claims(payload)),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn accepts_unknown_claims_and_escaped_strings() {
    let payload = r#"{"iat":1,"domain":"example\u002efyre.co","user_id":"sys\u0074em","expires":1700086400,"extra":{"a":[1]}}"#;
    validator().validate(&signed_claims(payload)).unwrap();
}

#[test]
fn refuses_another_network_a_user_token_and_expired_tokens() {
    let other =
        signed_claims(r#"{"domain":"other.fyre.co","user_id":"system","expires":1700086400}"#);
    assert_eq!(
        validator().validate(&other),
        Err(TokenError::WrongNetwork {
            expected: "example.fyre.co".into()
        })
    );
    let user =
        signed_claims(r#"{"domain":"example.fyre.co","user_id":"alice","expires":1700086400}"#);
    assert_eq!(validator().validate(&user), Err(TokenError::NotSystemToken));
    for expires in ["1699999999", "-1", "0", "1699999999.999"] {
        let old = signed_claims(&format!(
            r#"{{"domain":"example.fyre.co","user_id":"system","expires":{expires}}}"#
        ));
        assert!(
            matches!(validator().validate(&old), Err(TokenError::Expired { .. })),
            "{expires}"
        );
    }
    let huge = signed_claims(
        r#"{"domain":"example.fyre.co","user_id":"system","expires":18446744073709551615}"#,
    );
    validator().validate(&huge).unwrap();
}

#[test]
fn error_display_never_contains_the_token_or_key() {
    let key = "a-rather-secret-key";
    let network = Network::new("example.fyre.co", key).unwrap();
    let validator = SystemTokenValidator::new(network.clone());
    let good = token::system_token(&network);
    let candidates = [
        V3.to_owned(),
        V5.to_owned(),
        DOCS.to_owned(),
        good.as_str()[..good.as_str().len() - 2].to_owned(),
        forge(r#"{"alg":"none"}"#, "{}", key),
    ];
    for candidate in candidates {
        let err = validator.validate(&candidate).unwrap_err();
        let text = format!("{err} {err:?}");
        for secret in [
            candidate.as_str(),
            key,
            candidate.split('.').nth(2).unwrap_or("x"),
        ] {
            assert!(secret.is_empty() || !text.contains(secret), "{text}");
        }
    }
}

// ---- The verified-token cache -----------------------------------------------------------

fn cached_validator(clock: &ManualClock) -> SystemTokenValidator {
    SystemTokenValidator::new(network())
        .clock(clock.clone())
        .cache(Some(TokenCache::new(4)))
}

#[test]
fn a_cached_token_still_expires_at_the_exact_second() {
    let clock = ManualClock::at_unix(NOW);
    let validator = cached_validator(&clock);
    assert!(validator.validate(V3).is_ok());
    clock.set(at(1_700_086_400));
    assert!(validator.validate(V3).is_ok(), "valid at its expiry");
    clock.set(at(1_700_086_401));
    assert!(matches!(
        validator.validate(V3),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn a_warm_cache_refuses_every_bit_flip_of_the_cached_token() {
    let clock = ManualClock::at_unix(NOW);
    let validator = cached_validator(&clock);
    assert!(validator.validate(V3).is_ok());
    for (index, bit, mutated) in bit_flips(V3) {
        assert!(
            validator.validate(&mutated).is_err(),
            "byte {index} bit {bit}"
        );
    }
    assert!(validator.validate(V3).is_ok());
}

#[test]
fn refused_tokens_are_never_cached() {
    let clock = ManualClock::at_unix(NOW);
    let validator = cached_validator(&clock);
    let other = Network::new("other.fyre.co", "testkeytest").unwrap();
    let foreign = token::system_token_at(&other, at(NOW), Duration::from_secs(60));
    for _ in 0..2 {
        assert!(matches!(
            validator.validate(foreign.as_str()),
            Err(TokenError::WrongNetwork { .. })
        ));
        assert_eq!(
            validator.validate(&format!("{V3}x")),
            Err(TokenError::BadSignature)
        );
    }
    // Expired when first seen, so not remembered: a clock turned back verifies it again,
    // and it is refused again once the clock moves past its expiry.
    clock.set(at(1_700_086_401));
    assert!(validator.validate(V3).is_err());
    clock.set(at(NOW));
    assert!(validator.validate(V3).is_ok());
    clock.set(at(1_700_086_401));
    assert!(validator.validate(V3).is_err());
}

#[test]
fn the_cache_is_shared_by_clones_and_hidden_from_debug() {
    let clock = ManualClock::at_unix(NOW);
    let validator = cached_validator(&clock);
    let clone = validator.clone().leeway(Duration::from_secs(5));
    assert!(clone.validate(V3).is_ok());
    clock.set(at(1_700_086_404));
    assert!(
        clone.validate(V3).is_ok(),
        "leeway applies to cached tokens"
    );
    assert!(
        validator.validate(V3).is_err(),
        "without leeway it is expired"
    );
    let debug = format!("{validator:?}");
    assert!(
        debug.contains("TokenCache") && !debug.contains(&V3[40..]),
        "{debug}"
    );
}

// ---- Properties -----------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_strings_never_validate(token in "\\PC{0,300}") {
        prop_assert!(validator().validate(&token).is_err());
    }

    #[test]
    fn arbitrary_three_segment_strings_never_validate(
        h in "[A-Za-z0-9_-]{0,60}", p in "[A-Za-z0-9_-]{0,120}", s in "[A-Za-z0-9_-]{0,50}"
    ) {
        let candidate = format!("{h}.{p}.{s}");
        prop_assert!(validator().validate(&candidate).is_err());
    }

    #[test]
    fn every_single_byte_change_of_a_valid_token_is_refused(index in 0..V3.len(), byte in any::<u8>()) {
        let mut bytes = V3.as_bytes().to_vec();
        prop_assume!(bytes[index] != byte);
        bytes[index] = byte;
        let mutated = String::from_utf8_lossy(&bytes);
        prop_assert!(validator().validate(&mutated).is_err(), "{}", mutated);
    }

    #[test]
    fn signed_claims_of_other_users_are_never_system_tokens(user in "[A-Za-z0-9_.-]{1,20}") {
        prop_assume!(user != "system");
        let token = token::user_auth_token_at(&network(), &user, "x", at(NOW), Duration::from_secs(60)).unwrap();
        prop_assert_eq!(validator().validate(token.as_str()), Err(TokenError::NotSystemToken));
    }
}

#[test]
fn every_single_bit_flip_of_a_valid_token_is_refused() {
    let validator = validator();
    for (index, bit, mutated) in bit_flips(V3) {
        assert!(
            validator.validate(&mutated).is_err(),
            "byte {index} bit {bit}: {mutated}"
        );
    }
}

/// Every single-bit change of `token`: (byte index, bit, the changed text).
fn bit_flips(token: &str) -> impl Iterator<Item = (usize, u32, String)> + '_ {
    (0..token.len()).flat_map(move |index| {
        (0..8).map(move |bit| {
            let mut bytes = token.as_bytes().to_vec();
            bytes[index] ^= 1 << bit;
            (index, bit, String::from_utf8_lossy(&bytes).into_owned())
        })
    })
}
