#!/usr/bin/env bash
# Load test of the campaign dialer: `rivr serve` dials a campaign of N
# contacts at CPS new calls a second with at most CHANNELS up, against SIPp
# as the carrier (tests/sipp/uas_campaign.xml: the answer is fixed by each
# number's last digit — 2 busy, 3 rings until cancelled, 4 503, 5 the
# callee hangs up, others answered; rivr's script beeps and talks 1 s). One attempt
# per contact. Prints the CPS achieved at the carrier (first to last
# INVITE), the most calls up at once (rivr's status), rivr's CPU over the
# run (utime+stime from /proc, % of one core), its peak RSS, the time from
# `start` to the last outcome, and the outcomes. Stops by itself.
#
#   tests/load/campaign.sh N CPS CHANNELS
#   RIVR_BIN=...  the binary (default target/release/rivr, built if missing)
#   KEEP=1        keep the temp dir (config, logs, SIPp traces)
set -euo pipefail

N=${1:?usage: $0 N CPS CHANNELS}
CPS=${2:?usage: $0 N CPS CHANNELS}
CH=${3:?usage: $0 N CPS CHANNELS}
for v in N CPS CH; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/load/proc.sh"
BIN=${RIVR_BIN:-$ROOT/target/release/rivr}
command -v sipp >/dev/null || { echo "sipp is not installed (make deps)" >&2; exit 2; }
if [[ ! -x $BIN ]]; then
    echo "building $BIN"
    (cd "$ROOT" && cargo build --release --bin rivr)
fi

TMP=$(mktemp -d /tmp/rivr-campload.XXXXXX)
RIVR_PID=""
SIPP_PID=""
cleanup() {
    [[ -n $RIVR_PID ]] && kill "$RIVR_PID" 2>/dev/null || true
    [[ -n $SIPP_PID ]] && kill "$SIPP_PID" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

SIP_PORT=$(free_port)
MEDIA_PORT=$(( 6000 + ($$ % 500) * 2 ))
RTP_LO=$(( 40000 + ($$ % 50) * 2 ))
RTP_HI=$(( RTP_LO + 2 * CH + 400 - 1 ))

cat > "$TMP/rivr.toml" <<EOF
[sip]
listen = "127.0.0.1:0"
[rtp]
ports = "$RTP_LO-$RTP_HI"
[media]
prompts = "$ROOT/prompts"
[cdr]
path = "$TMP/cdr.jsonl"
[store]
url = "sqlite://$TMP/rivr.db"
[limits]
max_calls = $((CH + 50))
max_cps = $((CPS * 2))
[[trunk]]
name = "carrier"
uri = "sip:127.0.0.1:$SIP_PORT"
caller_id = "15550100"
max_channels = $CH
cps = $CPS
ring_timeout = 2
options_interval = 0
codecs = ["pcmu"]
EOF
# Short calls, so that CHANNELS / CPS (3 s at 300 and 100) is not what
# limits the pace: a beep, a second of talk, hang up.
cat > "$TMP/talk.rhai" <<'EOF'
play("tone:beep");
sleep(1000);
hangup();
EOF
{
    echo "phone,name"
    for ((i = 0; i < N; i++)); do printf '+254712%06d,Contact %d\n' "$i" "$i"; done
} > "$TMP/contacts.csv"

sipp -sf "$ROOT/tests/sipp/uas_campaign.xml" -i 127.0.0.1 -p "$SIP_PORT" -mi 127.0.0.1 -mp "$MEDIA_PORT" \
    -d 1500 -m $((N * 2)) -nostdin -max_socket $((CH * 4 + 256)) -timeout "$((N / CPS + 600))s" \
    -trace_logs -log_file "$TMP/sipp.log" -trace_err -error_file "$TMP/sipp_errors.log" \
    > "$TMP/sipp.screen" 2>&1 &
SIPP_PID=$!
sleep 0.5
kill -0 "$SIPP_PID" 2>/dev/null || { echo "SIPp did not start:" >&2; cat "$TMP/sipp.screen" >&2; exit 1; }

"$BIN" serve --config "$TMP/rivr.toml" > "$TMP/rivr.stdout" 2> "$TMP/rivr.stderr" &
RIVR_PID=$!
for _ in $(seq 1 100); do
    grep -q listening "$TMP/rivr.stdout" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$TMP/rivr.stdout" || { echo "rivr did not start:" >&2; tail "$TMP/rivr.stderr" >&2; exit 1; }

cli() { "$BIN" campaign "$1" --config "$TMP/rivr.toml" "${@:2}"; }

ID=$(cli create --name load --contacts "$TMP/contacts.csv" --script "$TMP/talk.rhai" --trunk carrier \
    --cps "$CPS" --max-channels "$CH" --attempts 1 --hours 00:00-24:00 --tz UTC | head -1 | awk '{ print $NF }')
RSS0=$(status_kb VmRSS)
echo "campaign $ID: $N contacts at $CPS calls/s, at most $CH channels (rivr idle: $((RSS0 / 1024)) MB)"
CPU0=$(cpu_ticks)
T0=$(now_ms)
cli start "$ID" > /dev/null
PEAK_UP=0
while :; do
    S=$(cli status "$ID" --json)
    UP=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["in_progress"])' "$S")
    (( UP > PEAK_UP )) && PEAK_UP=$UP
    STATE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$S")
    [[ $STATE == done ]] && break
    kill -0 "$RIVR_PID" 2>/dev/null || { echo "rivr died:" >&2; tail "$TMP/rivr.stderr" >&2; exit 1; }
    (( $(now_ms) - T0 > (N / CPS + 600) * 1000 )) && { echo "not done in time: $S" >&2; exit 1; }
    sleep 1
done
T1=$(now_ms)
CPU1=$(cpu_ticks)
HWM=$(status_kb VmHWM)

python3 - "$TMP/sipp.log" "$S" "$(( T1 - T0 ))" "$(( CPU1 - CPU0 ))" "$TCK" "$HWM" "$RSS0" "$PEAK_UP" "$CPS" "$CH" <<'EOF'
import json, sys
log, status, wall_ms, ticks, tck, hwm, rss0, peak, cps, ch = sys.argv[1:]
times, seen = [], set()
for line in open(log):
    if line.startswith("invite "):
        f = dict(w.split("=", 1) for w in line.split() if "=" in w)
        if f.get("call_id") not in seen:
            seen.add(f.get("call_id"))
            times.append(int(f["t"]))
times.sort()
span = (times[-1] - times[0]) / 1000 if len(times) > 1 else 0
lo, most = 0, 0
for hi in range(len(times)):
    while times[hi] - times[lo] >= 1000:
        lo += 1
    most = max(most, hi - lo + 1)
s = json.loads(status)
wall = int(wall_ms) / 1000
cpu = int(ticks) / int(tck)
print(f"attempts at the carrier: {len(times)}, over {span:.1f} s = {len(times) / max(span, 0.001):.1f} calls/s "
      f"(asked {cps}); at most {most} INVITEs in any 1 s of the carrier's log clock (4 ms steps)")
print(f"start to last outcome: {wall:.1f} s; most calls up at once (status): {peak} (max_channels {ch})")
print(f"rivr CPU: {cpu:.1f} s over {wall:.1f} s = {100 * cpu / wall:.1f} % of one core; "
      f"RSS idle {int(rss0) / 1024:.0f} MB, peak {int(hwm) / 1024:.0f} MB")
print(f"outcomes: {json.dumps(s['outcomes'], sort_keys=True)}; texted {s['texted']}, dnc {s['dnc']}")
EOF
