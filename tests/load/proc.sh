# Helpers the load scripts share: a free UDP port, and what /proc says of
# the rivr under test (RIVR_PID, set by the caller before these are used).
# Sourced, not run.

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
TCK=$(getconf CLK_TCK)
# utime + stime, in clock ticks (TCK a second).
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$RIVR_PID/stat"; }
# A field of /proc/PID/status in kB (VmRSS, VmHWM).
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$RIVR_PID/status"; }
now_ms() { date +%s%3N; }

# CPU ticks (utime + stime) of any process.
pid_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Starts `$BIN serve --config $1` into RIVR_PID and waits for its SIP port
# (into PORT); files go to $TMP.
start_rivr() {
    "$BIN" serve --config "$1" > "$TMP/rivr.stdout" 2> "$TMP/rivr.stderr" &
    RIVR_PID=$!
    PORT=""
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on udp+tcp [0-9.]*:\([0-9]*\) .*/\1/p' "$TMP/rivr.stdout" | head -1)
        [[ -n $PORT ]] && return 0
        kill -0 "$RIVR_PID" 2>/dev/null || { echo "rivr exited:" >&2; tail -20 "$TMP/rivr.stderr" >&2; exit 1; }
        sleep 0.2
    done
    echo "rivr did not start within 60 s" >&2
    exit 1
}

# The last value of a column of a SIPp stats CSV (cumulative counters).
sipp_stat() {
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                           { v = $c } END { print v }' "$1"
}

# SIPp's HH:MM:SS:mmmuuu (or HH:MM:SS:mmm) time as milliseconds.
sipp_ms() { awk -F: '{ f = $4; ms = (length(f) > 3) ? f / 1000 : f; printf "%.1f\n", ($1 * 3600 + $2 * 60 + $3) * 1000 + ms }' <<< "$1"; }

# PERF=FILE: profiles rivr with `perf record` (Debian linux-perf) for
# DURATION seconds after DELAY, and writes the flat profile (self time by
# symbol, and by thread) to FILE once `perf_report` runs. The whole system
# is recorded and the report keeps rivr's samples: `perf record -p` fails
# on a process whose threads come and go (a script thread per call).
start_perf() {
    [[ -n ${PERF:-} ]] || return 0
    command -v perf >/dev/null || { echo "PERF set but perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
    ( sleep "$1"; exec perf record -q -a -F 499 -g -o "$TMP/perf.data" -- sleep "$2" ) \
        > "$TMP/perf.log" 2>&1 &
    PERF_PID=$!
}
perf_report() {
    [[ -n ${PERF:-} ]] || return 0
    wait "$PERF_PID" 2>/dev/null || true
    [[ -s $TMP/perf.data ]] || { echo "perf recorded nothing:" >&2; cat "$TMP/perf.log" >&2; return 0; }
    {
        echo "# perf record -a -F 499 -g, rivr (pid $RIVR_PID) only, $(date -u +%FT%TZ); self time by symbol"
        perf report -i "$TMP/perf.data" --pid "$RIVR_PID" --percentage relative --no-children --sort symbol --stdio -g none --percent-limit 0.5 2>/dev/null | grep -v "^$" | cut -c1-150 | sed "s/ *$//" || true
        echo "# by thread (comm)"
        perf report -i "$TMP/perf.data" --pid "$RIVR_PID" --percentage relative --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' || true
    } > "$PERF"
    echo "profile written to $PERF"
}

# Counts rivr's system calls with `perf stat` (its threads at the start)
# for $2 s after $1 s: a count is steady whatever else the machine runs,
# unlike a CPU figure. Needs perf; without it SYSCALLS_PER_S stays empty.
start_syscalls() {
    SYSC_PID=""
    command -v perf >/dev/null || return 0
    SYSC_SECS=$2
    ( sleep "$1"; exec perf stat -x, -e raw_syscalls:sys_enter -p "$RIVR_PID" -- sleep "$2" ) \
        > "$TMP/syscalls.log" 2>&1 &
    SYSC_PID=$!
}
syscalls_report() {
    SYSCALLS_PER_S=""
    [[ -n ${SYSC_PID:-} ]] || return 0
    wait "$SYSC_PID" 2>/dev/null || true
    local n
    n=$(awk -F, '/raw_syscalls:sys_enter/ { print $1; exit }' "$TMP/syscalls.log")
    if [[ $n =~ ^[0-9]+$ ]]; then SYSCALLS_PER_S=$(( n / SYSC_SECS )); fi
}
