//! https for real: pings and a registration over TLS to the emulator, behind a local
//! rustls server whose certificate is made here by a CA made here. Trusted only when its
//! root is added (`TlsRoots`); refused with a clear reason otherwise.

use std::time::Duration;

use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::{Failure, LivefyreClient, PingEvent, Pinger, RequestError, TlsRoots};
use rcgen::SanType;

use crate::support::tls_front::{
    Certificates, TlsFront, certificates, certificates_with, trusting,
};

const TEMPLATE: &str = "http://127.0.0.1:9/livefyre/pull?id={id}";

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

async fn emulator_behind_tls(certificates: &Certificates) -> (Emulator, TlsFront) {
    let emulator = Emulator::start(network()).await.unwrap();
    let front = TlsFront::start(certificates, emulator.addr()).await;
    (emulator, front)
}

#[tokio::test]
async fn registration_over_https_succeeds_with_the_added_root() {
    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let client = LivefyreClient::new(network(), &front.base_url())
        .unwrap()
        .tls_roots(&trusting(&certificates));

    client.register_pull_url(TEMPLATE).await.unwrap();

    assert_eq!(emulator.pull_url().as_deref(), Some(TEMPLATE));
}

#[tokio::test]
async fn sync_user_over_https_succeeds_with_the_added_root() {
    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let client = LivefyreClient::new(network(), &front.base_url())
        .unwrap()
        .tls_roots(&trusting(&certificates));

    client.sync_user("u1").await.unwrap();

    assert_eq!(emulator.pings_received("u1"), 1);
}

#[tokio::test]
async fn without_the_root_https_is_refused_naming_the_unknown_issuer() {
    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    // Mozilla's roots only: the test CA is not among them.
    let client = LivefyreClient::new(network(), &front.base_url()).unwrap();

    let error = client.register_pull_url(TEMPLATE).await.unwrap_err();

    let RequestError::Transport(message) = &error else {
        panic!("expected a connection failure, got {error:?}");
    };
    assert!(
        message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    assert_eq!(emulator.pull_url(), None);
    assert_eq!(
        client
            .sync_user("u1")
            .await
            .map_err(|e| matches!(e, RequestError::Transport(_))),
        Err(true)
    );
    assert_eq!(emulator.pings_received("u1"), 0);
}

#[tokio::test]
async fn another_ca_is_not_trusted() {
    let certificates = certificates("pingpull test CA");
    let stranger = certificates_of_another_ca();
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let client = LivefyreClient::new(network(), &front.base_url())
        .unwrap()
        .tls_roots(&TlsRoots::empty().add_pem(stranger.as_bytes()).unwrap());

    let error = client.sync_user("u1").await.unwrap_err();

    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    assert_eq!(emulator.pings_received("u1"), 0);
}

/// A certificate the client must refuse, though its CA is trusted: one request by the
/// one-shot client and one by a Pinger fail, naming `fault`, and nothing is delivered.
async fn a_trusted_ca_s_bad_certificate_is_refused(certificates: Certificates, fault: &str) {
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let roots = trusting(&certificates);
    let client = LivefyreClient::new(network(), &front.base_url())
        .unwrap()
        .tls_roots(&roots);

    let error = client.sync_user("u1").await.unwrap_err();
    let RequestError::Transport(message) = &error else {
        panic!("expected a connection failure, got {error:?}");
    };
    assert!(
        message.contains("invalid peer certificate") && message.contains(fault),
        "{message}"
    );

    let pinger = Pinger::builder(network())
        .base_url(front.base_url())
        .tls_roots(&roots)
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u2").unwrap();
    match next_outcome(&mut events).await {
        PingEvent::Retrying {
            failure: Failure::Connection(message),
            ..
        } => assert!(message.contains(fault), "{message}"),
        other => panic!("expected a retry after a certificate fault, got {other:?}"),
    }
    assert_eq!(emulator.pings_received("u1"), 0);
    assert_eq!(emulator.pings_received("u2"), 0);
    let report = pinger.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.undelivered, ["u2"]);
    assert_eq!(report.stats.succeeded, 0);
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_refused() {
    // Signed by the trusted CA, but for livefyre.example alone, not 127.0.0.1.
    let certificates = certificates_with("pingpull test CA", |server| {
        server.subject_alt_names = vec![SanType::DnsName("livefyre.example".try_into().unwrap())];
    });
    a_trusted_ca_s_bad_certificate_is_refused(
        certificates,
        "certificate not valid for name \"127.0.0.1\"",
    )
    .await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    // Signed by the trusted CA for 127.0.0.1, but valid in 2020 only.
    let certificates = certificates_with("pingpull test CA", |server| {
        server.not_before = rcgen::date_time_ymd(2020, 1, 1);
        server.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    a_trusted_ca_s_bad_certificate_is_refused(certificates, "certificate expired").await;
}

fn certificates_of_another_ca() -> String {
    certificates("another CA").ca_pem
}

async fn next_outcome(events: &mut tokio::sync::broadcast::Receiver<PingEvent>) -> PingEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        if matches!(
            event,
            PingEvent::Delivered { .. } | PingEvent::Retrying { .. } | PingEvent::GaveUp { .. }
        ) {
            return event;
        }
    }
}

#[tokio::test]
async fn the_pinger_delivers_over_https_with_the_added_root() {
    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let pinger = Pinger::builder(network())
        .base_url(front.base_url())
        .tls_roots(&trusting(&certificates))
        .spawn()
        .unwrap();
    let mut events = pinger.events();

    pinger.ping("u1").unwrap();

    assert_eq!(
        next_outcome(&mut events).await,
        PingEvent::Delivered {
            user_id: "u1".to_owned(),
            attempts: 1
        }
    );
    assert_eq!(emulator.pings_received("u1"), 1);
    assert!(
        pinger
            .shutdown(Duration::from_secs(5))
            .await
            .undelivered
            .is_empty()
    );
}

#[tokio::test]
async fn the_pinger_without_the_root_retries_naming_the_certificate_fault() {
    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let pinger = Pinger::builder(network())
        .base_url(front.base_url())
        .spawn()
        .unwrap();
    let mut events = pinger.events();

    pinger.ping("u1").unwrap();

    match next_outcome(&mut events).await {
        PingEvent::Retrying {
            failure: Failure::Connection(message),
            ..
        } => assert!(message.contains("UnknownIssuer"), "{message}"),
        other => panic!("expected a retry after a certificate fault, got {other:?}"),
    }
    assert_eq!(emulator.pings_received("u1"), 0);
    let report = pinger.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.undelivered.len(), 1);
}

/// `pingpull register` and `pingpull ping` with `--ca-cert FILE` trust that CA; without
/// it the registration fails naming the certificate fault; a file with no certificate
/// is a usage error.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_trusts_a_ca_cert_file() {
    use crate::cli::commands::{pingpull, stderr, stdout};

    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let dir = std::env::temp_dir().join(format!("pingpull-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let base_url = front.base_url();
    let run = move |args: Vec<String>| {
        tokio::task::spawn_blocking(move || pingpull().args(args).output().unwrap())
    };
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["--base-url".to_owned(), base_url.clone()]);
        args
    };
    let ca = ca_file.to_str().unwrap();

    let untrusted = run(args(&["register", TEMPLATE])).await.unwrap();
    assert_eq!(untrusted.status.code(), Some(1), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("UnknownIssuer"),
        "{}",
        stderr(&untrusted)
    );

    let registered = run(args(&["register", TEMPLATE, "--ca-cert", ca]))
        .await
        .unwrap();
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
    assert_eq!(emulator.pull_url().as_deref(), Some(TEMPLATE));

    let pinged = run(args(&["ping", "u1", "--ca-cert", ca])).await.unwrap();
    assert_eq!(pinged.status.code(), Some(0), "{}", stderr(&pinged));
    assert!(
        stdout(&pinged).contains("delivered 1, failed 0"),
        "{}",
        stdout(&pinged)
    );
    assert_eq!(emulator.pings_received("u1"), 1);

    let bad = run(args(&[
        "ping",
        "u1",
        "--ca-cert",
        not_pem.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("no certificate found"),
        "{}",
        stderr(&bad)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A root given as DER (`add_root_certificate`) is trusted like one from PEM.
#[tokio::test]
async fn a_der_root_is_trusted_too() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let certificates = certificates("pingpull test CA");
    let (emulator, front) = emulator_behind_tls(&certificates).await;
    let der = CertificateDer::from_pem_slice(certificates.ca_pem.as_bytes()).unwrap();
    let roots = TlsRoots::empty().add_root_certificate(der).unwrap();
    let client = LivefyreClient::new(network(), &front.base_url())
        .unwrap()
        .tls_roots(&roots);

    client.sync_user("u1").await.unwrap();

    assert_eq!(emulator.pings_received("u1"), 1);
}

/// `pingpull check` and `register --check-user` reach an https Pull endpoint whose
/// certificate a private CA signed when given `--ca-cert`; without it the check says
/// nothing answers, naming the unknown issuer.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_checks_an_https_endpoint_with_a_ca_cert_file() {
    use crate::cli::commands::{pingpull, stderr, stdout};
    use pingpull::Profile;
    use pingpull::pull::{InMemorySource, PullLayer};

    let certificates = certificates("pingpull test CA");
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    let app = axum::Router::new().layer(PullLayer::new("/pull?id={id}", network(), users).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let front = TlsFront::start(&certificates, backend).await;
    let template = format!("{}/pull?id={{id}}", front.base_url());
    let emulator = Emulator::start(network()).await.unwrap();

    let dir = std::env::temp_dir().join(format!("pingpull-https-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();
    let ca = ca_file.to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || pingpull().args(args).output().unwrap())
    };
    let strings = |args: &[&str]| -> Vec<String> { args.iter().map(|s| (*s).to_owned()).collect() };

    let untrusted = run(strings(&["check", &template, "--user", "u1"]))
        .await
        .unwrap();
    assert_eq!(untrusted.status.code(), Some(1), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("UnknownIssuer"),
        "{}",
        stderr(&untrusted)
    );

    let checked = run(strings(&[
        "check",
        &template,
        "--user",
        "u1",
        "--ca-cert",
        &ca,
    ]))
    .await
    .unwrap();
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );

    let registered = run(strings(&[
        "register",
        "--base-url",
        &emulator.base_url(),
        "--ca-cert",
        &ca,
        &template,
        "--check-user",
        "u1",
    ]))
    .await
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
    assert!(
        stdout(&registered).contains("pulled `u1`: 200"),
        "{}",
        stdout(&registered)
    );
}
