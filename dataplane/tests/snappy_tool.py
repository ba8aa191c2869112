"""Snappy as a backend or a client outside the gateway sees it, for the end-to-end tests.

Uses pysnappy (PyPI): Google's C++ snappy for blocks and its own implementation of the framing
format with CRC-32C checks, so nothing here shares code with the gateway's snappy (the `snap`
crate).

  decode --format raw|framed FILE   checks that FILE is one raw block, or a framed stream whose
                                    chunks hold at most 64 KiB each (as golang/snappy writes them),
                                    decodes the OTLP request in it and prints
                                    {"spans": [hex span ids], "chunks": N}
  encode --format raw|framed --count N FILE
                                    writes an OTLP request of N spans compressed that way to FILE and
                                    prints {"spans": [hex span ids]}
"""

import argparse
import json
import os
import struct
import sys

import pysnappy.core
import pysnappy.framing
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"
# The framing format's limit on the uncompressed data of one chunk.
MAX_CHUNK_BYTES = 65536


def check_chunks(data):
    """Walks a framed stream's chunks; returns how many data chunks it has."""
    pos, count = len(STREAM_IDENTIFIER), 0
    while pos < len(data):
        (header,) = struct.unpack_from("<L", data, pos)
        kind, size = header & 0xFF, header >> 8
        body = data[pos + 4 + 4 : pos + 4 + size]
        if kind == 0x00:
            assert len(pysnappy.core.uncompress(body)) <= MAX_CHUNK_BYTES, "compressed chunk too large"
            count += 1
        elif kind == 0x01:
            assert len(body) <= MAX_CHUNK_BYTES, "uncompressed chunk too large"
            count += 1
        else:
            raise AssertionError(f"unexpected chunk type {kind:#x}")
        pos += 4 + size
    assert pos == len(data), "truncated chunk"
    return count


def decode(fmt, path):
    with open(path, "rb") as f:
        data = f.read()
    framed = data.startswith(STREAM_IDENTIFIER)
    if fmt == "raw":
        assert not framed, "a raw block was expected, the body is framed"
        plain, chunks = pysnappy.core.uncompress(data), 1
    else:
        assert framed, "a framed stream was expected, the body has no stream identifier"
        decompressor = pysnappy.framing.Decompressor()
        plain = decompressor.decompress(data)
        decompressor.flush()
        chunks = check_chunks(data)
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(plain)
    spans = [
        span.span_id.hex()
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    print(json.dumps({"spans": spans, "chunks": chunks}))


def encode(fmt, count, path):
    spans = []
    for i in range(count):
        spans.append(
            trace_pb2.Span(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                name=f"snappy-client-{i}",
                kind=trace_pb2.Span.SPAN_KIND_SERVER,
                start_time_unix_nano=1_700_000_000_000_000_000 + i,
                end_time_unix_nano=1_700_000_000_000_001_000 + i,
                attributes=[
                    common_pb2.KeyValue(key="payload", value=common_pb2.AnyValue(string_value="x" * 200))
                ],
            )
        )
    resource = resource_pb2.Resource(
        attributes=[common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="snappy-client"))]
    )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]
    )
    plain = request.SerializeToString()
    if fmt == "raw":
        data = pysnappy.core.compress(plain)
    else:
        data = pysnappy.framing.Compressor().add_chunk(plain)
        assert data.startswith(STREAM_IDENTIFIER)
    with open(path, "wb") as f:
        f.write(data)
    print(json.dumps({"spans": [s.span_id.hex() for s in spans]}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode")
    d.add_argument("--format", choices=["raw", "framed"], required=True)
    d.add_argument("file")
    e = sub.add_parser("encode")
    e.add_argument("--format", choices=["raw", "framed"], required=True)
    e.add_argument("--count", type=int, required=True)
    e.add_argument("file")
    args = parser.parse_args()
    if args.command == "decode":
        decode(args.format, args.file)
    else:
        encode(args.format, args.count, args.file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
