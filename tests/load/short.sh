#!/usr/bin/env bash
# Load test of short calls (issue 18): callers at RATE calls/s for SECONDS
# on a number whose script answers, plays a 1 s tone and hangs up (rivr
# sends the BYE). The calls come from PROCS SIPp processes (default: one
# per 300 calls/s), each with its own socket, because one SIPp saturates
# a core well before 1,200 calls/s and then throttles silently; each is
# allowed 20 x its rate of open calls so SIPp's default cap (3 x rate)
# never holds calls back.
#
# Prints what SIPp really did, not what it was asked: calls placed and
# the rate reached (first to last INVITE), successful and failed calls,
# retransmissions, the mean INVITE -> 200 time, and the CPU of rivr and
# of the SIPp processes (so rivr's figure can be judged honestly). The
# last line, `RESULT key=value ...`, is what tests/load/compare.sh reads.
# Exits 1 when a call failed.
#
#   tests/load/short.sh RATE [SECONDS] [PROCS]     (default 20 s)
#   RIVR_BIN=...  the binary (default target/release/rivr, built if missing)
#   KEEP=1        keep the temp dir
#   PERF=FILE     profile rivr (perf) over the middle of the run; flat profile to FILE
set -euo pipefail

RATE=${1:?usage: $0 RATE [SECONDS] [PROCS]}
SECONDS_=${2:-20}
[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 ]] || { echo "RATE must be a positive integer" >&2; exit 2; }
[[ $SECONDS_ =~ ^[0-9]+$ && $SECONDS_ -ge 2 ]] || { echo "SECONDS must be an integer >= 2" >&2; exit 2; }
PROCS=${3:-$(( (RATE + 299) / 300 ))}
[[ $PROCS =~ ^[0-9]+$ && $PROCS -ge 1 ]] || { echo "PROCS must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/load/proc.sh"
BIN=${RIVR_BIN:-$ROOT/target/release/rivr}
command -v sipp >/dev/null || { echo "sipp is not installed (make deps)" >&2; exit 2; }
if [[ ! -x $BIN ]]; then
    echo "building $BIN"
    (cd "$ROOT" && cargo build --release --bin rivr)
fi

TOTAL=$(( RATE * SECONDS_ ))
PER=$(( TOTAL / PROCS ))
PROC_RATE=$(awk -v r="$RATE" -v p="$PROCS" 'BEGIN { printf "%.2f", r / p }')
LIMIT=$(( (RATE / PROCS + 1) * 20 ))
want_fds=$(( RATE * 10 + 4096 ))
if (( $(ulimit -n) < want_fds )); then
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want_fds
    ulimit -n $(( want_fds < hard ? want_fds : hard )) || true
fi

TMP=$(mktemp -d /tmp/rivr-short.XXXXXX)
RIVR_PID=""
SIPP_PIDS=()
cleanup() {
    for p in "${SIPP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n $RIVR_PID ]] && kill "$RIVR_PID" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Calls last ~1.2 s; ports for 4 s of calls, and headroom.
RTP_LO=$(( 20000 + ($$ % 50) * 2 ))
RTP_HI=$(( RTP_LO + 2 * (RATE * 4 + 200) - 1 ))
cat > "$TMP/short.rhai" <<'RHAI'
play("tone:beep:440:1000");
hangup();
RHAI
cat > "$TMP/rivr.toml" <<TOML
[sip]
listen = "127.0.0.1:0"
[rtp]
ports = "$RTP_LO-$RTP_HI"
[media]
prompts = "$ROOT/prompts"
[cdr]
path = "$TMP/cdr.jsonl"
[limits]
# The callers are one source, like an SBC in front of rivr.
per_source_cps = 100000
per_source_burst = 100000
max_cps = 100000
max_calls = $(( RATE * 4 + 200 ))
[[route]]
number = "1000"
script = "$TMP/short.rhai"
TOML

start_rivr "$TMP/rivr.toml"
echo "$(head -1 "$TMP/rivr.stdout")"
echo "placing $TOTAL short calls at $RATE calls/s from $PROCS SIPp processes ($PROC_RATE calls/s each)"

T0=$(now_ms)
CPU0=$(cpu_ticks)
for i in $(seq 1 "$PROCS"); do
    sipp "127.0.0.1:$PORT" -sf "$ROOT/tests/load/uac_short.xml" -s 1000 -m "$PER" -l "$LIMIT" \
        -r "$PROC_RATE" -i 127.0.0.1 -p 0 -mp $(( 6000 + ($$ % 200) * 100 + i * 10 )) \
        -nostdin -max_socket 4096 -timeout "$(( SECONDS_ + 60 ))s" -timeout_error \
        -trace_stat -stf "$TMP/stats.$i.csv" -fd 1 \
        -trace_err -error_file "$TMP/errors.$i.log" > "$TMP/sipp.$i.screen" 2>&1 &
    SIPP_PIDS+=($!)
done
start_perf 2 $(( SECONDS_ - 3 > 1 ? SECONDS_ - 3 : 1 ))
SIPP_TICKS=0
declare -A last
while :; do
    alive=0
    for p in "${SIPP_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then alive=1; last[$p]=$(pid_ticks "$p"); fi
    done
    (( alive )) || break
    sleep 0.5
done
for p in "${SIPP_PIDS[@]}"; do SIPP_TICKS=$(( SIPP_TICKS + ${last[$p]:-0} )); done
SIPP_RC=0
for p in "${SIPP_PIDS[@]}"; do wait "$p" || SIPP_RC=$?; done
SIPP_PIDS=()
T1=$(now_ms)
CPU1=$(cpu_ticks)
HWM=$(status_kb VmHWM)
perf_report
kill -TERM "$RIVR_PID"
for _ in $(seq 1 100); do kill -0 "$RIVR_PID" 2>/dev/null || break; sleep 0.1; done
wait "$RIVR_PID" || true
RIVR_PID=""

OK=0; FAILED=0; RETRANS=0; PLACED=0; RT_SUM=0
for i in $(seq 1 "$PROCS"); do
    f="$TMP/stats.$i.csv"
    n=$(sipp_stat "$f" "SuccessfulCall(C)"); OK=$(( OK + ${n:-0} ))
    n=$(sipp_stat "$f" "FailedCall(C)"); FAILED=$(( FAILED + ${n:-0} ))
    n=$(sipp_stat "$f" "Retransmissions(C)"); RETRANS=$(( RETRANS + ${n:-0} ))
    n=$(sipp_stat "$f" "OutgoingCall(C)"); PLACED=$(( PLACED + ${n:-0} ))
    rt=$(sipp_ms "$(sipp_stat "$f" "ResponseTime1(C)")")
    RT_SUM=$(awk -v a="$RT_SUM" -v b="$rt" -v n="$(sipp_stat "$f" "SuccessfulCall(C)")" 'BEGIN { printf "%.1f", a + b * n }')
done
RUN_S=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
# The rate reached: calls placed over the time SIPp took to place them
# (its stats' elapsed time to the last new call is not exported, so the
# whole run less the last call's ~1.2 s).
REACHED=$(awk -v n="$PLACED" -v s="$RUN_S" 'BEGIN { d = s - 1.2; if (d < 1) d = 1; printf "%.0f", n / d }')
MEAN_RT=$(awk -v s="$RT_SUM" -v n="$OK" 'BEGIN { printf "%.1f", (n > 0) ? s / n : -1 }')
RIVR_CPU=$(awk -v c="$((CPU1 - CPU0))" -v t="$TCK" -v s="$RUN_S" 'BEGIN { printf "%.1f", c / t / s * 100 }')
SIPP_CPU=$(awk -v c="$SIPP_TICKS" -v t="$TCK" -v s="$RUN_S" 'BEGIN { printf "%.1f", c / t / s * 100 }')
PER_CALL=$(awk -v c="$((CPU1 - CPU0))" -v t="$TCK" -v n="$PLACED" 'BEGIN { printf "%.1f", (n > 0) ? c / t / n * 1e6 : -1 }')

echo
echo "== rivr short calls: $RATE calls/s asked for ${SECONDS_} s, 1 s prompt, rivr hangs up =="
echo "SIPp:  placed $PLACED ($REACHED calls/s reached), successful $OK, failed $FAILED, retransmissions $RETRANS (exit $SIPP_RC)"
echo "       mean INVITE -> 200: ${MEAN_RT} ms (SIPp's clock counts whole milliseconds: 0 is under 1 ms)"
echo "CPU:   rivr ${RIVR_CPU}% of one core over ${RUN_S} s = ${PER_CALL} us per call; SIPp (${PROCS} processes) ${SIPP_CPU}%"
echo "RSS:   rivr peak (VmHWM) ${HWM} kB"
echo "RESULT placed=$PLACED rate=$REACHED ok=$OK failed=$FAILED retrans=$RETRANS invite_200_ms=$MEAN_RT rivr_cpu_pct=$RIVR_CPU cpu_us_per_call=$PER_CALL sipp_cpu_pct=$SIPP_CPU rss_kb=$HWM"
if (( OK != PER * PROCS || FAILED != 0 )); then
    echo "first SIPp errors:"; head -20 "$TMP"/errors.*.log 2>/dev/null || true
    exit 1
fi
