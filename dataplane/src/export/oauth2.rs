//! OAuth2 client credentials, as Kyma configures the Collector's `oauth2client` extension (contrib's
//! `oauth2clientauthextension` over golang.org/x/oauth2's `clientcredentials`), with the defaults
//! Kyma leaves in force:
//!
//! - the token request is a form POST of `grant_type=client_credentials`, `scope` (the scopes joined
//!   by one space, when there are any) and Kyma's `params`, which may override `grant_type` but no
//!   other field (`oauth2: cannot overwrite parameter "scope"`);
//! - the client authenticates with HTTP Basic (id and secret query-escaped) first; when that request
//!   fails for any reason it is sent again with `client_id` and `client_secret` in the form, as
//!   x/oauth2's auto-detection does. Like the extension, which builds a new client per token, the
//!   style that worked is not remembered;
//! - the answer is JSON, or a query string when its type is `application/x-www-form-urlencoded` or
//!   `text/plain`; an `error` field or a status outside 2xx is an error, an empty `access_token`
//!   too; `expires_in` of 0 or none means the token never expires; the body is read up to 1 MiB;
//! - the token is cached and used while `now + 5 min < expiry` (the extension's `expiry_buffer`
//!   default), fetched again lazily by the first export after that; one lock is held during a
//!   fetch, so concurrent exports share one token request. A failed fetch caches nothing;
//! - it goes out as `Authorization: <type> <token>`, the type normalised as x/oauth2 does
//!   (`bearer` → `Bearer`, empty → `Bearer`), on gRPC and HTTP alike, replacing a custom
//!   `Authorization` header (the Collector's auth round tripper is innermost);
//! - the token endpoint is reached with the system's roots, not the pipeline's TLS settings.
//!
//! Two differences, both so that a failing token endpoint never loses data by itself: a token
//! request is bounded by the pipeline's export timeout (the extension sets no timeout, so a token
//! endpoint that never answers stalls its exporter), and a token failure is a retryable export
//! error on both protocols (the Collector retries it over HTTP, but over gRPC it becomes
//! `Unauthenticated`, which its exporter drops at once).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize as _;
use tokio::time::Instant;
use tracegw_contract::{OAuth2Config, Sensitive, TlsConfig};

use super::tls;

/// The extension's default `expiry_buffer`: a token is renewed this long before it expires.
pub const DEFAULT_EXPIRY_BUFFER: Duration = Duration::from_secs(5 * 60);
/// x/oauth2 reads at most this much of a token response.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of an error response is quoted in a message.
const MAX_QUOTED_BODY_CHARS: usize = 256;
const FORM: &str = "application/x-www-form-urlencoded";

/// Why no token could be had. Every kind is worth retrying: a token endpoint that is down, slow or
/// refusing now may answer later (or after a Secret rotation), so the export is retried with the
/// pipeline's backoff.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `params` tries to replace a field the request sets itself.
    #[error("oauth2: cannot overwrite parameter \"{0}\"")]
    Parameter(String),
    /// The token URL is not a usable URI.
    #[error("oauth2: invalid token URL: {0}")]
    Url(String),
    /// No answer: connection, TLS or reading failed.
    #[error("oauth2: cannot reach the token endpoint: {0}")]
    Transport(String),
    /// No answer within the time allowed.
    #[error("oauth2: no answer from the token endpoint within {0:?}")]
    Timeout(Duration),
    /// A status outside 2xx without an OAuth2 error code.
    #[error("oauth2: cannot fetch token: {status}\nResponse: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// An OAuth2 error response (`error`, `error_description`).
    #[error("oauth2: \"{code}\" \"{description}\"")]
    Refused {
        /// `error`.
        code: String,
        /// `error_description`.
        description: String,
    },
    /// The answer does not parse.
    #[error("oauth2: cannot parse the token response: {0}")]
    Malformed(String),
    /// The answer has no `access_token`.
    #[error("oauth2: server response missing access_token")]
    MissingToken,
}

/// A token, ready to send.
#[derive(Clone, Debug)]
pub struct Token {
    /// `Authorization` value, marked sensitive.
    authorization: HeaderValue,
    /// When it expires; `None` never.
    expiry: Option<Instant>,
}

/// Gets a new token. The HTTP token endpoint is one; tests use others.
pub trait Fetch: Send + Sync + 'static {
    /// One token request (with its fallback).
    fn fetch(&self) -> impl Future<Output = Result<Token, TokenError>> + Send;
}

/// Counts token requests and names the pipeline in logs.
#[derive(Clone, Debug, Default)]
pub struct TokenObserver {
    /// `exporter` label of the pipeline.
    pub exporter_id: String,
    /// Tokens fetched.
    pub fetched: Counter,
    /// Token requests that failed.
    pub failed: Counter,
}

/// A pipeline's token: cached, renewed before it expires, shared by its concurrent exports.
#[derive(Debug)]
pub struct TokenSource<F = HttpFetch> {
    fetcher: F,
    cached: tokio::sync::Mutex<Option<Token>>,
    expiry_buffer: Duration,
    /// Where tokens come from, for messages (not secret).
    token_url: String,
    observer: TokenObserver,
}

/// Token requests over HTTP(S) to the token endpoint.
#[derive(Debug)]
pub struct HttpFetch {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    client_id: Sensitive,
    client_secret: Sensitive,
    /// The form fields besides the client's credentials, or why there are none.
    form: Result<BTreeMap<String, String>, String>,
    timeout: Duration,
}

/// The fields of a token response x/oauth2 reads.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: u64,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

// === impl Token ===

impl Token {
    /// A token of `token_type` (normalised as x/oauth2 does) that expires `expires_in` from now,
    /// or never when that is zero.
    pub fn new(token_type: &str, access_token: &str, expires_in: Duration) -> Result<Self, TokenError> {
        let kind = match token_type {
            "" => "Bearer",
            t if t.eq_ignore_ascii_case("bearer") => "Bearer",
            t if t.eq_ignore_ascii_case("mac") => "MAC",
            t if t.eq_ignore_ascii_case("basic") => "Basic",
            other => other,
        };
        let mut authorization = HeaderValue::from_str(&format!("{kind} {access_token}"))
            .map_err(|_| TokenError::Malformed("the token is not a valid header value".into()))?;
        authorization.set_sensitive(true);
        let expiry = (!expires_in.is_zero()).then(|| Instant::now() + expires_in);
        Ok(Self { authorization, expiry })
    }

    /// Whether it may still be sent at `now`: `buffer` before its expiry at the latest.
    fn usable_at(&self, now: Instant, buffer: Duration) -> bool {
        self.expiry.is_none_or(|expiry| now + buffer < expiry)
    }
}

// === impl TokenSource ===

impl TokenSource<HttpFetch> {
    /// The pipeline's token source; token requests time out after `timeout`.
    pub fn http(config: &OAuth2Config, timeout: Duration) -> Result<Self, TokenError> {
        Ok(Self::new(HttpFetch::new(config, timeout)?, config.token_url.clone(), DEFAULT_EXPIRY_BUFFER))
    }
}

impl<F: Fetch> TokenSource<F> {
    /// Tokens from `fetcher`, renewed `expiry_buffer` before they expire.
    pub fn new(fetcher: F, token_url: String, expiry_buffer: Duration) -> Self {
        Self {
            fetcher,
            cached: tokio::sync::Mutex::new(None),
            expiry_buffer,
            token_url,
            observer: TokenObserver::default(),
        }
    }

    /// Counts and logs as `observer` says.
    pub fn set_observer(&mut self, observer: TokenObserver) {
        self.observer = observer;
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The `Authorization` value for the next request: the cached token while it is usable, else a
    /// new one. Callers that arrive during a fetch wait for it and use its token.
    pub async fn authorization(&self) -> Result<HeaderValue, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.usable_at(Instant::now(), self.expiry_buffer)) {
            return Ok(token.authorization.clone());
        }
        *cached = None;
        match self.fetcher.fetch().await {
            Ok(token) => {
                self.observer.fetched.inc();
                // The token URL may come from a Secret: logs name the exporter, never the URL.
                tracing::debug!(exporter = %self.observer.exporter_id, "OAuth2 token fetched");
                let authorization = token.authorization.clone();
                *cached = Some(token);
                Ok(authorization)
            }
            Err(error) => {
                self.observer.failed.inc();
                tracing::warn!(
                    exporter = %self.observer.exporter_id, error = %error,
                    "cannot get an OAuth2 token; the export will be retried"
                );
                Err(error)
            }
        }
    }
}

// === impl HttpFetch ===

impl HttpFetch {
    fn new(config: &OAuth2Config, timeout: Duration) -> Result<Self, TokenError> {
        let uri: Uri =
            config.token_url.parse().map_err(|e: http::uri::InvalidUri| TokenError::Url(e.to_string()))?;
        let tls = tls::client_config(&TlsConfig::default()).map_err(|e| TokenError::Url(e.to_string()))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            uri,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            form: form(&config.scopes, &config.params),
            timeout,
        })
    }

    /// One request with the client's credentials as HTTP Basic (`basic`) or in the form.
    async fn request(&self, basic: bool) -> Result<Token, TokenError> {
        let mut form = self.form.clone().map_err(TokenError::Parameter)?;
        let mut request = Request::builder().method(Method::POST).uri(self.uri.clone());
        if basic {
            let pair = format!(
                "{}:{}",
                query_escape(self.client_id.expose()),
                query_escape(self.client_secret.expose())
            );
            let mut value = HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
            .map_err(|_| TokenError::Malformed("credentials are not a valid header value".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        } else {
            form.insert("client_id".into(), self.client_id.expose().to_string());
            if !self.client_secret.expose().is_empty() {
                form.insert("client_secret".into(), self.client_secret.expose().to_string());
            }
        }
        let request = request
            .header(CONTENT_TYPE, FORM)
            .body(Full::new(Bytes::from(encode_form(&form))))
            .map_err(|e| TokenError::Url(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| TokenError::Transport(super::error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_TOKEN_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| TokenError::Transport(format!("reading the token response failed: {e}")))?
                .to_bytes();
            Ok::<_, TokenError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| TokenError::Timeout(self.timeout))??;
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let parsed = parse_response(content_type, &body);
        if !parts.status.is_success() {
            return Err(match parsed {
                Ok(r) if !r.error.is_empty() => {
                    TokenError::Refused { code: r.error, description: r.error_description }
                }
                _ => TokenError::Status { status: parts.status, body: self.quote(&body) },
            });
        }
        let response = parsed?;
        if !response.error.is_empty() {
            return Err(TokenError::Refused {
                code: response.error,
                description: response.error_description,
            });
        }
        if response.access_token.is_empty() {
            return Err(TokenError::MissingToken);
        }
        Token::new(&response.token_type, &response.access_token, Duration::from_secs(response.expires_in))
    }

    /// The start of a response body for a message, with the client's credentials blanked out in case
    /// the endpoint echoes them.
    fn quote(&self, body: &[u8]) -> String {
        let mut text: String = String::from_utf8_lossy(body).chars().take(MAX_QUOTED_BODY_CHARS).collect();
        for secret in [self.client_secret.expose(), self.client_id.expose()] {
            if !secret.is_empty() {
                text = text.replace(secret, "<redacted>");
            }
        }
        text
    }
}

impl Fetch for HttpFetch {
    /// HTTP Basic first; on any failure once more with the credentials in the form.
    async fn fetch(&self) -> Result<Token, TokenError> {
        match self.request(true).await {
            Ok(token) => Ok(token),
            Err(TokenError::Parameter(p)) => Err(TokenError::Parameter(p)),
            Err(_) => self.request(false).await,
        }
    }
}

// === free functions ===

/// The form fields of the token request besides the client's credentials, as `clientcredentials`
/// builds them; the field `params` may not replace, if any.
fn form(scopes: &[String], params: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut form = BTreeMap::from([("grant_type".to_string(), "client_credentials".to_string())]);
    if !scopes.is_empty() {
        form.insert("scope".into(), scopes.join(" "));
    }
    for (key, value) in params {
        if form.contains_key(key) && key != "grant_type" {
            return Err(key.clone());
        }
        form.insert(key.clone(), value.clone());
    }
    Ok(form)
}

/// `application/x-www-form-urlencoded`, keys sorted, as Go's `url.Values.Encode` writes it.
fn encode_form(form: &BTreeMap<String, String>) -> String {
    form.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect::<Vec<_>>().join("&")
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`, the rest `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A token response in the format its content type says.
fn parse_response(content_type: &str, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media == FORM || media == "text/plain" {
        let mut response = TokenResponse::default();
        for pair in String::from_utf8_lossy(body).split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = query_unescape(value);
            match query_unescape(key).as_str() {
                "access_token" => response.access_token = value,
                "token_type" => response.token_type = value,
                "expires_in" => response.expires_in = value.parse().unwrap_or(0),
                "error" => response.error = value,
                "error_description" => response.error_description = value,
                _ => {}
            }
        }
        return Ok(response);
    }
    serde_json::from_slice(body).map_err(|e| TokenError::Malformed(e.to_string()))
}

/// Go's `url.QueryUnescape`, lenient: `+` is a space, `%XX` a byte, anything else as it is.
fn query_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `expires_in` as a JSON number or a string holding one, as x/oauth2 accepts it.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Seconds>::deserialize(d)? {
        Some(Seconds::Number(n)) if n > 0.0 => n as u64,
        Some(Seconds::Text(t)) => t.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A token endpoint in memory: each fetch takes `delay`, fails while `failures` lasts, and
    /// otherwise returns token number N valid for `expires_in`.
    struct Fake {
        fetches: AtomicUsize,
        failures: AtomicUsize,
        delay: Duration,
        expires_in: Duration,
    }

    impl Fake {
        fn new(expires_in: Duration) -> Self {
            Self {
                fetches: AtomicUsize::new(0),
                failures: AtomicUsize::new(0),
                delay: Duration::ZERO,
                expires_in,
            }
        }
    }

    impl Fetch for Arc<Fake> {
        async fn fetch(&self) -> Result<Token, TokenError> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(TokenError::Status {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: String::new(),
                });
            }
            Token::new("bearer", &format!("token-{n}"), self.expires_in)
        }
    }

    fn source(fake: &Arc<Fake>) -> TokenSource<Arc<Fake>> {
        TokenSource::new(Arc::clone(fake), "http://token.example/token".into(), DEFAULT_EXPIRY_BUFFER)
    }

    async fn value(source: &TokenSource<Arc<Fake>>) -> String {
        source.authorization().await.unwrap().to_str().unwrap().to_string()
    }

    /// Scenario: tokens valid for an hour, used as the clock advances (tokio's paused clock).
    /// Guarantees: one token serves every request until 5 minutes (the Collector's expiry buffer)
    /// before it expires; the first request after that fetches the next one.
    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_the_expiry_buffer() {
        let fake = Arc::new(Fake::new(Duration::from_secs(3600)));
        let source = source(&fake);
        assert_eq!(value(&source).await, "Bearer token-1");
        tokio::time::advance(Duration::from_secs(3600 - 300 - 1)).await;
        assert_eq!(value(&source).await, "Bearer token-1");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(value(&source).await, "Bearer token-2");
        assert_eq!(value(&source).await, "Bearer token-2");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
    }

    /// Scenario: tokens that live shorter than the expiry buffer (60 s), and tokens without
    /// `expires_in`.
    /// Guarantees: as in the Collector, a short-lived token is fetched again for every request; one
    /// without an expiry is never fetched again.
    #[tokio::test(start_paused = true)]
    async fn short_lived_and_eternal_tokens() {
        let short = Arc::new(Fake::new(Duration::from_secs(60)));
        let source_short = source(&short);
        for _ in 0..3 {
            value(&source_short).await;
        }
        assert_eq!(short.fetches.load(Ordering::SeqCst), 3);
        let eternal = Arc::new(Fake::new(Duration::ZERO));
        let source_eternal = source(&eternal);
        value(&source_eternal).await;
        tokio::time::advance(Duration::from_secs(10 * 365 * 24 * 3600)).await;
        assert_eq!(value(&source_eternal).await, "Bearer token-1");
        assert_eq!(eternal.fetches.load(Ordering::SeqCst), 1);
    }

    /// Scenario: 50 exports ask for a token at once while the token endpoint takes 2 s to answer.
    /// Guarantees: one token request serves all of them.
    #[tokio::test(start_paused = true)]
    async fn concurrent_exports_share_one_token_request() {
        let fake = Arc::new(Fake { delay: Duration::from_secs(2), ..Fake::new(Duration::from_secs(3600)) });
        let source = Arc::new(source(&fake));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let source = Arc::clone(&source);
                tokio::spawn(async move { value(&source).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), "Bearer token-1");
        }
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    }

    /// Scenario: the token endpoint fails twice, then answers.
    /// Guarantees: a failure is not cached (each request tries again) and is counted as a failure;
    /// the token that finally comes is counted and cached.
    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_and_not_cached() {
        let fake = Arc::new(Fake::new(Duration::from_secs(3600)));
        fake.failures.store(2, Ordering::SeqCst);
        let mut source = source(&fake);
        let observer =
            TokenObserver { exporter_id: "otlp_grpc/tracepipeline-a".into(), ..TokenObserver::default() };
        source.set_observer(observer.clone());
        assert!(source.authorization().await.is_err());
        assert!(source.authorization().await.is_err());
        assert_eq!(value(&source).await, "Bearer token-3");
        assert_eq!(value(&source).await, "Bearer token-3");
        assert_eq!((observer.failed.get(), observer.fetched.get()), (2, 1));
    }

    /// Scenario: the form fields for scopes and params, including a `grant_type` override and a
    /// `scope` param beside `scopes`; Go's escaping of credentials and form values.
    /// Guarantees: as `clientcredentials`: scopes joined by one space, params added, `grant_type`
    /// replaceable and nothing else (`cannot overwrite parameter "scope"`); keys sorted and escaped
    /// as `url.Values.Encode` and `url.QueryEscape` write them.
    #[test]
    fn the_token_request_form_is_x_oauth2s() {
        let params = BTreeMap::from([("audience".to_string(), "otlp".to_string())]);
        let scopes = ["traces.write".to_string(), "read all".to_string()];
        let f = form(&scopes, &params).unwrap();
        assert_eq!(
            encode_form(&f),
            "audience=otlp&grant_type=client_credentials&scope=traces.write+read+all"
        );
        let override_grant = BTreeMap::from([("grant_type".to_string(), "urn:x".to_string())]);
        assert_eq!(form(&[], &override_grant).unwrap()["grant_type"], "urn:x");
        let clash = BTreeMap::from([("scope".to_string(), "x".to_string())]);
        assert_eq!(form(&scopes, &clash), Err("scope".to_string()));
        assert!(form(&[], &clash).is_ok());
        assert_eq!(query_escape("a b~c*d/é"), "a+b~c%2Ad%2F%C3%A9");
        assert_eq!(query_unescape("a+b%7Ec%2a%zz"), "a b~c*%zz");
    }

    /// Scenario: token responses as JSON (number and string `expires_in`), as a form, with an
    /// OAuth2 error, without a token, and token types in several spellings.
    /// Guarantees: each is read as x/oauth2 reads it; the header is `<Type> <token>` with the type
    /// normalised (`bearer` → `Bearer`, empty → `Bearer`, others verbatim).
    #[test]
    fn token_responses_are_read_as_x_oauth2_reads_them() {
        let json = parse_response(
            "application/json",
            br#"{"access_token":"a","token_type":"bearer","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!((json.access_token.as_str(), json.expires_in), ("a", 60));
        let json = parse_response("", br#"{"access_token":"a","expires_in":3600.0}"#).unwrap();
        assert_eq!(json.expires_in, 3600);
        let form =
            parse_response("text/plain; charset=utf-8", b"access_token=x%2By&token_type=mac&expires_in=5")
                .unwrap();
        assert_eq!(
            (form.access_token.as_str(), form.token_type.as_str(), form.expires_in),
            ("x+y", "mac", 5)
        );
        let refused = parse_response(FORM, b"error=invalid_client&error_description=bad+secret").unwrap();
        assert_eq!(
            (refused.error.as_str(), refused.error_description.as_str()),
            ("invalid_client", "bad secret")
        );
        assert!(matches!(parse_response("application/json", b"<html>"), Err(TokenError::Malformed(_))));
        for (kind, want) in [
            ("bearer", "Bearer t"),
            ("", "Bearer t"),
            ("MAC", "MAC t"),
            ("basic", "Basic t"),
            ("DPoP", "DPoP t"),
        ] {
            let token = Token::new(kind, "t", Duration::ZERO).unwrap();
            assert_eq!(token.authorization, want);
            assert!(token.authorization.is_sensitive());
        }
        let error = TokenError::Refused { code: "invalid_client".into(), description: "bad".into() };
        assert_eq!(error.to_string(), "oauth2: \"invalid_client\" \"bad\"");
    }
}
