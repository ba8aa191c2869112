//! How the gateway reaches telemetry-manager: its URL, the token file, and for `https://` the one
//! certificate to trust (mounted from the gateway Secret; the system roots when none is given). The
//! token and the certificate are read again for every new client, so a rotation needs no restart.

use std::path::PathBuf;

use http::HeaderValue;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracegw_contract::TlsConfig;

/// A client towards the manager.
pub type ManagerClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Where the manager is and how to prove and check identities.
#[derive(Clone, Debug)]
pub struct ManagerLink {
    /// Base URL, `http://` or `https://`.
    pub url: String,
    /// File holding the shared token.
    pub token_file: PathBuf,
    /// PEM file with the certificate the manager serves with.
    pub ca_file: Option<PathBuf>,
}

// === impl ManagerLink ===

impl ManagerLink {
    /// `Authorization: Bearer <token>`, marked sensitive so it never reaches a log.
    pub fn authorization(&self) -> Result<HeaderValue, String> {
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|e| format!("cannot read token file {}: {e}", self.token_file.display()))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| "token is not a valid header value".to_string())?;
        auth.set_sensitive(true);
        Ok(auth)
    }

    /// A client that speaks plain HTTP to `http://` and verified TLS to `https://` URLs.
    pub fn client<B>(&self) -> Result<ManagerClient<B>, String>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
    {
        let ca_pem = match &self.ca_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the manager's certificate {}: {e}", path.display()))?,
            )
            .filter(|pem| !pem.trim().is_empty()),
            None => None,
        };
        let tls = crate::export::tls::client_config(&TlsConfig { ca_pem, ..TlsConfig::default() })
            .map_err(|e| format!("unusable certificate for the manager: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    }
}
