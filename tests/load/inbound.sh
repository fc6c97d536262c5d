#!/usr/bin/env bash
# Load test of inbound calls: N concurrent SIPp callers on the menu number
# (1000 -> scripts/main_menu.rhai), RTP both ways (SIPp streams u-law to
# rivr while rivr plays its prompts), each call held SECONDS then hung up.
# Prints calls answered/failed, rivr's CPU (from /proc/<pid>/stat utime+stime)
# over the whole run and while all N calls are up, its peak RSS (VmHWM), and
# the same per call. Stops by itself.
#
#   tests/load/inbound.sh N [SECONDS]       (default 60 s)
#   RIVR_BIN=...  the binary (default target/release/rivr, built if missing)
#   KEEP=1        keep the temp dir (config, logs, CDRs, SIPp stats)
#   CODEC=opus    callers offer only Opus and send Opus (a pcap replayed by
#                 SIPp); rivr answers Opus, decodes every call's audio with
#                 libopus and plays its prompts from the Opus cache
#   PERF=FILE     profile rivr (perf) while all calls are up; flat profile to FILE
#   (with perf installed, rivr's system calls while all calls are up are
#   counted too: `syscalls_per_call_s` in the RESULT line)
#   SIPP_PROCS=K  callers split over K SIPp processes (default one per 500
#                 calls: one SIPp streaming RTP saturates a core first)
#   PROBE=1       once all N calls are up, one more call from
#                 tests/load_probe.rs (its RTP recorded by the probe): the
#                 menu prompt heard at NCC >= 0.99, no gap between rivr's
#                 packets above 40 ms, three RFC 4733 keys recognised; the
#                 run fails if not. Needs SECONDS >= ramp + 22.
# The last line, `RESULT key=value ...`, is what tests/load/compare.sh reads;
# the SIPp processes' own CPU is printed beside rivr's.
set -euo pipefail

N=${1:?usage: $0 N [SECONDS]}
HOLD=${2:-60}
[[ $N =~ ^[0-9]+$ && $N -ge 1 ]] || { echo "N must be a positive integer" >&2; exit 2; }
[[ $HOLD =~ ^[0-9]+$ && $HOLD -ge 5 ]] || { echo "SECONDS must be an integer >= 5" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/load/proc.sh"
BIN=${RIVR_BIN:-$ROOT/target/release/rivr}
for tool in sipp sox; do
    command -v $tool >/dev/null || { echo "$tool is not installed (make deps)" >&2; exit 2; }
done
if [[ ! -x $BIN ]]; then
    echo "building $BIN"
    (cd "$ROOT" && cargo build --release --bin rivr)
fi

# Each call holds an RTP+RTCP socket pair in rivr and in SIPp.
want_fds=$((N * 6 + 1024))
if (( $(ulimit -n) < want_fds )); then
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want_fds
    ulimit -n $(( want_fds < hard ? want_fds : hard )) || true
fi
if (( $(ulimit -n) < N * 4 + 64 )); then
    echo "warning: ulimit -n is $(ulimit -n); $N calls need about $((N * 4 + 64))" >&2
fi

TMP=$(mktemp -d /tmp/rivr-load.XXXXXX)
RIVR_PID=""
SIPP_PIDS=()
cleanup() {
    for p in "${SIPP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n $RIVR_PID ]] && kill "$RIVR_PID" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# RTP range: 2 ports per call plus headroom for ports held by others.
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
# One SIPp places every call: one source, like an SBC in front of rivr.
per_source_cps = 10000
max_cps = 10000
[[route]]
number = "1000"
script = "$ROOT/scripts/main_menu.rhai"
[[route]]
number = "3999"
script = "$ROOT/tests/load/probe.rhai"
EOF

RATE=$(( (N + 9) / 10 )); (( RATE < 10 )) && RATE=10
RAMP=$(( (N + RATE - 1) / RATE ))
CODEC=${CODEC:-pcmu}
case $CODEC in
pcmu)
    # What the callers say: a prompt as raw 8 kHz u-law, looped by rtp_stream.
    sox "$ROOT/prompts/survey_q1.wav" -r 8000 -c 1 -t ul "$TMP/caller.ulaw"
    sed -e "s/HOLD_MS/$((HOLD * 1000))/" -e "s|CALLER_AUDIO|$TMP/caller.ulaw|" \
        "$ROOT/tests/load/uac_load.xml" > "$TMP/uac_load.xml"
    ;;
opus)
    # The same prompt as Opus RTP in a pcap, as long as a call lasts.
    (cd "$ROOT" && cargo run --quiet --release --example opus_pcap -- \
        prompts/survey_q1.wav $((HOLD + 5)) "$TMP/caller.pcap")
    sed -e "s/HOLD_MS/$((HOLD * 1000))/" -e "s|CALLER_PCAP|$TMP/caller.pcap|" \
        "$ROOT/tests/load/uac_load_opus.xml" > "$TMP/uac_load.xml"
    ;;
*) echo "CODEC must be pcmu or opus" >&2; exit 2 ;;
esac

PROBE_BIN=""
if [[ ${PROBE:-0} == 1 ]]; then
    (( HOLD >= RAMP + 22 )) || { echo "PROBE=1 needs SECONDS >= $((RAMP + 22)) (ramp $RAMP s + the probe's call)" >&2; exit 2; }
    # Built now, so the probe starts at once when it is due.
    PROBE_BIN=$(cd "$ROOT" && cargo test --release --test load_probe --no-run --message-format=json 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    [[ -x $PROBE_BIN ]] || { echo "could not build the probe (cargo test --release --test load_probe --no-run)" >&2; exit 2; }
fi

start_rivr "$TMP/rivr.toml"
echo "$(head -1 "$TMP/rivr.stdout")"


RSS0=$(status_kb VmRSS)
PROCS=${SIPP_PROCS:-$(( (N + 499) / 500 ))}
[[ $PROCS =~ ^[0-9]+$ && $PROCS -ge 1 && $PROCS -le $N ]] || { echo "SIPP_PROCS must be 1..N" >&2; exit 2; }
# All calls start within RAMP seconds; all N are up from then until HOLD.
echo "placing $N calls at $RATE calls/s from $PROCS SIPp processes, each call held ${HOLD} s (rtp $RTP_LO-$RTP_HI, ulimit -n $(ulimit -n))"

T0=$(now_ms)
CPU0=$(cpu_ticks)
for i in $(seq 1 "$PROCS"); do
    # Process i places calls i, i+PROCS, ...: N/PROCS rounded either way.
    n=$(( (N - i) / PROCS + 1 ))
    r=$(awk -v r="$RATE" -v n="$n" -v t="$N" 'BEGIN { printf "%.2f", r * n / t }')
    # SIPp 3.6 streams all its calls' RTP from one socket (and binds the
    # next ports for video): 10 ports apart per process.
    sipp "127.0.0.1:$PORT" -sf "$TMP/uac_load.xml" -s 1000 -m "$n" -l "$n" -r "$r" \
        -i 127.0.0.1 -p 0 -mi 127.0.0.1 -mp $(( 6000 + ($$ % 200) * 100 + i * 10 )) -nostdin \
        -max_socket $((n * 4 + 256)) -timeout "$((HOLD + RAMP + 60))s" -timeout_error \
        -trace_stat -stf "$TMP/sipp_stats.$i.csv" -fd 1 \
        -trace_err -error_file "$TMP/sipp_errors.$i.log" ${SIPP_EXTRA:-} > "$TMP/sipp.$i.screen" 2>&1 &
    SIPP_PIDS+=($!)
done

PROBE_PID=""
if [[ -n $PROBE_BIN ]]; then
    (sleep $((RAMP + 2)); PROBE_SIP_PORT=$PORT PROBE_CDR="$TMP/cdr.jsonl" PROBE_DIR="$TMP" \
        "$PROBE_BIN" --ignored --nocapture --test-threads=1 > "$TMP/probe.out" 2>&1) &
    PROBE_PID=$!
fi
start_perf $((RAMP + 2)) $(( HOLD - RAMP - 4 > 1 ? HOLD - RAMP - 4 : 1 ))
start_syscalls $((RAMP + 2)) $(( HOLD - RAMP - 4 > 1 ? HOLD - RAMP - 4 : 1 ))
# Sample rivr once a second: elapsed ms, CPU ticks, RSS kB; and SIPp's CPU.
: > "$TMP/samples"
declare -A sipp_ticks
while :; do
    alive=0
    for p in "${SIPP_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then alive=1; sipp_ticks[$p]=$(pid_ticks "$p"); fi
    done
    (( alive )) || break
    echo "$(( $(now_ms) - T0 )) $(cpu_ticks) $(status_kb VmRSS)" >> "$TMP/samples"
    sleep 1
done
SIPP_TICKS=0
for p in "${SIPP_PIDS[@]}"; do SIPP_TICKS=$(( SIPP_TICKS + ${sipp_ticks[$p]:-0} )); done
SIPP_RC=0
set +e
for p in "${SIPP_PIDS[@]}"; do wait "$p" || SIPP_RC=$?; done
set -e
SIPP_PIDS=()
PROBE_RC=0
if [[ -n $PROBE_PID ]]; then wait "$PROBE_PID" || PROBE_RC=$?; fi
T1=$(now_ms)
CPU1=$(cpu_ticks)
HWM=$(status_kb VmHWM)
perf_report
syscalls_report
sleep 1
kill -TERM "$RIVR_PID"
for _ in $(seq 1 100); do kill -0 "$RIVR_PID" 2>/dev/null || break; sleep 0.1; done
RIVR_RC=0
wait "$RIVR_PID" || RIVR_RC=$?
RIVR_PID=""

# SIPp's cumulative counters, summed over the processes.
sum_stat() {
    local total=0 f v
    for f in "$TMP"/sipp_stats.*.csv; do v=$(sipp_stat "$f" "$1"); total=$(( total + ${v:-0} )); done
    echo "$total"
}
OK=$(sum_stat "SuccessfulCall(C)")
FAILED=$(sum_stat "FailedCall(C)")
RETRANS=$(sum_stat "Retransmissions(C)")
CDRS=$(grep -c . "$TMP/cdr.jsonl" || true)
ANSWERED=$(grep -c '"answered":true' "$TMP/cdr.jsonl" || true)
ENDS=$(grep -o '"end":"[a-z-]*"' "$TMP/cdr.jsonl" | sort | uniq -c | awk '{ printf "%s%s=%s", sep, substr($2, 8, length($2) - 8), $1; sep = ", " }')
FAILED_SCRIPTS=$(grep -c '"script":"failed' "$TMP/cdr.jsonl" || true)

# Whole run, and the window where all N calls are up (ramp done, first hangups not yet).
read -r RUN_CPU STEADY_CPU STEADY_S < <(awk -v tck="$TCK" -v t0="$((RAMP + 2))000" -v t1="$((HOLD - 1))000" \
    -v c0="$CPU0" -v c1="$CPU1" -v run_ms="$((T1 - T0))" '
    { if ($1 >= t0 && a == "") { a = $1; ca = $2;  } if ($1 <= t1) { b = $1; cb = $2;  } }
    END {
        run = (c1 - c0) / tck / (run_ms / 1000) * 100
        if (a != "" && b > a) { sec = (b - a) / 1000; st = (cb - ca) / tck / sec * 100 }
        else { st = -1; sec = 0 }
        printf "%.1f %.1f %.0f\n", run, st, sec
    }' "$TMP/samples")

echo
echo "== rivr inbound load: $N calls x ${HOLD} s on 1000 (main_menu), $CODEC RTP both ways =="
# SIPp writes no error log when nothing went wrong.
EVENTS=$(cat "$TMP"/sipp_errors.*.log 2>/dev/null | grep -o 'Call-Id:' | wc -l || true)
HOLD_ENDS=$(cat "$TMP"/sipp_errors.*.log 2>/dev/null | grep -o 'jumping to label' | wc -l || true)
SIPP_CPU=$(awk -v c="$SIPP_TICKS" -v t="$TCK" -v ms="$((T1 - T0))" 'BEGIN { printf "%.1f", c / t / (ms / 1000) * 100 }')
echo "SIPp:  successful $OK, failed $FAILED, retransmissions $RETRANS (exit $SIPP_RC); $HOLD_ENDS hangups after the hold, $((EVENTS - HOLD_ENDS)) other events in its error logs"
echo "       ${SIPP_CPU}% of one core for its $PROCS processes over the whole run"
echo "rivr:  CDRs $CDRS, answered $ANSWERED, ends: ${ENDS:-none}, script failures $FAILED_SCRIPTS; exit after SIGTERM $RIVR_RC"
echo "CPU:   ${RUN_CPU}% of one core over the whole run ($(( (T1 - T0) / 1000 )) s)"
if [[ $STEADY_CPU != -1.0 ]]; then
    echo "       ${STEADY_CPU}% while all $N calls were up (${STEADY_S} s) = $(awk -v c="$STEADY_CPU" -v n="$N" 'BEGIN { printf "%.3f", c / n }')% per call"
else
    echo "       (no steady window: SECONDS too short for the ramp of ${RAMP} s)"
fi
echo "RSS:   ${RSS0} kB idle, peak (VmHWM) ${HWM} kB = $(awk -v a="$RSS0" -v b="$HWM" -v n="$N" 'BEGIN { printf "%.3f", (b - a) / 1024 / n }') MB per call"
SYSC_PER_CALL=$(awk -v s="${SYSCALLS_PER_S:-0}" -v n="$N" 'BEGIN { printf "%.1f", s / n }')
[[ -n ${SYSCALLS_PER_S:-} ]] && echo "Calls into the kernel: ${SYSCALLS_PER_S}/s while all calls were up = ${SYSC_PER_CALL}/s per call"
PER_CALL_PCT=$(awk -v c="$STEADY_CPU" -v n="$N" 'BEGIN { printf "%.4f", (c < 0) ? -1 : c / n }')
KB_PER_CALL=$(awk -v a="$RSS0" -v b="$HWM" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
PROBE_KV=""
if [[ -n $PROBE_BIN ]]; then
    PROBE_LINE=$(grep -m1 -o 'PROBE ncc=.*' "$TMP/probe.out" || true)
    echo "Probe: ${PROBE_LINE:-no PROBE line} (exit $PROBE_RC)"
    ncc=$(sed -n 's/.*ncc=\([0-9.]*\).*/\1/p' <<< "$PROBE_LINE")
    gap=$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' <<< "$PROBE_LINE")
    PROBE_KV=" probe_ncc=${ncc:--1} probe_max_gap_ms=${gap:--1} probe_ok=$(( PROBE_RC == 0 ? 1 : 0 ))"
fi
echo "RESULT calls=$N ok=$OK failed=$FAILED retrans=$RETRANS steady_cpu_pct=$STEADY_CPU cpu_pct_per_call=$PER_CALL_PCT run_cpu_pct=$RUN_CPU kb_per_call=$KB_PER_CALL rss_peak_kb=$HWM sipp_cpu_pct=$SIPP_CPU syscalls_per_call_s=${SYSC_PER_CALL}${PROBE_KV}"
if [[ $PROBE_RC -ne 0 ]]; then
    echo "the probe call failed:"; tail -30 "$TMP/probe.out"
    exit 1
fi
if [[ $OK -ne $N || $FAILED -ne 0 ]]; then
    echo "first SIPp errors:"; head -20 "$TMP"/sipp_errors.*.log 2>/dev/null || true
    exit 1
fi
