#!/usr/bin/env bash
# Runs the hermetic test binaries (already built by `cargo test`) as an unprivileged user:
# `cargo test` must pass without root, and a check run without root must say what it could
# not see. Skipped (with a note) when not run as root, since then the tests already ran
# unprivileged.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "test-unprivileged: not root; the hermetic tests already ran unprivileged"; exit 0
fi
user=${ND_TEST_USER:-nobody}
uid=$(id -u "$user")
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mapfile -t bins < <(cargo test --workspace --locked --no-run --message-format json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
chown "$user" "$work"
trap 'rm -rf "$work"' EXIT
# The binaries must be reachable: every directory on the way must be searchable.
for d in "$target" "$target/debug" "$target/debug/deps"; do chmod o+rx "$d" 2>/dev/null || true; done
for b in "${bins[@]}"; do
  dir=$(dirname "$b")
  case "$b" in *live_*) continue;; esac
  echo "as $user: $(basename "$b")"
  # cargo's env: the tests find the binary and the fixtures through these.
  (cd "$(dirname "$0")/../crates/node-doctor" &&
    setpriv --reuid="$uid" --regid="$(id -g "$user")" --clear-groups \
      env HOME="$work" TMPDIR="$work" CARGO_MANIFEST_DIR="$PWD" \
      CARGO_BIN_EXE_node-doctor="$target/debug/node-doctor" "$b" --quiet --test-threads=2) ||
    { echo "test-unprivileged: $(basename "$b") failed as $user" >&2; exit 1; }
done
