//! The durable outbox end to end: an axum app whose profile update and its ping commit in
//! one PostgreSQL transaction, an outbox worker delivering to the built-in emulator, and
//! the emulator pulling the new profile from the app (which reads it from PostgreSQL).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example outbox
//! ```
//!
//! It works in a schema of its own, `pingpull_example`, and drops it at the end.

// Serving with a header-read timeout and a graceful stop; no signal: this program ends
// by itself.
#[allow(dead_code)]
#[path = "common/serve.rs"]
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use pingpull::emulator::Emulator;
use pingpull::outbox::{OutboxTable, OutboxWorker};
use pingpull::pull::{PullLayer, source_fn};
use pingpull::{BoxError, Network, Profile};
use sqlx::{PgPool, Row};

const SCHEMA: &str = "pingpull_example";

#[derive(Clone)]
struct App {
    pool: PgPool,
    outbox: OutboxTable,
}

/// `PUT /users/{id}/display_name`: the change and its ping, in one transaction.
async fn update_display_name(
    State(app): State<App>,
    Path(id): Path<String>,
    name: String,
) -> Result<StatusCode, (StatusCode, String)> {
    let fail = |e: &dyn std::fmt::Display| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut tx = app.pool.begin().await.map_err(|e| fail(&e))?;
    let updated = sqlx::query(&format!(
        "UPDATE {SCHEMA}.users SET display_name = $1 WHERE id = $2"
    ))
    .bind(&name)
    .bind(&id)
    .execute(&mut *tx)
    .await
    .map_err(|e| fail(&e))?;
    if updated.rows_affected() == 0 {
        return Ok(StatusCode::NOT_FOUND);
    }
    // Rolled back with the change if anything below fails; delivered once committed.
    app.outbox
        .enqueue(&mut *tx, &id)
        .await
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    tx.commit().await.map_err(|e| fail(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outbox example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test")?;
    let pool = PgPool::connect(&url).await?;
    let outbox = OutboxTable::new(SCHEMA, "livefyre_outbox")?;
    outbox.create(&pool).await?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.users (id text PRIMARY KEY, display_name text NOT NULL);
         INSERT INTO {SCHEMA}.users VALUES ('u1', 'Ada Lovelace') ON CONFLICT (id) DO NOTHING;"
    ))
    .execute(&pool)
    .await?;
    let result = demo(&pool, outbox).await;
    sqlx::raw_sql(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .execute(&pool)
        .await?;
    result
}

async fn demo(pool: &PgPool, outbox: OutboxTable) -> Result<(), Box<dyn std::error::Error>> {
    let network = Network::new("example.fyre.co", "testkeytest")?;
    let emulator = Emulator::start(network.clone()).await?;
    println!("emulator (Livefyre) at {}", emulator.base_url());

    // The app: the Pull endpoint reads profiles from PostgreSQL; the update route writes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_url = format!("http://{}", listener.local_addr()?);
    let template = format!("{app_url}/livefyre/pull?id={{id}}");
    let reader = pool.clone();
    let profiles = source_fn(move |id: String| {
        let pool = reader.clone();
        async move {
            let row = sqlx::query(&format!(
                "SELECT display_name FROM {SCHEMA}.users WHERE id = $1"
            ))
            .bind(&id)
            .fetch_optional(&pool)
            .await?;
            let name: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
            Ok::<_, BoxError>(name.map(|name| Profile::builder(id, name).build()))
        }
    });
    let app = Router::new()
        .route("/users/{id}/display_name", put(update_display_name))
        .with_state(App {
            pool: pool.clone(),
            outbox: outbox.clone(),
        })
        .layer(PullLayer::new(&template, network.clone(), profiles)?);
    // The app serves until this program is done with it, then stops gracefully.
    let (stop_app, app_stopping) = tokio::sync::oneshot::channel::<()>();
    let app_server = tokio::spawn(serve::serve(listener, app, async {
        let _ = app_stopping.await;
    }));
    println!("app at {app_url}");

    // In every instance of the app (here one): the outbox worker.
    let worker = OutboxWorker::builder(network, pool.clone(), outbox)
        .base_url(emulator.base_url())
        .poll_every(Duration::from_millis(100))
        .spawn()?;
    worker.client().register_pull_url(&template).await?;

    let status = put_display_name(&app_url, "u1", "Ada King, Countess of Lovelace").await?;
    println!("PUT /users/u1/display_name answered {status}: the change and its ping committed");

    let profile = emulator
        .wait_for_profile("u1", Duration::from_secs(10), |p| {
            p.display_name == "Ada King, Countess of Lovelace"
        })
        .await?;
    println!(
        "emulator's remote profile for u1 now says \"{}\"",
        profile.display_name
    );
    let report = worker.shutdown(Duration::from_secs(2)).await;
    let _ = stop_app.send(());
    let _ = app_server.await;
    println!("done: {} ping(s) delivered", report.stats.succeeded);
    Ok(())
}

/// Changes a display name through the app, as a browser would.
async fn put_display_name(
    app_url: &str,
    id: &str,
    body: &'static str,
) -> Result<StatusCode, Box<dyn std::error::Error>> {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = axum::http::Request::put(format!("{app_url}/users/{id}/display_name"))
        .body(Full::from(body))?;
    let response = client.request(request).await?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    Ok(status)
}
