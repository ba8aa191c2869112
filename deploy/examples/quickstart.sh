#!/usr/bin/env bash
# One command: build, start a local OTLP backend (the load-test sink), start otlp-gateway on the example
# pipelines, send spans with the load generator, and show what arrived. Everything binds 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p otlp-gateway -p loadtest
bin=target/release
work=$(mktemp -d)
cleanup() { kill "${gw:-}" "${sink:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

"$bin/loadtest" sink --grpc-addr 127.0.0.1:24317 --http-addr 127.0.0.1:24318 --stats-addr 127.0.0.1:24319 \
  --dump "$work/received.jsonl" --max-runtime 5m > "$work/sink.addr" 2> "$work/sink.log" &
sink=$!
"$bin/otlp-gateway" --pipelines deploy/examples/local-pipelines.yaml \
  --pods deploy/examples/local-pods.yaml --node-name node-1 --cluster-name quickstart \
  --otlp-grpc-addr 127.0.0.1:4317 --otlp-http-addr 127.0.0.1:4318 \
  --health-addr 127.0.0.1:13133 --metrics-addr 127.0.0.1:8888 --batch-timeout 1s 2> "$work/gateway.log" &
gw=$!
for _ in $(seq 50); do curl -sf 127.0.0.1:13133/readyz >/dev/null && break; sleep 0.2; done
echo "== pipelines";   curl -s 127.0.0.1:13133/status; echo
echo "== sending 10,000 spans over OTLP/gRPC and 5,000 over OTLP/HTTP"
"$bin/loadtest" generate --endpoint 127.0.0.1:4317 --total-spans 10000 --rate 20000 --duration 10s --sources 3
"$bin/loadtest" generate --protocol http --endpoint 127.0.0.1:4318 --total-spans 5000 --rate 20000 --duration 10s --first-seq 1000000
sleep 2
echo "== backend received (each span once per pipeline: 30,000 spans, 15,000 unique)"
curl -s 127.0.0.1:24319/stats; echo
echo "== gateway metrics"
curl -s 127.0.0.1:8888/metrics | grep -E '^otelcol_(receiver_accepted|exporter_sent)_spans_total'
echo "== the resource of one received request (enriched from the pod at 127.0.0.2-4 that sent it)"
head -n 1 "$work/received.jsonl" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps(r["resourceSpans"][0]["resource"], indent=1))' 2>/dev/null \
  || head -c 1500 "$work/received.jsonl"; echo
