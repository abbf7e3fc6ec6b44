//! TLS for `wss://` gateways and `https://` REST bases.
//!
//! A Concord server speaks plain HTTP and is put behind a TLS-terminating proxy in
//! production (`docs/deployment.md`); the SDK reaches it there. [`Tls`] says which
//! certificate authorities to trust: the Mozilla set by default, or only the ones an
//! application names (a private CA, a test certificate). rustls with the `ring`
//! provider does the work; nothing depends on the system's OpenSSL.

use std::sync::{Arc, LazyLock};

use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use tokio_rustls::TlsConnector;

use crate::BoxedStream;

/// Which servers a connection over TLS trusts. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
}

/// A [`Tls`] that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM text held no certificate, or one that could not be read.
    #[error("no usable certificate in the PEM text: {0}")]
    Pem(String),
    /// rustls refused a certificate or the protocol settings.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

impl Tls {
    /// Trusts the Mozilla root certificates (the `webpki-roots` set), as browsers do.
    /// Built once per process and shared.
    #[must_use]
    pub fn webpki_roots() -> Self {
        static MOZILLA: LazyLock<Tls> = LazyLock::new(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Tls::from_roots(roots)
                .expect("the ring provider supports the default protocol versions")
        });
        MOZILLA.clone()
    }

    /// Trusts only the certificates in `pem` (one or more `CERTIFICATE` blocks): a
    /// private CA, or a server's own self-signed certificate.
    ///
    /// # Errors
    /// No certificate in the text, or one rustls cannot use as a root.
    pub fn with_roots_pem(pem: &[u8]) -> Result<Self, TlsError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError::Pem(e.to_string()))?;
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Pem("no CERTIFICATE block".to_owned()));
        }
        Self::from_roots(roots)
    }

    /// Uses a rustls configuration built elsewhere (client certificates, pinning).
    #[must_use]
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration, e.g. for `reqwest::ClientBuilder::use_preconfigured_tls`.
    #[must_use]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    fn from_roots(roots: RootCertStore) -> Result<Self, TlsError> {
        // ring, as reqwest's rustls-tls uses: no C toolchain or cmake needed, unlike
        // aws-lc-rs. rustls marks it deprecated because it lacks post-quantum key
        // exchange; classic X25519/P-256 stays what the proxies in front of Concord
        // offer today.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Runs the TLS handshake over `stream` for server name `host`.
    ///
    /// # Errors
    /// An invalid host name, a failed handshake or an untrusted certificate.
    pub async fn wrap(&self, host: &str, stream: BoxedStream) -> std::io::Result<BoxedStream> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
        })?;
        let tls = TlsConnector::from(Arc::clone(&self.config))
            .connect(name, stream)
            .await?;
        Ok(Box::new(tls))
    }
}

impl Default for Tls {
    fn default() -> Self {
        Self::webpki_roots()
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}
