#!/usr/bin/env bash
# The README's quick start as a new user meets it: in a fresh clone of this repository (committed
# files only: no .venv, no build output), with the ports it used to take for granted busy. It must
# either succeed on other ports or exit non-zero naming the busy port; either way it must leave
# none of its processes behind, also when it is stopped halfway (SIGTERM).
#
# Called from .ci/run, after the tests. The clone builds its binaries unoptimised (QUICKSTART_PROFILE,
# default dev here) into the workspace's own target/ (QUICKSTART_TARGET_DIR overrides), where the
# test build has already compiled every dependency, so only the clone's own crates are built: a
# cold release build would add a quarter of an hour to CI. It replaces target/debug's binaries with
# the same sources' build from the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export CARGO_TARGET_DIR=${QUICKSTART_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}}
export QUICKSTART_PROFILE=${QUICKSTART_PROFILE:-dev}
limit=600
[ -d "$CARGO_TARGET_DIR/debug/deps" ] || limit=2400

tmp=$(mktemp -d)
holder=""
cleanup() {
  local status=$?
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

git clone --quiet "$root" "$tmp/repo"
[ ! -e "$tmp/repo/.venv" ] || { echo "the clone has a .venv" >&2; exit 1; }

# The quick start's former fixed ports (gateway 4317, 4318, 13133, 8888; sink 24317-24319), held by
# one listener each on 127.0.0.1 (one already busy on this machine is just as good).
ports=(4317 4318 13133 8888 24317 24318 24319)
python3 -u -c '
import socket, sys, time
held = []
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); s.listen(16); held.append(s)
    except OSError as e:
        print(f"port {port} already busy: {e}", file=sys.stderr)
print("holding", flush=True)
time.sleep(3600)
' "${ports[@]}" >"$tmp/holder.out" &
holder=$!
for _ in $(seq 100); do grep -q holding "$tmp/holder.out" && break; sleep 0.1; done
grep -q holding "$tmp/holder.out" || { echo "could not occupy the ports" >&2; exit 1; }

# pids_gone LOG: every pid the quick start said it started has exited.
pids_gone() {
  local pid ok=0
  for pid in $(sed -n 's/.*quickstart: \(backend\|gateway\) pid \([0-9]*\):.*/\2/p' "$1"); do
    if kill -0 "$pid" 2>/dev/null; then echo "pid $pid is still running after the quick start ended" >&2; ok=1; fi
  done
  return $ok
}

echo "== quick start in a fresh clone, ports ${ports[*]} busy (at most ${limit}s)"
log=$tmp/quickstart.log
status=0
timeout "$limit" "$tmp/repo/deploy/examples/quickstart.sh" >"$log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  grep -q "quickstart: OK: every span reached the backend once per pipeline" "$log" \
    || { cat "$log"; echo "the quick start succeeded without its result" >&2; exit 1; }
  grep -q '"spans":30000' "$log" || { cat "$log"; echo "not the quick start's own statistics" >&2; exit 1; }
  grep -q "quickstart: removed " "$log" || { cat "$log"; echo "its files were left behind" >&2; exit 1; }
  echo "ok: it succeeded on other ports: $(grep -o 'gateway pid [0-9]*: OTLP/gRPC [0-9.:]*' "$log")"
else
  busy=$(printf '%s\\|' "${ports[@]}")
  grep -q "port \(${busy%\\|}\)\b.*\(busy\|in use\)" "$log" \
    || { cat "$log"; echo "the quick start failed ($status) without naming a busy port" >&2; exit 1; }
  echo "ok: it failed naming the busy port"
fi
pids_gone "$log" || { cat "$log"; exit 1; }

echo "== the quick start stopped halfway (SIGTERM once the gateway is up)"
log=$tmp/stopped.log
timeout "$limit" "$tmp/repo/deploy/examples/quickstart.sh" >"$log" 2>&1 &
run=$!
for _ in $(seq 600); do grep -q "quickstart: gateway pid" "$log" && break; kill -0 "$run" 2>/dev/null || break; sleep 0.1; done
grep -q "quickstart: gateway pid" "$log" || { cat "$log"; echo "the gateway never came up" >&2; exit 1; }
# `timeout` passes the signal on to the script.
kill -TERM "$run"
status=0
wait "$run" || status=$?
[ "$status" -ne 0 ] || { cat "$log"; echo "a stopped quick start exited 0" >&2; exit 1; }
pids_gone "$log" || { cat "$log"; exit 1; }
grep -q "quickstart: kept " "$log" || { cat "$log"; echo "it did not say where its files are" >&2; exit 1; }
rm -rf "$(sed -n 's/.*quickstart: kept \([^:]*\):.*/\1/p' "$log")"
echo "ok: stopped halfway, it left no process behind"
