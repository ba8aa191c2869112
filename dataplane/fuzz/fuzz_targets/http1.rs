//! Fuzzes the OTLP/HTTP receiver as a client reaches it: the gateway's hyper server
//! (`receiver::http::serve`) on 127.0.0.1, fed the input as the bytes of one connection (request
//! line, headers, chunked or sized bodies, compressed bodies, pipelined requests), which the client
//! then closes. The receiver must not panic, and must close the connection within
//! [`EXCHANGE_TIMEOUT`] of the client's end: a request it cannot finish is answered or dropped,
//! never held open.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use otlp_gateway_fuzz::{EXCHANGE_TIMEOUT, ScanSink, Served, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fuzz_target!(|data: &[u8]| {
    static SERVED: OnceLock<Served> = OnceLock::new();
    let served = SERVED.get_or_init(|| {
        serve(|listener, receiving, shutdown| {
            otlp_gateway::receiver::http::serve(listener, Arc::new(ScanSink), receiving, shutdown)
        })
    });
    served.runtime.block_on(async {
        let mut stream = TcpStream::connect(served.addr).await.expect("the receiver listens");
        // The receiver may answer and close before reading everything: a failed write is no finding.
        let _ = stream.write_all(data).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(EXCHANGE_TIMEOUT, stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the connection is still open {EXCHANGE_TIMEOUT:?} after the client's end");
    });
});
