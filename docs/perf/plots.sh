#!/bin/sh
# Draws PERF.md's charts from the measurements in this folder (the JSON that `loadtest sweep` and
# `loadtest run` printed; PERF.md gives the command, machine and date of each).
# Usage: docs/perf/plots.sh [loadtest binary, from the repository root]   (default: the release build)
set -eu
cd "$(dirname "$0")"
loadtest=$(cd ../.. && realpath "${1:-${CARGO_TARGET_DIR:-target}/release/loadtest}")
note="2 vCPU AMD EPYC shared with other work, 2026-12-07, release build with ISA-L (--features isal)"
"$loadtest" plot cpu sweep-gzip.json --out cpu-per-span-gzip.svg --note "$note" \
    --title "CPU per span, gzip export: 100 spans/request, 10 random attributes of 16 B"
"$loadtest" plot cpu sweep-kyma.json --out cpu-per-span-kyma.svg --note "$note" \
    --title "CPU per span, Kyma's shape: 512 spans/request, 40 random attributes of 64 B, gzip"
"$loadtest" plot overload overload-gateway.json --out overload-gateway.svg --note "$note" \
    --title "Overload: sent as fast as possible, backend refusing 70 % (backpressure)"
"$loadtest" plot overload overload-gateway.json overload-rotel.json --out overload-vs-rotel.svg --note "$note" \
    --title "Overload, gateway and rotel (backpressure, sent as fast as possible)"
