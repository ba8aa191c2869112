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

// === free functions ===

/// "cannot reach the manager: " and `error` with every cause under it, e.g. `client error (Connect):
/// tcp connect error: Connection refused (os error 111)`: hyper's own message names only the stage.
pub fn unreachable(error: &(dyn std::error::Error + 'static)) -> String {
    format!("cannot reach the manager: {}", error_chain(error))
}

/// An error's message followed by its sources', each once (a cause whose text its parent already
/// quotes is not repeated).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    /// Scenario: a client request to a port nobody listens on.
    /// Guarantees: the message keeps the cause under hyper's "client error (Connect)": the refused
    /// connection.
    #[tokio::test]
    async fn unreachable_keeps_the_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let link = super::ManagerLink {
            url: format!("http://127.0.0.1:{port}"),
            token_file: "unused".into(),
            ca_file: None,
        };
        let client = link.client::<http_body_util::Empty<bytes::Bytes>>().unwrap();
        let e = client.get(link.url.parse().unwrap()).await.expect_err("a closed port answered");
        let message = super::unreachable(&e);
        assert!(message.starts_with("cannot reach the manager: client error (Connect)"), "{message}");
        assert!(message.contains("refused"), "{message}");
    }
}
