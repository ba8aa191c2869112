#!/bin/sh
# Builds otlp-gateway with profile-guided optimisation: an instrumented build serves about 40 s of the
# load test's scenarios (gRPC and HTTP, paced and as fast as possible, gzip, enrichment with a
# 10,000-pod index, three pipelines), and the final build lays out and inlines the code by what that
# run executed. The gateway's cost per span at moderate load is mostly instruction-cache and branch
# misses after each wake-up (the cores are shared with the applications), which this addresses; see
# PERF-HISTORY.md, "profile-guided optimisation". Everything runs on 127.0.0.1.
#
# Needs llvm-profdata of the compiler's own LLVM version: `rustup component add llvm-tools`, or set
# LLVM_PROFDATA. Prints the path of the optimised binary ($target/pgo/otlp-gateway).
# Usage: dataplane/build-pgo.sh
set -eu
cd "$(dirname "$0")/.."
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=${LLVM_PROFDATA:-$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata}
if [ ! -x "$profdata" ]; then
    echo "llvm-profdata not found at $profdata: rustup component add llvm-tools, or set LLVM_PROFDATA" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An explicit --target keeps RUSTFLAGS off build scripts and proc macros; separate target directories
# keep the plain release build intact.
# With ISA-L for gzip level 1 (the `isal` feature: needs nasm, autoconf, automake, libtool), as
# the image ships and PERF.md measures.
gateway_build() { # target-dir rustflags
    RUSTFLAGS="$2" cargo build --quiet --release --locked -p otlp-gateway --features isal --bin otlp-gateway \
        --target "$host" --target-dir "$1"
}
cargo build --quiet --release --locked -p loadtest
gateway_build "$target/pgo-generate" "-Cprofile-generate=$work/raw"

# The load test stops its forwarder with SIGKILL, which would lose the profile (it is written at
# exit): the wrapper runs the gateway in the background, and it is ended with SIGTERM after each run.
cat > "$work/wrapper" <<EOF
#!/bin/sh
"$target/pgo-generate/$host/release/otlp-gateway" "\$@" &
echo \$! > "$work/pid"
wait
EOF
chmod +x "$work/wrapper"
train() {
    "$target/release/loadtest" run "$@" --gateway-bin "$work/wrapper" > "$work/run.txt" 2>&1 \
        || { cat "$work/run.txt" >&2; exit 1; }
    kill -TERM "$(cat "$work/pid")" 2>/dev/null || true
    while kill -0 "$(cat "$work/pid")" 2>/dev/null; do sleep 0.2; done
    echo "trained: $* ($(awk '/^delivered_unique_spans/ { print $2 }' "$work/run.txt") spans)" >&2
}
train single --rate 100000 --duration 5s
train single --rate 0 --duration 4s
train single --rate 50000 --duration 4s --protocol http
train gzip --rate 50000 --duration 4s --random-values
train pods10k --rate 100000 --duration 5s --sources 250
train multi3 --rate 30000 --duration 3s

"$profdata" merge -o "$work/merged.profdata" "$work/raw"
gateway_build "$target/pgo" "-Cprofile-use=$work/merged.profdata"
cp "$target/pgo/$host/release/otlp-gateway" "$target/pgo/otlp-gateway"
echo "$target/pgo/otlp-gateway"
