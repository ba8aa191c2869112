//! Fuzzes the OTLP/HTTP receiver's JSON path as it runs it: serde's OTLP/JSON into the prost types,
//! protobuf, then the scan. Nothing may panic; the scan's verdict on the encoding must be the
//! Collector's (prost and the id rules); what the JSON held must survive protobuf unchanged.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::testing::{otlp_accepts, flatten};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) else { return };
    let encoded = request.encode_to_vec();
    let scanned = otlp_gateway::wire::scan(Bytes::from(encoded.clone()));
    assert_eq!(scanned.is_ok(), otlp_accepts(&encoded), "{:?}", scanned.as_ref().err());
    if let Ok(scanned) = scanned {
        assert_eq!(scanned.spans, flatten([&request]).len());
    }
    // Compared as encodings: a double may be NaN, which never equals itself.
    let decoded =
        ExportTraceServiceRequest::decode(encoded.as_slice()).expect("prost decodes its own encoding");
    assert_eq!(decoded.encode_to_vec(), encoded);
});
