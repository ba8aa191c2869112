#!/usr/bin/env bash
# One command: build, start a local OTLP backend (the load-test sink), start otlp-gateway on the example
# pipelines, send spans with the load generator, and show what arrived.
#
# Everything binds 127.0.0.1 on ports the system picks, so a Collector (or anything else) already on
# 4317, 4318 or 8888 is no obstacle; the addresses in use are printed. Each process is checked to be up
# before it is used, and whatever this script started is stopped when it ends: on success, on failure,
# on Ctrl-C or SIGTERM. Its files (logs, received spans) are in a temporary directory it names; they
# are removed on success unless QUICKSTART_KEEP=1, and kept on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "quickstart: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

for tool in cargo curl; do
  command -v "$tool" >/dev/null || fail "needs $tool on the PATH"
done

# The gateway is built with ISA-L for gzip at its default level 1 (the `isal` feature), as the image
# is and as PERF.md measures; isal-sys compiles ISA-L from source with nasm and autotools. Missing
# tools are named and installed with apt-get where that is possible; where it is not, the gateway is
# built without ISA-L (gzip level 1 by libdeflate), which works the same but spends more CPU per
# span on gzip exports than PERF.md's figures, and the script says so.
features=(--features otlp-gateway/isal)
missing=()
command -v nasm >/dev/null || missing+=(nasm)
command -v autoreconf >/dev/null || missing+=(autoconf)
command -v aclocal >/dev/null || missing+=(automake)
command -v libtoolize >/dev/null || missing+=(libtool)
if ((${#missing[@]})); then
  say "the gateway's gzip (ISA-L) is compiled from source and needs: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && [ -t 0 ]; then sudo=(sudo); fi
  installed=""
  if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || ((${#sudo[@]})); }; then
    say "installing them: ${sudo[*]} apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
      || { "${sudo[@]}" apt-get update >/dev/null \
        && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }; then
      installed=yes
    fi
  fi
  if [ -z "$installed" ]; then
    features=()
    say "NOTE: building without ISA-L: gzip level 1 uses libdeflate, which costs more CPU per span with"
    say "gzip export than PERF.md's figures (PERF.md, \"ISA-L as a build option\"). For those, install"
    say "them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again."
  fi
fi

# QUICKSTART_PROFILE=dev builds without optimisation (CI does, reusing its test build); the
# default is the release build whose speed PERF.md reports.
profile=${QUICKSTART_PROFILE:-release}
say "building otlp-gateway and loadtest ($profile${features:+, with ISA-L})"
cargo build --profile "$profile" -p otlp-gateway -p loadtest "${features[@]}"
target=${CARGO_TARGET_DIR:-target}
if [ "$profile" = dev ]; then bin=$target/debug; else bin=$target/$profile; fi
for b in otlp-gateway loadtest; do [ -x "$bin/$b" ] || fail "no $bin/$b after the build"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/otlp-quickstart.XXXXXX")
say "files (logs, received spans): $work"
sink="" gw=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in $gw $sink; do kill "$pid" 2>/dev/null || true; done
  for pid in $gw $sink; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$gw$sink" ]; then say "stopped what it started (pids $gw $sink)"; fi
  if [ "$status" -eq 0 ] && [ -z "${QUICKSTART_KEEP:-}" ]; then
    rm -rf "$work"
    say "removed $work (QUICKSTART_KEEP=1 keeps it)"
  else
    say "kept $work: gateway.log, sink.log, received.jsonl"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for WHAT PID LOG SECONDS COMMAND...: until COMMAND succeeds; fails naming WHAT (with the end of
# its LOG) if the process PID exits first or SECONDS pass.
wait_for() {
  local what=$1 pid=$2 log=$3 seconds=$4
  shift 4
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$what exited; the end of $log:"
      tail -n 20 "$log" >&2 || true
      fail "$what did not start"
    fi
    if ((SECONDS >= deadline)); then
      say "the end of $log:"
      tail -n 20 "$log" >&2 || true
      fail "$what was not up after ${seconds}s"
    fi
    sleep 0.1
  done
}

# field NAME FILE: the value of "NAME":"..." (JSON) or NAME=... (a text log line) in FILE.
field() {
  sed -n -e "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" -e "s/.* $1=\\([^ ]*\\).*/\\1/p" "$2" | head -n 1
}
number() { sed -n "s/.*\"$1\":\\([0-9]*\\).*/\\1/p" <<<"$2" | head -n 1; }

# The backend: the load test's verifying sink, on ports of its own; it prints them once it listens.
"$bin/loadtest" sink --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --stats-addr 127.0.0.1:0 \
  --dump "$work/received.jsonl" --max-runtime 10m >"$work/sink.addr" 2>"$work/sink.log" &
sink=$!
wait_for "the backend (loadtest sink, pid $sink)" "$sink" "$work/sink.log" 30 grep -q '"stats"' "$work/sink.addr"
sink_grpc=$(field grpc "$work/sink.addr")
sink_http=$(field http "$work/sink.addr")
sink_stats=$(field stats "$work/sink.addr")
curl -sf "http://$sink_stats/stats" >/dev/null || fail "the backend does not answer on $sink_stats"
say "backend pid $sink: OTLP/gRPC $sink_grpc, OTLP/HTTP $sink_http, stats http://$sink_stats/stats"

# The example pipelines, pointed at this backend's ports.
sed -e "s#127.0.0.1:24317#$sink_grpc#g" -e "s#127.0.0.1:24318#$sink_http#g" \
  deploy/examples/local-pipelines.yaml >"$work/pipelines.yaml"
grep -q "$sink_grpc" "$work/pipelines.yaml" && grep -q "$sink_http" "$work/pipelines.yaml" \
  || fail "deploy/examples/local-pipelines.yaml no longer sends to 127.0.0.1:24317 and :24318"

NO_COLOR=1 "$bin/otlp-gateway" --pipelines "$work/pipelines.yaml" \
  --pods deploy/examples/local-pods.yaml --node-name node-1 --cluster-name quickstart \
  --otlp-grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 \
  --health-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --batch-timeout 1s 2>"$work/gateway.log" &
gw=$!
wait_for "otlp-gateway (pid $gw)" "$gw" "$work/gateway.log" 30 grep -q "otlp-gateway started" "$work/gateway.log"
gw_grpc=$(field otlp_grpc_addr "$work/gateway.log")
gw_http=$(field otlp_http_addr "$work/gateway.log")
gw_health=$(field health_addr "$work/gateway.log")
gw_metrics=$(field metrics_addr "$work/gateway.log")
wait_for "otlp-gateway (pid $gw)" "$gw" "$work/gateway.log" 30 curl -sf -o /dev/null "http://$gw_health/readyz"
say "gateway pid $gw: OTLP/gRPC $gw_grpc, OTLP/HTTP $gw_http, health http://$gw_health, metrics http://$gw_metrics/metrics"

echo "== pipelines"
curl -sf "http://$gw_health/status"
echo
echo "== sending 10,000 spans over OTLP/gRPC and 5,000 over OTLP/HTTP"
"$bin/loadtest" generate --endpoint "$gw_grpc" --total-spans 10000 --rate 20000 --duration 10s --sources 3
"$bin/loadtest" generate --protocol http --endpoint "$gw_http" --total-spans 5000 --rate 20000 --duration 10s \
  --first-seq 1000000

# Each span once per pipeline: 30,000 spans, 15,000 of them distinct.
deadline=$((SECONDS + 30))
while :; do
  stats=$(curl -sf "http://$sink_stats/stats") || fail "the backend stopped answering"
  spans=$(number spans "$stats")
  if [ "${spans:-0}" -ge 30000 ] || ((SECONDS >= deadline)); then break; fi
  sleep 0.2
done
echo "== backend received (each span once per pipeline: 30,000 spans, 15,000 unique)"
echo "$stats"
unique=$(number unique_spans "$stats")
[ "$spans" -eq 30000 ] && [ "$unique" -eq 15000 ] \
  || fail "the backend received $spans spans ($unique unique), not 30,000 (15,000 unique); see $work/gateway.log"
echo "== gateway metrics"
curl -sf "http://$gw_metrics/metrics" | grep -E '^otelcol_(receiver_accepted|exporter_sent)_spans_total'
echo "== the resource of one received request (enriched from the pod at 127.0.0.2-4 that sent it)"
head -n 1 "$work/received.jsonl" \
  | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps(r["resourceSpans"][0]["resource"], indent=1))' 2>/dev/null \
  || head -c 1500 "$work/received.jsonl"
echo
say "OK: every span reached the backend once per pipeline"
