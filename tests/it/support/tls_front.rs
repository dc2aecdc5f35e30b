//! An https front made here, for the https and proxy tests: a CA and a server certificate
//! it signed for 127.0.0.1, and a rustls server that terminates TLS with it on 127.0.0.1
//! and relays the bytes to a plain-http backend (the emulator).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use pingpull::ping::TlsRoots;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A CA (its PEM) and a server certificate it signed for 127.0.0.1.
pub(crate) struct Certificates {
    pub(crate) ca_pem: String,
    pub(crate) server_chain: Vec<CertificateDer<'static>>,
    pub(crate) server_key: PrivatePkcs8KeyDer<'static>,
}

pub(crate) fn certificates(ca_name: &str) -> Certificates {
    certificates_with(ca_name, |_| {})
}

/// As [`certificates`], with the server certificate's parameters changed by `adjust`
/// (another name, a validity in the past).
pub(crate) fn certificates_with(
    ca_name: &str,
    adjust: impl FnOnce(&mut CertificateParams),
) -> Certificates {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    adjust(&mut server_params);
    let server_key = KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    Certificates {
        ca_pem: ca.pem(),
        server_chain: vec![server.der().clone()],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
    }
}

/// An https front for the emulator: terminates TLS on 127.0.0.1 (a port of its own) and
/// relays the bytes to the emulator's plain-http port. Stops when dropped.
pub(crate) struct TlsFront {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsFront {
    pub(crate) async fn start(certificates: &Certificates, backend: SocketAddr) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                certificates.server_chain.clone(),
                PrivateKeyDer::Pkcs8(certificates.server_key.clone_key()),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { addr, task }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn trusting(certificates: &Certificates) -> TlsRoots {
    TlsRoots::default()
        .add_pem(certificates.ca_pem.as_bytes())
        .unwrap()
}
