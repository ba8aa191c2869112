//! What a user can do about an export failure. The transport's own messages (`received corrupt
//! message of type InvalidContentType`, `invalid HTTP version parsed`, `HTTP 404`) say what broke,
//! not that the pipeline's endpoint or protocol is wrong; each advice here names the field to
//! change. Advice is only given where the failure itself shows the cause.

use std::error::Error as StdError;

use http::{HeaderMap, StatusCode};
use tracegw_contract::Protocol;

/// TLS was used and the backend answered in plain text.
pub const PLAIN_TEXT_BACKEND: &str = "the backend answered in plain text, not TLS: an endpoint without a \
     scheme (or with https://) is reached over TLS; write the endpoint as http://host:port, or set \
     spec.output.otlp.tls.insecure: true";
/// An OTLP/HTTP exporter met an HTTP/2-only (gRPC) backend.
pub const GRPC_BACKEND: &str = "the backend speaks OTLP/gRPC (HTTP/2 only, usually port 4317), not \
     OTLP/HTTP: set spec.output.otlp.protocol: grpc, or point the endpoint at the backend's OTLP/HTTP \
     port (usually 4318)";
/// An OTLP/gRPC exporter met a backend that does not serve gRPC.
pub const HTTP_BACKEND: &str = "the endpoint does not serve OTLP/gRPC: if it is an OTLP/HTTP endpoint \
     (usually port 4318), set spec.output.otlp.protocol: http";
/// An OTLP/gRPC exporter's HTTP/2 connection was closed before the request went out, as an
/// HTTP/1.1-only server closes it.
pub const HTTP1_ONLY_BACKEND: &str = "the backend closed the HTTP/2 connection before the request: \
     it may speak HTTP/1.1 only, as OTLP/HTTP backends may (usually port 4318); then set \
     spec.output.otlp.protocol: http";
/// An OTLP/HTTP exporter got 404.
pub const HTTP_NOT_FOUND: &str = "the backend has no OTLP/HTTP endpoint at this URL: check \
     spec.output.otlp.endpoint and spec.output.otlp.path (/v1/traces is appended unless path is \
     set); if it is an OTLP/gRPC endpoint (usually port 4317), set spec.output.otlp.protocol: grpc";

/// Advice for a request that did not get an answer.
pub fn connection_advice(protocol: Protocol, error: &(dyn StdError + 'static)) -> Option<&'static str> {
    if let Some(rustls::Error::InvalidMessage(_)) = find::<rustls::Error>(error) {
        return Some(PLAIN_TEXT_BACKEND);
    }
    let hyper = find::<hyper::Error>(error)?;
    match protocol {
        // An HTTP/2 server answers an HTTP/1.1 request with HTTP/2 frames, which do not parse as a
        // response (`invalid HTTP version parsed`), or arrive before any response
        // (`received unexpected message from connection`).
        // When the server's frames win the race with the request, hyper cancels it with one of those
        // as the cause (`connection was not ready`).
        Protocol::Http
            if hyper.is_parse()
                || ["unexpected message", "connection was not ready"]
                    .iter()
                    .any(|m| chain_text(error).contains(m)) =>
        {
            Some(GRPC_BACKEND)
        }
        // An HTTP/1.1 server answers the HTTP/2 preface with a 400 and closes: the client sees frames
        // that do not parse, a broken pipe, a reset, its connection gone, or (when the close wins the
        // race with the request) the request canceled because the connection closed.
        Protocol::Grpc
            if hyper.is_closed()
                || hyper.is_canceled()
                || hyper.is_parse_version_h2()
                || hyper.to_string() == "http2 error" =>
        {
            Some(HTTP1_ONLY_BACKEND)
        }
        Protocol::Grpc
            if find::<std::io::Error>(error).is_some_and(|io| {
                use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
                matches!(io.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof)
            }) =>
        {
            Some(HTTP1_ONLY_BACKEND)
        }
        _ => None,
    }
}

/// Advice for an answer that is not what the protocol expects.
pub fn answer_advice(protocol: Protocol, status: StatusCode, headers: &HeaderMap) -> Option<&'static str> {
    let grpc_answer = headers.contains_key("grpc-status")
        || headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
    match protocol {
        Protocol::Http if grpc_answer || status == StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(GRPC_BACKEND),
        Protocol::Http if status == StatusCode::NOT_FOUND => Some(HTTP_NOT_FOUND),
        Protocol::Grpc if !grpc_answer => Some(HTTP_BACKEND),
        _ => None,
    }
}

/// The first error of type `T` in `error`'s chain, looking inside `std::io::Error`s too: their
/// `source` skips the error they wrap, which is where TLS errors are (hyper-rustls wraps
/// tokio-rustls' I/O error, which wraps rustls' error, in another I/O error).
/// An error and its sources as one text.
fn chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn find<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: answers a backend of the other protocol gives, and ordinary failures.
    /// Guarantees: a gRPC exporter answered without gRPC (HTTP 404 from an OTLP/HTTP receiver) and
    /// an HTTP exporter answered by gRPC (grpc-status, 415) are told to change
    /// `spec.output.otlp.protocol`; an HTTP 404 also points at `path`; a gRPC error status or an
    /// HTTP 503 gets no advice.
    #[test]
    fn answers_of_the_other_protocol() {
        let mut grpc = HeaderMap::new();
        grpc.insert("content-type", "application/grpc".parse().unwrap());
        let plain = HeaderMap::new();
        assert_eq!(answer_advice(Protocol::Grpc, StatusCode::NOT_FOUND, &plain), Some(HTTP_BACKEND));
        assert_eq!(answer_advice(Protocol::Grpc, StatusCode::OK, &grpc), None);
        assert_eq!(answer_advice(Protocol::Http, StatusCode::OK, &grpc), Some(GRPC_BACKEND));
        assert_eq!(
            answer_advice(Protocol::Http, StatusCode::UNSUPPORTED_MEDIA_TYPE, &plain),
            Some(GRPC_BACKEND)
        );
        assert_eq!(answer_advice(Protocol::Http, StatusCode::NOT_FOUND, &plain), Some(HTTP_NOT_FOUND));
        assert_eq!(answer_advice(Protocol::Http, StatusCode::SERVICE_UNAVAILABLE, &plain), None);
        for advice in [PLAIN_TEXT_BACKEND, GRPC_BACKEND, HTTP_BACKEND, HTTP1_ONLY_BACKEND, HTTP_NOT_FOUND] {
            assert!(advice.contains("spec.output.otlp."), "{advice}");
        }
    }

    /// Scenario: a TLS error wrapped in two I/O errors, as hyper-rustls hands it on, and an I/O
    /// error that is not about TLS.
    /// Guarantees: the TLS error is found inside the I/O error and advises plain text; the other
    /// gets no advice.
    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let tls = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        ));
        assert_eq!(connection_advice(Protocol::Grpc, &tls), Some(PLAIN_TEXT_BACKEND));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(connection_advice(Protocol::Http, &refused), None);
    }
}
