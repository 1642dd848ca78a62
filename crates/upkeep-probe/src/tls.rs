//! TLS client settings for https:// targets (rustls with the *ring* provider).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// How to check the backend's certificate.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The system's trust store.
    #[default]
    System,
    /// The system's store plus the certificates (PEM) in this file, e.g. an
    /// internal CA.
    ExtraCa(std::path::PathBuf),
    /// Accept any certificate (`--insecure`): for self-signed test backends,
    /// and what nginx itself does unless `proxy_ssl_verify on`.
    Insecure,
}

/// Builds the client configuration once for all targets. HTTP/1.1 is
/// offered by ALPN so that a backend able to speak h2 does not pick it.
pub fn client_config(trust: &Trust) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth(),
        Trust::System | Trust::ExtraCa(_) => {
            let mut roots = rustls::RootCertStore::empty();
            // Unreadable entries of the system store are skipped, like every
            // TLS client does; an explicit --cacert must load.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if let Trust::ExtraCa(path) = trust {
                for cert in read_pem_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The most bytes read from a `--cacert` file: a full system CA bundle is
/// about 200 kB.
pub const MAX_CA_FILE_BYTES: u64 = 16 << 20;

/// A regular file only, read within [`MAX_CA_FILE_BYTES`]: a FIFO or a
/// device would block or never end.
fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = upkeep_config::file_read::read_regular_file(path, MAX_CA_FILE_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// Skips the certificate check but still verifies the handshake signatures,
/// so the session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
