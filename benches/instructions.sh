#!/bin/sh
# Instructions per span for each stage of the data path and for the prost path, counted by callgrind
# (examples/instructions.rs): deterministic on a machine whose timings swing by half within an hour.
# Needs valgrind. Usage: benches/instructions.sh [callgrind output file to keep]
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --release -p benches --example instructions
if [ $# -gt 0 ]; then
    out=$1
else
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
fi
bin=${CARGO_TARGET_DIR:-target}/release/examples/instructions
spans=$(valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" 2>/dev/null | awk '/^spans / { print $2 }')
if [ -z "$spans" ]; then
    echo "the callgrind run of $bin failed" >&2
    exit 1
fi
callgrind_annotate --inclusive=yes "$out" | awk -v spans="$spans" '
    # Inclusive lines: "1,234,567 (12.34%)  file:instructions::NAME [binary]"; the first is the total.
    match($0, /instructions::(stage|path|scan)_[a-z_]+/) {
        name = substr($0, RSTART + 14, RLENGTH - 14)
        if (!(name in count)) {
            n = $1
            gsub(",", "", n)
            count[name] = n / spans
        }
    }
    END {
        split("stage_scan stage_enrich stage_filter stage_ottl stage_batch stage_export_framing path_zero_copy scan_prost path_prost scan_sdk_spans scan_prost_sdk", order, " ")
        for (i = 1; i <= 11; i++) printf "%-22s %8.0f instructions per span\n", order[i], count[order[i]]
        printf "prost decode / scan:   %8.1fx\n", count["scan_prost"] / count["stage_scan"]
        printf "the same, SDK-shaped spans: %.1fx\n", count["scan_prost_sdk"] / count["scan_sdk_spans"]
        printf "prost path / zero-copy path: %.1fx\n", count["path_prost"] / count["path_zero_copy"]
    }'
