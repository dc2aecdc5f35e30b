//! Build a system token and a user auth token for a network, then validate them the way
//! a Pull endpoint does.
//!
//! ```sh
//! cargo run --example tokens
//! PINGPULL_NETWORK=mysite.fyre.co PINGPULL_KEY=... cargo run --example tokens
//! # while rotating the key, the keys still accepted:
//! PINGPULL_NETWORK=mysite.fyre.co PINGPULL_KEY=... PINGPULL_PREVIOUS_KEYS=... cargo run --example tokens
//! ```

use std::time::Duration;

use pingpull::Network;
use pingpull::token::{self, SystemTokenValidator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::var("PINGPULL_NETWORK").unwrap_or_else(|_| "example.fyre.co".into());
    let key = std::env::var("PINGPULL_KEY").unwrap_or_else(|_| "testkeytest".into());
    // Keys still accepted while the key is rotated, comma-separated.
    let previous = std::env::var("PINGPULL_PREVIOUS_KEYS").unwrap_or_default();
    let network = Network::new(name, key)?
        .with_previous_keys(previous.split(',').map(str::trim).filter(|k| !k.is_empty()))?;
    println!(
        "network {} (label {}), API at {}, {} previous key(s) accepted",
        network.name(),
        network.label(),
        network.default_base_url(),
        network.previous_key_count()
    );

    let system = token::system_token(&network);
    let validator = SystemTokenValidator::new(network.clone());
    let expiry = validator.validate(system.as_str())?;
    println!(
        "system token: valid, expires at {} (Unix seconds)",
        expiry.expires()
    );

    let user = token::user_auth_token(
        &network,
        "user-42",
        "Zoë 山田 🎉",
        Duration::from_secs(3600),
    )?;
    match validator.validate(user.as_str()) {
        Err(reason) => {
            println!("user auth token: refused as a system token, as it should be: {reason}")
        }
        Ok(_) => return Err("a user auth token passed as a system token".into()),
    }

    // A key rotation: a new key is current and this one is kept as previous. Tokens made
    // with this key still validate, and say so; everything signed uses the new key.
    let rotated = Network::new(network.name(), "a-new-key")?.with_previous_keys([network.key()])?;
    let expiry = SystemTokenValidator::new(rotated).validate(system.as_str())?;
    println!(
        "after a key rotation: the same system token still validates (with a previous key: {})",
        expiry.previous_key()
    );

    let tampered = format!("{}x", system.as_str());
    let reason = validator
        .validate(&tampered)
        .expect_err("a tampered token must be refused");
    println!("tampered token: refused: {reason}");
    Ok(())
}
