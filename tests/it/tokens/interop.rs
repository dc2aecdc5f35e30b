//! Interoperability with the standard JWT library: our tokens decode with `jsonwebtoken`,
//! and tokens it builds for the same claims are byte-identical and validate with ours.

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pingpull::{Network, token};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct LivefyreClaims {
    domain: String,
    user_id: String,
    display_name: String,
    expires: i64,
}

fn lenient_validation() -> Validation {
    // Livefyre tokens carry `expires`, not `exp`.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation
}

#[test]
fn our_tokens_decode_with_jsonwebtoken() {
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let token =
        token::user_auth_token_at(&network, "u1", "Zoë 山田 🎉", now, Duration::from_secs(60))
            .unwrap();
    let decoded = jsonwebtoken::decode::<LivefyreClaims>(
        token.as_str(),
        &DecodingKey::from_secret(b"testkeytest"),
        &lenient_validation(),
    )
    .unwrap();
    assert_eq!(
        decoded.claims,
        LivefyreClaims {
            domain: "example.fyre.co".into(),
            user_id: "u1".into(),
            display_name: "Zoë 山田 🎉".into(),
            expires: 1_700_000_060,
        }
    );
}

#[test]
fn jsonwebtoken_system_tokens_match_ours_and_validate() {
    let claims = LivefyreClaims {
        domain: "example.fyre.co".into(),
        user_id: "system".into(),
        display_name: "system".into(),
        expires: 1_700_086_400,
    };
    let theirs = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"testkeytest"),
    )
    .unwrap();
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let ours = token::Claims::system(&network, 1_700_086_400).sign(&network);
    assert_eq!(theirs, ours.as_str());
    token::SystemTokenValidator::new(network)
        .validate_at(&theirs, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
}
