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
