//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` on tonic's server, with a
//! codec that hands over the request message as `Bytes` (split off tonic's receive buffer, not copied)
//! instead of decoding it. tonic enforces the size limit while it decompresses gzip and zstd.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderValue;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::body::Body;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{ExportFuture, ExportSink, IngestError, RETRY_AFTER, Transport};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// gRPC status codes, as the header carries them.
const GRPC_OUT_OF_RANGE: &str = "11";
const GRPC_RESOURCE_EXHAUSTED: &str = "8";

/// The `TraceService` as a tower service for tonic's server.
#[derive(Debug)]
pub struct TraceService<S> {
    sink: Arc<S>,
    max_request_bytes: usize,
}

/// Requests arrive as raw bytes; responses are prost messages.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
struct RawDecoder;

#[derive(Clone, Copy, Debug, Default)]
struct ResponseEncoder;

/// The unary handler tonic calls once the message is read.
#[derive(Debug)]
struct ExportHandler<S>(Arc<S>);

// === impl RawCodec ===

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

// === impl ExportHandler ===

impl<S: ExportSink> tower_service::Service<tonic::Request<Bytes>> for ExportHandler<S> {
    type Response = tonic::Response<ExportTraceServiceResponse>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let peer = request.remote_addr().map(|a| a.ip());
        let body = request.into_inner();
        let answer: ExportFuture = self.0.export(Transport::Grpc, body, peer);
        Box::pin(async move {
            match answer.await {
                Ok(()) => Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None })),
                Err(IngestError::Invalid(e)) => Err(Status::invalid_argument(e.to_string())),
                Err(IngestError::Unavailable(why)) => Err(Status::with_error_details(
                    Code::Unavailable,
                    why,
                    ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
                )),
                Err(IngestError::Throttled(why, delay)) => Err(Status::with_error_details(
                    Code::Unavailable,
                    why,
                    ErrorDetails::with_retry_info(Some(delay)),
                )),
            }
        })
    }
}

// === impl TraceService ===

impl<S> TraceService<S> {
    /// A service feeding `sink`, refusing messages larger than `max_request_bytes` after
    /// decompression.
    pub fn new(sink: Arc<S>, max_request_bytes: usize) -> Self {
        Self { sink, max_request_bytes }
    }
}

impl<S> Clone for TraceService<S> {
    fn clone(&self) -> Self {
        Self { sink: Arc::clone(&self.sink), max_request_bytes: self.max_request_bytes }
    }
}

impl<S> NamedService for TraceService<S> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<S: ExportSink, B> tower_service::Service<http::Request<B>> for TraceService<S>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let handler = ExportHandler(Arc::clone(&self.sink));
        let limit = self.max_request_bytes;
        Box::pin(async move {
            let mut encodings = EnabledCompressionEncodings::default();
            encodings.enable(CompressionEncoding::Gzip);
            encodings.enable(CompressionEncoding::Zstd);
            // Responses are a few bytes: compressing them would only cost a compressor's set-up.
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_compression_config(encodings, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(limit), None);
            let mut response = grpc.unary(handler, request).await;
            // tonic answers OUT_OF_RANGE for an uncompressed message over the limit; OTLP says
            // RESOURCE_EXHAUSTED (not retryable), as tonic already answers for compressed ones.
            let headers = response.headers_mut();
            if headers.get("grpc-status").is_some_and(|s| s == GRPC_OUT_OF_RANGE) {
                headers.insert("grpc-status", HeaderValue::from_static(GRPC_RESOURCE_EXHAUSTED));
            }
            Ok(response)
        })
    }
}
