//! A TLS endpoint in front of the emulator, so that a cold start pays what it pays on
//! AWS: reading the root certificates and a TLS handshake before the first request.
//! The bench makes its own CA and gives it to the function the way a user would, in
//! `SSL_CERT_FILE`: appended to this machine's CA bundle, so the function loads about as
//! many roots as from Amazon Linux's bundle, or alone, to show what loading them costs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::figures::Error;

/// Debian's and Ubuntu's bundle; Amazon Linux's is `/etc/pki/tls/certs/ca-bundle.crt`.
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

pub struct TlsFront {
    /// `https://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub url: String,
    /// This machine's roots and the bench's CA, for `SSL_CERT_FILE`.
    pub bundle: PathBuf,
    /// The bench's CA alone.
    pub ca_only: PathBuf,
    /// How many certificates `bundle` holds.
    pub roots: usize,
}

impl TlsFront {
    /// Listens on 127.0.0.1 and passes each decrypted connection to `upstream`
    /// (`http://host:port`, the keep-alive proxy), writing the CA files into `dir`.
    pub async fn start(upstream: &str, dir: &Path) -> Result<Self, Error> {
        let upstream = upstream
            .strip_prefix("http://")
            .ok_or_else(|| format!("the upstream {upstream} is not http://"))?
            .trim_end_matches('/')
            .to_owned();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "session-bench CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let cert = params.signed_by(&key, &ca)?;

        std::fs::create_dir_all(dir)?;
        let ca_only = dir.join("bench-ca.pem");
        std::fs::write(&ca_only, ca.pem())?;
        let mut bundle_text = SYSTEM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        bundle_text.push('\n');
        bundle_text.push_str(&ca.pem());
        let bundle = dir.join("ca-bundle.pem");
        std::fs::write(&bundle, &bundle_text)?;
        let roots = bundle_text.matches("-----BEGIN CERTIFICATE-----").count();

        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", listener.local_addr()?);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Ok(Self {
            url,
            bundle,
            ca_only,
            roots,
        })
    }
}
