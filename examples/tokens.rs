//! Build a system token and a user auth token for a network, then validate them the way
//! a Pull endpoint does.
//!
//! ```sh
//! cargo run --example tokens
//! PINGPULL_NETWORK=mysite.fyre.co PINGPULL_KEY=... cargo run --example tokens
//! ```

use std::time::Duration;

use pingpull::Network;
use pingpull::token::{self, SystemTokenValidator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::var("PINGPULL_NETWORK").unwrap_or_else(|_| "example.fyre.co".into());
    let key = std::env::var("PINGPULL_KEY").unwrap_or_else(|_| "testkeytest".into());
    let network = Network::new(name, key)?;
    println!(
        "network {} (label {}), API at {}",
        network.name(),
        network.label(),
        network.default_base_url()
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

    let tampered = format!("{}x", system.as_str());
    let reason = validator
        .validate(&tampered)
        .expect_err("a tampered token must be refused");
    println!("tampered token: refused: {reason}");
    Ok(())
}
