//! A throwaway PKI for TLS tests: a CA for servers and one for chargers, certificates written to
//! a temporary directory, and HTTPS clients that trust the server CA.

use std::net::SocketAddr;
use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug)]
pub struct Pki {
    pub dir: tempfile::TempDir,
    server_ca: Issuer<'static, KeyPair>,
    server_ca_pem: String,
    client_ca: Issuer<'static, KeyPair>,
    pub client_ca_file: PathBuf,
}

/// A server certificate's files and its DER.
#[derive(Debug)]
pub struct ServerCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

fn authority(name: &str) -> anyhow::Result<(Issuer<'static, KeyPair>, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let pem = params.self_signed(&key)?.pem();
    Ok((Issuer::new(params, key), pem))
}

impl Pki {
    pub fn new() -> anyhow::Result<Pki> {
        let dir = tempfile::tempdir()?;
        let (server_ca, server_ca_pem) = authority("voltfleet e2e server CA")?;
        let (client_ca, client_ca_pem) = authority("voltfleet e2e charger CA")?;
        let client_ca_file = dir.path().join("charger-ca.pem");
        std::fs::write(&client_ca_file, client_ca_pem)?;
        Ok(Pki {
            dir,
            server_ca,
            server_ca_pem,
            client_ca,
            client_ca_file,
        })
    }

    /// A server certificate for `names`, written as `<stem>.pem` and `<stem>.key`.
    pub fn server_certificate(
        &self,
        stem: &str,
        names: &[&str],
    ) -> anyhow::Result<ServerCertificate> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.server_ca)?;
        let (cert_path, key_path) = (
            self.dir.path().join(format!("{stem}.pem")),
            self.dir.path().join(format!("{stem}.key")),
        );
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok(ServerCertificate {
            cert: cert_path,
            key: key_path,
            der: cert.der().to_vec(),
        })
    }

    /// A charger's client certificate with `CN=<charger_id>, O=voltfleet e2e`.
    pub fn charger_identity(&self, charger_id: &str) -> anyhow::Result<reqwest::Identity> {
        let pem = self.charger_pem(charger_id)?;
        Ok(reqwest::Identity::from_pem(pem.as_bytes())?)
    }

    /// A rustls client configuration for a charger: trusts the server CA and presents the
    /// charger's certificate, for WebSockets over TLS (OCPP security profile 3).
    pub fn charger_tls(&self, charger_id: &str) -> anyhow::Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let pem = self.charger_pem(charger_id)?;
        let chain =
            CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.server_ca_pem.as_bytes()) {
            roots.add(ca?)?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?)
    }

    fn charger_pem(&self, charger_id: &str) -> anyhow::Result<String> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "voltfleet e2e");
        params
            .distinguished_name
            .push(DnType::CommonName, charger_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.client_ca)?;
        Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
    }

    /// An HTTPS client that trusts the server CA and sends `names` to `address`.
    pub fn client(
        &self,
        names: &[&str],
        address: SocketAddr,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .tls_info(true)
            .add_root_certificate(reqwest::Certificate::from_pem(
                self.server_ca_pem.as_bytes(),
            )?)
            .timeout(std::time::Duration::from_secs(10));
        for name in names {
            builder = builder.resolve(name, address);
        }
        Ok(builder)
    }
}
