//! Which certificate authorities https requests trust: Mozilla's roots compiled in by
//! default, plus the roots a deployment adds (a private CA, a TLS-intercepting proxy) or
//! the platform's trust store.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

/// The certificate authorities an https connection to Livefyre (or the emulator) trusts.
///
/// [`TlsRoots::default`] is what the built-in client uses unless told otherwise: Mozilla's
/// roots, compiled in. Add your own CA ([`add_pem`](Self::add_pem),
/// [`add_root_certificate`](Self::add_root_certificate)) or the platform's store
/// ([`with_native_roots`](Self::with_native_roots)), then hand the result to
/// [`PingerBuilder::tls_roots`](crate::ping::PingerBuilder::tls_roots), the outbox
/// worker's builder, [`LivefyreClient::tls_roots`](crate::ping::LivefyreClient::tls_roots)
/// or [`HyperTransport::tls_roots`](crate::ping::HyperTransport::tls_roots).
///
/// Each method checks what it is given, so a bad certificate fails at start-up, not on
/// the first request.
///
/// ```
/// use pingpull::ping::{TlsRoots, TlsRootsError};
///
/// let mozilla = TlsRoots::default();
/// assert!(mozilla.len() > 100);
///
/// // A file that holds no certificate is refused with a reason, not ignored.
/// let error = TlsRoots::default().add_pem(b"not a certificate").unwrap_err();
/// assert_eq!(error, TlsRootsError::NoCertificate);
/// ```
#[derive(Clone)]
pub struct TlsRoots {
    store: RootCertStore,
}

impl TlsRoots {
    /// No roots at all: only the certificates you add are trusted.
    pub fn empty() -> Self {
        Self {
            store: RootCertStore::empty(),
        }
    }

    /// Also trusts `certificate` (DER) as a root.
    ///
    /// # Errors
    ///
    /// [`TlsRootsError::BadCertificate`] if it is not a certificate usable as a root.
    pub fn add_root_certificate(
        mut self,
        certificate: CertificateDer<'_>,
    ) -> Result<Self, TlsRootsError> {
        self.store
            .add(certificate.into_owned())
            .map_err(|error| TlsRootsError::BadCertificate(error.to_string()))?;
        Ok(self)
    }

    /// Also trusts every certificate in `pem` (the contents of a `.pem` or `.crt` file:
    /// one or more `-----BEGIN CERTIFICATE-----` blocks; other blocks, such as keys, are
    /// skipped).
    ///
    /// # Errors
    ///
    /// [`TlsRootsError::NoCertificate`] if `pem` holds no certificate block,
    /// [`TlsRootsError::BadPem`] if a block is malformed, and
    /// [`TlsRootsError::BadCertificate`] if a block is not a usable certificate.
    pub fn add_pem(mut self, pem: &[u8]) -> Result<Self, TlsRootsError> {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|error| match error {
                pem::Error::NoItemsFound => TlsRootsError::NoCertificate,
                other => TlsRootsError::BadPem(other.to_string()),
            })?;
            self = self.add_root_certificate(certificate)?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsRootsError::NoCertificate);
        }
        Ok(self)
    }

    /// Also trusts the platform's trust store (on Linux the system's CA bundle, honouring
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`), read now.
    ///
    /// Certificates the platform holds but that cannot be used are skipped.
    ///
    /// # Errors
    ///
    /// [`TlsRootsError::NativeRoots`] if no usable certificate could be read from it.
    pub fn with_native_roots(mut self) -> Result<Self, TlsRootsError> {
        let found = rustls_native_certs::load_native_certs();
        let (added, _unusable) = self.store.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = match found.errors.first() {
                Some(error) => error.to_string(),
                None => "it holds no certificate".to_owned(),
            };
            return Err(TlsRootsError::NativeRoots(why));
        }
        Ok(self)
    }

    /// How many roots are trusted.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no root is trusted (nothing https can succeed).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The rustls configuration an https connection uses: these roots, ring, TLS 1.2
    /// and 1.3.
    pub(crate) fn client_config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.store.clone())
            .with_no_client_auth()
    }
}

/// Mozilla's roots, compiled in: what the built-in client trusts unless told otherwise.
impl Default for TlsRoots {
    fn default() -> Self {
        Self {
            store: RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        }
    }
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRoots")
            .field("roots", &self.store.len())
            .finish()
    }
}

/// Why a root certificate could not be added to [`TlsRoots`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRootsError {
    /// The PEM text holds no `-----BEGIN CERTIFICATE-----` block.
    NoCertificate,
    /// A PEM block is malformed; the reason.
    BadPem(String),
    /// A certificate cannot be used as a root; the reason.
    BadCertificate(String),
    /// Nothing usable could be read from the platform's trust store; the reason.
    NativeRoots(String),
}

impl fmt::Display for TlsRootsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCertificate => f.write_str(
                "no certificate found: expected PEM with a `-----BEGIN CERTIFICATE-----` block",
            ),
            Self::BadPem(why) => write!(f, "malformed PEM: {why}"),
            Self::BadCertificate(why) => write!(f, "not a usable root certificate: {why}"),
            Self::NativeRoots(why) => {
                write!(
                    f,
                    "no usable certificate in the platform's trust store: {why}"
                )
            }
        }
    }
}

impl std::error::Error for TlsRootsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_pem_is_refused_with_the_reason() {
        let truncated = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        let error = TlsRoots::empty().add_pem(truncated).unwrap_err();
        assert!(matches!(error, TlsRootsError::BadPem(_)), "{error:?}");
        assert!(error.to_string().starts_with("malformed PEM: "), "{error}");
    }

    #[test]
    fn a_pem_block_that_is_no_certificate_is_refused() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = TlsRoots::empty().add_pem(garbage).unwrap_err();
        assert!(
            matches!(error, TlsRootsError::BadCertificate(_)),
            "{error:?}"
        );
    }

    #[test]
    fn text_without_a_certificate_block_is_refused() {
        for text in [
            &b""[..],
            b"hello",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert_eq!(
                TlsRoots::empty().add_pem(text).unwrap_err(),
                TlsRootsError::NoCertificate
            );
        }
    }

    #[test]
    fn empty_trusts_nothing_and_debug_counts() {
        let roots = TlsRoots::empty();
        assert!(roots.is_empty());
        assert_eq!(format!("{roots:?}"), "TlsRoots { roots: 0 }");
    }
}
