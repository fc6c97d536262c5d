#!/usr/bin/env bash
# Load test of outbound calls: `rivr call --count N` places N calls through
# one [[trunk]] paced at CPS (the trunk's own `cps`, no bursts), against a
# SIPp UAS as the carrier that answers at once, echoes the RTP it gets
# (-rtp_echo) and hangs up after SECONDS. rivr's script plays prompts for
# the whole call, so RTP flows both ways. Prints the CPS really achieved
# (from SIPp's message trace: first to last INVITE), the peak of calls up
# at once (SIPp's CurrentCall), rivr's CPU (utime+stime from /proc) over
# the run and while the most calls were up, its RSS per call, and every
# failure (outcomes other than answered, SIPp failures, retransmissions).
# Stops by itself.
#
#   tests/load/outbound.sh N CPS [SECONDS]     (default 20 s)
#   RIVR_BIN=...  the binary (default target/release/rivr, built if missing)
#   KEEP=1        keep the temp dir (config, logs, results, SIPp traces)
set -euo pipefail

N=${1:?usage: $0 N CPS [SECONDS]}
CPS=${2:?usage: $0 N CPS [SECONDS]}
HOLD=${3:-20}
[[ $N =~ ^[0-9]+$ && $N -ge 1 ]] || { echo "N must be a positive integer" >&2; exit 2; }
[[ $CPS =~ ^[0-9]+$ && $CPS -ge 1 ]] || { echo "CPS must be a positive integer" >&2; exit 2; }
[[ $HOLD =~ ^[0-9]+$ && $HOLD -ge 5 ]] || { echo "SECONDS must be an integer >= 5" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/load/proc.sh"
BIN=${RIVR_BIN:-$ROOT/target/release/rivr}
command -v sipp >/dev/null || { echo "sipp is not installed (make deps)" >&2; exit 2; }
if [[ ! -x $BIN ]]; then
    echo "building $BIN"
    (cd "$ROOT" && cargo build --release --bin rivr)
fi

want_fds=$((N * 6 + 1024))
if (( $(ulimit -n) < want_fds )); then
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want_fds
    ulimit -n $(( want_fds < hard ? want_fds : hard )) || true
fi

TMP=$(mktemp -d /tmp/rivr-outload.XXXXXX)
RIVR_PID=""
SIPP_PID=""
cleanup() {
    [[ -n $RIVR_PID ]] && kill "$RIVR_PID" 2>/dev/null || true
    [[ -n $SIPP_PID ]] && kill "$SIPP_PID" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# A free port for SIPp's SIP (UDP) and an even one for its media.
SIP_PORT=$(free_port)
MEDIA_PORT=$(( 6000 + ($$ % 500) * 2 ))
RTP_LO=$(( 40000 + ($$ % 50) * 2 ))
RTP_HI=$(( RTP_LO + 2 * N + 400 - 1 ))

cat > "$TMP/rivr.toml" <<EOF
[sip]
listen = "127.0.0.1:0"
[rtp]
ports = "$RTP_LO-$RTP_HI"
[media]
prompts = "$ROOT/prompts"
[cdr]
path = "$TMP/cdr.jsonl"
[limits]
max_calls = $((N + 10))
[[trunk]]
name = "carrier"
uri = "sip:127.0.0.1:$SIP_PORT"
caller_id = "15550100"
max_channels = $N
cps = $CPS
ring_timeout = 30
codecs = ["pcmu"]
EOF
# Plays until the carrier hangs up.
cat > "$TMP/talk.rhai" <<'EOF'
loop {
    play("main_menu");
}
EOF
sed -e "s/HOLD_MS/$((HOLD * 1000))/" "$ROOT/tests/load/uas_load.xml" > "$TMP/uas_load.xml"

sipp -sf "$TMP/uas_load.xml" -i 127.0.0.1 -p "$SIP_PORT" -mi 127.0.0.1 -mp "$MEDIA_PORT" \
    -rtp_echo -m "$N" -nostdin -max_socket $((N * 4 + 256)) \
    -timeout "$((N / CPS + HOLD + 120))s" -timeout_error \
    -trace_stat -stf "$TMP/sipp_stats.csv" -fd 1 \
    -trace_shortmsg -shortmessage_file "$TMP/sipp_short.log" \
    -trace_err -error_file "$TMP/sipp_errors.log" > "$TMP/sipp.screen" 2>&1 &
SIPP_PID=$!
sleep 0.5
kill -0 "$SIPP_PID" 2>/dev/null || { echo "SIPp did not start:" >&2; cat "$TMP/sipp.screen" >&2; exit 1; }


echo "placing $N calls at $CPS calls/s through one trunk, each held ${HOLD} s by the carrier (rtp $RTP_LO-$RTP_HI)"
T0=$(now_ms)
"$BIN" call --config "$TMP/rivr.toml" --script "$TMP/talk.rhai" --count "$N" 15550100 \
    > "$TMP/results.jsonl" 2> "$TMP/rivr.stderr" &
RIVR_PID=$!
CPU0=$(cpu_ticks)
# Idle footprint: the process after its prompts are loaded, before the
# first INVITE reaches the carrier.
RSS0=""
for _ in $(seq 1 600); do
    kill -0 "$RIVR_PID" 2>/dev/null || break
    grep -q INVITE "$TMP/sipp_short.log" 2>/dev/null && break
    RSS0=$(status_kb VmRSS)
    sleep 0.1
done

: > "$TMP/samples"
while kill -0 "$RIVR_PID" 2>/dev/null; do
    echo "$(( $(now_ms) - T0 )) $(cpu_ticks 2>/dev/null || echo 0) $(status_kb VmRSS 2>/dev/null || echo 0) $(status_kb VmHWM 2>/dev/null || echo 0)" >> "$TMP/samples"
    sleep 1
done
set +e
wait "$RIVR_PID"
RIVR_RC=$?
set -e
RIVR_PID=""
T1=$(now_ms)
HWM=$(awk '{ if ($4 > m) m = $4 } END { print m + 0 }' "$TMP/samples")
for _ in $(seq 1 100); do kill -0 "$SIPP_PID" 2>/dev/null || break; sleep 0.1; done
set +e
wait "$SIPP_PID"
SIPP_RC=$?
set -e
SIPP_PID=""

stat_last() {
    awk -F';' -v col="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                           { v = $c } END { print v + 0 }' "$TMP/sipp_stats.csv"
}
stat_max() {
    awk -F';' -v col="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                           { if ($c + 0 > m) m = $c + 0 } END { print m + 0 }' "$TMP/sipp_stats.csv"
}
OK=$(stat_last "SuccessfulCall(C)")
FAILED=$(stat_last "FailedCall(C)")
RETRANS=$(stat_last "Retransmissions(C)")
PEAK=$(stat_max "CurrentCall")
RESULTS=$(grep -c . "$TMP/results.jsonl" || true)
ANSWERED=$(grep -c '"outcome":"answered"' "$TMP/results.jsonl" || true)
OUTCOMES=$(grep -o '"outcome":"[a-z_]*"' "$TMP/results.jsonl" | sort | uniq -c | awk '{ printf "%s%s=%s", sep, substr($2, 12, length($2) - 12), $1; sep = ", " }')

# The INVITEs the carrier received, by time (SIPp's short trace, tab
# separated: date, time, epoch seconds, R/S, Call-ID, CSeq, first line).
read -r FIRST LAST INVITES < <(awk -F'\t' '$4 == "R" && $7 ~ /^INVITE / {
        if (!seen[$5]++) { n++; if (first == "") first = $3; last = $3 } }
    END { printf "%.6f %.6f %d\n", first, last, n }' "$TMP/sipp_short.log")
ACHIEVED=$(awk -v a="$FIRST" -v b="$LAST" -v n="$INVITES" 'BEGIN { if (b > a) printf "%.1f", (n - 1) / (b - a); else print "n/a" }')

# CPU over the run, and over the window where the most calls were up:
# from the last INVITE (all placed) until the first hangup (HOLD after the
# first answer), both relative to T0.
read -r RUN_CPU PEAK_CPU PEAK_S < <(awk -v tck="$TCK" -v c0="$CPU0" -v run_ms="$((T1 - T0))" \
    -v t0="$(( (N / CPS) * 1000 + 2000 ))" -v t1="$(( HOLD * 1000 ))" '
    { last_c = $2; if ($1 >= t0 && a == "") { a = $1; ca = $2 } if ($1 <= t1 + 1000) { b = $1; cb = $2 } }
    END {
        run = (last_c - c0) / tck / (run_ms / 1000) * 100
        if (a != "" && b > a) { sec = (b - a) / 1000; st = (cb - ca) / tck / sec * 100 } else { st = -1; sec = 0 }
        printf "%.1f %.1f %.0f\n", run, st, sec
    }' "$TMP/samples")

echo
echo "== rivr outbound load: $N calls at $CPS calls/s through one trunk, carrier holds ${HOLD} s, PCMU both ways =="
echo "placed:  $INVITES INVITEs at the carrier; achieved $ACHIEVED calls/s (first to last INVITE $(awk -v a="$FIRST" -v b="$LAST" 'BEGIN { printf "%.2f", b - a }') s)"
echo "peak:    $PEAK calls up at once (SIPp CurrentCall)"
echo "results: $RESULTS lines from rivr call, answered $ANSWERED (${OUTCOMES:-none}); exit $RIVR_RC"
echo "SIPp:    successful $OK, failed $FAILED, retransmissions $RETRANS (exit $SIPP_RC)"
echo "CPU:     ${RUN_CPU}% of one core over the whole run ($(( (T1 - T0) / 1000 )) s)"
if [[ $PEAK_CPU != -1.0 ]]; then
    echo "         ${PEAK_CPU}% while all calls were up (${PEAK_S} s) = $(awk -v c="$PEAK_CPU" -v n="$PEAK" 'BEGIN { printf "%.3f", c / (n > 0 ? n : 1) }')% per call"
else
    echo "         (no window with every call up: SECONDS too short for N / CPS)"
fi
echo "RSS:     ${RSS0:-?} kB before the first call, peak (VmHWM) ${HWM} kB = $(awk -v a="${RSS0:-0}" -v b="$HWM" -v n="$PEAK" 'BEGIN { printf "%.3f", (b - a) / 1024 / (n > 0 ? n : 1) }') MB per call"
if [[ $ANSWERED -ne $N || $OK -ne $N || $FAILED -ne 0 || $RIVR_RC -ne 0 ]]; then
    echo "first SIPp errors:"; head -20 "$TMP/sipp_errors.log" 2>/dev/null || true
    echo "rivr stderr (warnings):"; grep -E 'WARN|ERROR' "$TMP/rivr.stderr" | head -20 || true
    exit 1
fi
