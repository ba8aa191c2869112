#!/bin/sh
# Instructions per span of the whole gateway process (HTTP/2, runtime, export included), counted by
# callgrind while `loadtest run single` sends at a low paced rate, so that each request is handled
# on its own as at any rate below saturation. An idle run of the same length is subtracted (start-up:
# loading the TLS roots, the config). Repeated runs agree within 0.5 %. Needs valgrind.
# Usage: benches/gateway-instructions.sh [gateway binary]   (default: the release build, with ISA-L)
#        SCENARIO=ottl benches/gateway-instructions.sh …       (another `loadtest run` scenario; default single)
#        FEATURES= benches/gateway-instructions.sh            (the default build: gzip level 1 by libdeflate)
#        LOADTEST_ARGS=--random-values SCENARIO=gzip …       (more flags for `loadtest run`)
#        RATE=1000 SCENARIO=kyma …                           (another paced rate, spans/s; default 5000)
set -eu
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
features=${FEATURES-isal}
cargo build --quiet --release -p otlp-gateway -p loadtest ${features:+--features "otlp-gateway/$features"}
gateway=$(realpath "${1:-$target/release/otlp-gateway}")
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "profiles kept in $work" || trap 'rm -rf "$work"' EXIT
# loadtest stops its forwarder with SIGKILL, which valgrind cannot catch: the wrapper runs the gateway
# in the background, and this script ends it with SIGTERM (a clean exit writes the profile).
cat > "$work/wrapper" <<EOF
#!/bin/sh
valgrind --tool=callgrind --callgrind-out-file="$work/\$RUN.out" "$gateway" "\$@" 2>/dev/null &
echo \$! > "$work/\$RUN.pid"
wait
EOF
chmod +x "$work/wrapper"
measure() { # name rate
    # shellcheck disable=SC2086 # LOADTEST_ARGS is split into flags on purpose
    RUN=$1 "$target/release/loadtest" run "${SCENARIO:-single}" --rate "$2" --duration 14s ${LOADTEST_ARGS:-} --gateway-bin "$work/wrapper" \
        > "$work/$1.txt" 2>&1 || { cat "$work/$1.txt" >&2; exit 1; }
    kill -TERM "$(cat "$work/$1.pid")"
    while kill -0 "$(cat "$work/$1.pid")" 2>/dev/null; do sleep 1; done
}
measure idle 1
measure loaded "${RATE:-5000}"
spans=$(awk '/^delivered_unique_spans/ { print $2 }' "$work/loaded.txt")
idle=$(awk '/^sent_spans/ { print $2 }' "$work/idle.txt")
total() { callgrind_annotate "$work/$1.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
idle_total=$(total idle)
# From the work directory: run from the repository, callgrind_annotate merges some lines by source file.
(cd "$work" && callgrind_annotate --inclusive=yes loaded.out 2>/dev/null) | awk -v spans="$spans" -v idle_spans="$idle" \
    -v idle_total="$idle_total" '
    function per_span(n) { gsub(",", "", n); return n / spans }
    /PROGRAM TOTALS/ { loaded = $1; gsub(",", "", loaded) }
    # The first (inclusive) line of each function of interest.
    /:otlp_gateway::receiver::Ingest::accept \[/ && !accept { accept = per_span($1) }
    /:otlp_gateway::wire::scan \[/ && !scan { scan = per_span($1) }
    /:otlp_gateway::pipeline::Worker::start_export::\{\{closure\}\} \[/ && !export { export = per_span($1) }
    /:__memcpy_avx_unaligned_erms \[/ && !memcpy { memcpy = per_span($1) }
    END {
        printf "spans %d (idle run: %d)\n", spans, idle_spans
        printf "%-58s %6.0f\n", "gateway instructions per span", (loaded - idle_total) / (spans - idle_spans)
        printf "%-58s %6.0f\n", "  receive: scan, enrich, filter, queue (Ingest::accept)", accept
        printf "%-58s %6.0f\n", "    of which the scan", scan
        printf "%-58s %6.0f\n", "  export (batch framing, HTTP/2 to the backend)", export
        printf "%-58s %6.0f\n", "  memcpy (callgrind counts rep movsb once per byte)", memcpy
    }'
