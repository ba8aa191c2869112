"""Sends spans to an OTLP endpoint with the OpenTelemetry Python SDK and prints what it sent.

Used by the end-to-end tests: each sent span is printed as one JSON line, so the test can check that
the backend behind the gateway received exactly these spans, unchanged. Exits non-zero when the SDK
reports that an export failed.
"""

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode


class Recording:
    """Wraps an exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.failed = False

    def export(self, spans):
        result = self.inner.export(spans)
        if result != SpanExportResult.SUCCESS:
            self.failed = True
        return result

    def shutdown(self):
        return self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True, help="host:port of the gateway")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--service", default="e2e-python")
    parser.add_argument("--compression", choices=["none", "gzip"], default="gzip")
    parser.add_argument("--resource-attr", action="append", default=[], help="KEY=VALUE, repeatable")
    args = parser.parse_args()

    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from grpc import Compression

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        exporter = OTLPSpanExporter(endpoint=f"http://{args.endpoint}", insecure=True, compression=compression)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.http import Compression

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        exporter = OTLPSpanExporter(endpoint=f"http://{args.endpoint}/v1/traces", compression=compression)

    recording = Recording(exporter)
    attributes = {"service.name": args.service, "e2e.protocol": args.protocol}
    attributes.update(kv.split("=", 1) for kv in args.resource_attr)
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(recording, max_export_batch_size=50))
    tracer = provider.get_tracer("e2e", "1.0.0")

    sent = []
    for i in range(args.count):
        with tracer.start_as_current_span(f"operation-{i}", kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("e2e.index", i)
            span.set_attribute("e2e.text", f"value-{i} ünïcødé")
            span.set_attribute("e2e.ratio", i / 7)
            span.set_attribute("e2e.flag", i % 2 == 0)
            span.set_attribute("e2e.list", [f"a{i}", "b"])
            span.add_event("checkpoint", {"step": i})
            if i % 3 == 0:
                span.set_status(Status(StatusCode.ERROR, "boom"))
        sent.append(span)

    ok = provider.force_flush(30000)
    provider.shutdown()
    for span in sent:
        ctx = span.get_span_context()
        print(json.dumps({
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "name": span.name,
            "kind": span.kind.value + 1,
            "start": span.start_time,
            "end": span.end_time,
            "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in span.attributes.items()},
            "events": [e.name for e in span.events],
            "status": span.status.status_code.value,
            "service": args.service,
        }))
    if not ok or recording.failed:
        print("export failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
