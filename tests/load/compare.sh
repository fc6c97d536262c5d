#!/usr/bin/env bash
# Before/after in one sitting (issue 18): builds rivr at REF (a commit,
# branch or tag) and the working tree, both release, then runs the same
# load against each, alternating ROUNDS times (ref, new, ref, new, ...),
# and prints every figure of the loads' `RESULT` lines side by side with
# the ratio new / ref (the median over the rounds). The machine is noisy:
# only ratios from one run count.
#
#   tests/load/compare.sh REF LOAD [ARGS...]
#   e.g. tests/load/compare.sh main tests/load/short.sh 400 20
#        ROUNDS=3 tests/load/compare.sh HEAD~1 tests/load/inbound.sh 1000 40
#   ROUNDS=N            rounds (default 2)
#   COMPARE_TARGET=DIR  the shared cargo target (default target/compare;
#                       both trees share the dependencies' builds)
#   COMPARE_PROFILE=dev a debug build instead of release (quicker to build;
#                       only for figures a build does not change, such as
#                       system calls per call)
set -euo pipefail

REF=${1:?usage: $0 REF LOAD [ARGS...]}
shift
[[ $# -ge 1 ]] || { echo "usage: $0 REF LOAD [ARGS...]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-2}
TARGET=${COMPARE_TARGET:-$ROOT/target/compare}
PROFILE=${COMPARE_PROFILE:-release}
case $PROFILE in
    release) OUT_DIR=release ;;
    dev) OUT_DIR=debug ;;
    *) echo "COMPARE_PROFILE must be release or dev" >&2; exit 2 ;;
esac
TMP=$(mktemp -d /tmp/rivr-compare.XXXXXX)
WT="$TMP/ref-tree"
cleanup() {
    git -C "$ROOT" worktree remove --force "$WT" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

REV=$(git -C "$ROOT" rev-parse --short "$REF^{commit}")
git -C "$ROOT" worktree add --quiet --detach "$WT" "$REV"
echo "building rivr at $REF ($REV) and the working tree ($PROFILE, target $TARGET)"
# Both trees give rivr the same unit hash (cargo hashes a path package
# relative to its workspace), so the second build would find the first
# one's output "fresh" and hand back the REF binary as the new one (seen:
# two runs of one binary, 0.86 apart in CPU — the noise). rivr's own
# artifacts are cleaned before each build; the dependencies stay shared.
build() { # TREE OUT
    (cd "$1" && CARGO_TARGET_DIR=$TARGET cargo clean --quiet -p rivr --profile "$PROFILE" \
        && CARGO_TARGET_DIR=$TARGET cargo build --quiet --profile "$PROFILE" --bin rivr)
    cp "$TARGET/$OUT_DIR/rivr" "$2"
}
build "$WT" "$TMP/rivr-ref"
build "$ROOT" "$TMP/rivr-new"
if cmp -s "$TMP/rivr-ref" "$TMP/rivr-new"; then
    echo "the two builds are the same binary: nothing to compare" >&2
    exit 1
fi

run() { # which round LOAD...
    local which=$1 round=$2
    shift 2
    local out="$TMP/$which.$round.out"
    echo "-- $which, round $round: $*" >&2
    RIVR_BIN="$TMP/rivr-$which" "$@" > "$out" 2>&1 || echo "   (exit $?)" >&2
    grep '^RESULT ' "$out" | tail -1 | sed 's/^RESULT //' > "$TMP/$which.$round.result" || true
    [[ -s $TMP/$which.$round.result ]] || { echo "no RESULT line from $which round $round:" >&2; tail -20 "$out" >&2; exit 1; }
    grep -v '^RESULT ' "$out" | tail -8 | sed 's/^/   /' >&2
}
for r in $(seq 1 "$ROUNDS"); do
    run ref "$r" "$@"
    run new "$r" "$@"
done

echo
echo "== $* : $REF ($REV) vs working tree, median of $ROUNDS rounds =="
python3 - "$TMP" "$ROUNDS" <<'PY'
import statistics, sys, pathlib
tmp, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def load(which):
    rows = []
    for r in range(1, rounds + 1):
        kv = dict(p.split("=", 1) for p in (tmp / f"{which}.{r}.result").read_text().split())
        rows.append(kv)
    keys = rows[0].keys()
    out = {}
    for k in keys:
        try:
            out[k] = statistics.median(float(row[k]) for row in rows)
        except (KeyError, ValueError):
            out[k] = None
    return out
ref, new = load("ref"), load("new")
print(f"{'figure':<18}{'ref':>14}{'new':>14}{'new/ref':>10}")
for k in ref:
    a, b = ref[k], new.get(k)
    ratio = f"{b / a:.2f}" if a not in (None, 0) and b is not None else "-"
    fa = "-" if a is None else f"{a:g}"
    fb = "-" if b is None else f"{b:g}"
    print(f"{k:<18}{fa:>14}{fb:>14}{ratio:>10}")
PY
