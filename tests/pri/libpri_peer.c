/*
 * libpri_peer — the other side of rivr's ISDN PRI integration tests: one
 * PRI span run by libpri (Debian libpri-dev), over the "socket span"
 * transport, scripted from stdin and reporting on stdout. One process per
 * span: a test with two spans starts two.
 *
 * Build:  cc -O2 -Wall -o libpri_peer tests/pri/libpri_peer.c -lpri -lm
 * (tests/common/libpri.rs does this once per test binary).
 *
 * ---------------------------------------------------------------------
 * TRANSPORT (the socket span)
 *
 *   D-channel: one Unix SOCK_SEQPACKET socket, one Q.921 frame per packet
 *     followed by 2 FCS bytes — as libpri and DAHDI frame it. Findings
 *     from libpri's source (q921.c, pri.c), checked on Debian's 1.6.0 by
 *     logging the callbacks beside PRI_DEBUG_Q921_RAW (a 3-byte SABME
 *     `02 01 7f` is written and read as 5 bytes, a 37-byte SETUP as 39):
 *       - write: q921_transmit() calls the write callback with len + 2,
 *         the frame followed by two bytes it never sets (whatever follows
 *         the frame in memory), and treats any return other than len + 2
 *         as "Short write". So this file sends the buffer exactly as
 *         given: every packet rivr reads is frame + 2 junk bytes.
 *       - read: pri_check_event() reads into a 1024-byte buffer and
 *         __q921_receive() does `len -= 2` without checking anything, so
 *         the read callback returns the packet length INCLUDING the 2 FCS
 *         bytes; rivr must append 2 bytes (any value) to every frame.
 *         The callback drops packets shorter than 5 bytes (3-byte header
 *         + FCS) and longer than 1024 (MSG_TRUNC), so hostile lengths
 *         never reach libpri. A 0-byte SOCK_SEQPACKET packet reads like
 *         EOF; poll's POLLRDHUP/POLLHUP tells a real hang-up apart.
 *       - a read callback returning 0 means "nothing" to libpri, so EOF
 *         is noticed here, not by libpri.
 *   B-channels: one Unix SOCK_SEQPACKET socket per timeslot, 160-byte
 *     G.711 frames (A-law on E1, mu-law on T1) every 20 ms. Frames of
 *     other sizes are counted (`bad=`) and still recorded as received.
 *
 *   By default the peer LISTENS on the paths (`--dchannel PATH`,
 *   `--bchannels PATTERN` with {n} replaced by the timeslot) and rivr
 *   connects; with `--connect` it connects instead (and reconnects every
 *   100 ms when a socket closes), so two peers can run back to back.
 *
 * ---------------------------------------------------------------------
 * OPTIONS
 *   --dchannel PATH            D-channel socket path (required)
 *   --bchannels PATTERN        B-channel paths, "{n}" = timeslot (required)
 *   --switch euroisdn|ni2      default euroisdn (PRI_SWITCH_EUROISDN_E1 /
 *                              PRI_SWITCH_NI2)
 *   --side network|user        default network (PRI_NETWORK / PRI_CPE)
 *   --law alaw|ulaw            default alaw
 *   --channels LIST            B timeslots, e.g. 1-15,17-31 (default: E1
 *                              1-15,17-31 for alaw, T1 1-23 for ulaw)
 *   --connect                  connect to the paths instead of listening
 *   --max-seconds N            exit (status 3) after N s; default 120
 *   --manual                   incoming SETUPs get CALL PROCEEDING only;
 *                              the test answers/clears by command
 *   --tone-hz HZ               what answered calls send; default 1000
 *   --play FILE                loop FILE (raw G.711 in the span's law)
 *                              instead of the tone
 *   --record-dir DIR           record every call to DIR/call-N.<law>
 *   --answer-ms MS             delay before the behaviour's answer or
 *                              clearing; default 100
 *   --clear-after-ms MS        digit 5: clear this long after CONNECT;
 *                              default 1000
 *   --no-answer-ms MS          digit 6: alert this long, then cause 19;
 *                              default 2000
 *   --timer NAME=MS            a libpri timer (T200, T203, T309, T303,
 *                              N200, K, ... see pri_timer2idx); repeatable
 *   --debug MASK               pri_set_debug (e.g. 0x64 = Q.921 state +
 *                              Q.931 dump + Q.931 state); to stderr
 *   --g711-table FILE          write this file's G.711 tables and exit
 *                              (65536 x [alaw, ulaw] bytes, then 256 x
 *                              [alaw, ulaw] i16 LE decodings)
 *
 * ---------------------------------------------------------------------
 * COMMANDS (stdin, one per line; `N` is a call number from an event)
 *   call CALLED CALLING [CH]  place a SETUP (exclusive channel CH; by
 *                             default the network side takes the highest
 *                             free timeslot, the user side the lowest) →
 *                             `dialing call=N channel=CH …` or `error`
 *   proceed N                 CALL PROCEEDING
 *   alert N                   ALERTING
 *   answer N                  CONNECT (media starts)
 *   hangup N CAUSE            clear (DISCONNECT/RELEASE/RELEASE COMPLETE
 *                             as libpri picks for the state)
 *   restart CH|all            RESTART of one timeslot, or of each
 *                             configured timeslot in turn (libpri 1.6 has
 *                             no API for a whole-interface RESTART)
 *   tone N HZ [DBM0]          send a sine (default -10 dBm0)
 *   silence N                 send silence
 *   play N FILE               loop a raw G.711 file (the span's law)
 *   dtmf N DIGITS             in-band DTMF: 100 ms tone, 100 ms gap,
 *                             -7 dBm0 per frequency; then back to what
 *                             was playing before
 *   record N FILE             append what the B-channel receives (raw
 *                             G.711, as on the wire) to FILE
 *   close-d [DOWN_MS]         close the D-channel connection; listening,
 *                             also stop listening (unlink the path) for
 *                             DOWN_MS; connecting, reconnect after DOWN_MS
 *   close-b CH                close timeslot CH's B-channel connection
 *   calls                     one `call-state` line per live call
 *   raw-d HEX                 send HEX as one D-channel packet, as is (no
 *                             FCS added): hostile input for the other end
 *   ping                      `pong` (the peer is alive and caught up)
 *   quit                      exit (status 0) after `bye`
 *
 * EVENTS (stdout, one per line: "<ms> <name> key=value …", ms monotonic
 * since start; strings from the peer are reduced to [0-9A-Za-z*#+] and
 * 32 chars, an empty one is "-")
 *   ready                       sockets bound/listening (or connecting)
 *   d-connected / d-closed      D-channel socket
 *   b-connected channel=CH / b-closed channel=CH
 *   up / down                   PRI_EVENT_DCHAN_UP / _DOWN (Q.921)
 *   setup call=N called=… calling=… channel=CH   incoming SETUP
 *   dialing call=N called=… calling=… channel=CH our SETUP went out
 *   proceeding call=N channel=CH / progress call=N / alerting call=N
 *   connect call=N channel=CH   CONNECT received (we called)
 *   answered call=N channel=CH  we sent CONNECT (they called)
 *   connect-ack call=N
 *   disconnect call=N cause=C   DISCONNECT received (we reply RELEASE)
 *   release call=N cause=C      RELEASE / RELEASE COMPLETE received
 *   hangup-ack call=N cause=C   our clearing completed
 *   end call=N channel=CH reason=… rx=FRAMES tx=FRAMES bad=FRAMES
 *                               the call is gone (its recording closed);
 *                               exactly one per call
 *   restart channel=CH|all      RESTART received (libpri acks it itself);
 *                               our calls on CH end (reason=restart)
 *   restart-ack channel=CH|all  RESTART ACKNOWLEDGE received; likewise
 *   setup-ack call=N            SETUP ACKNOWLEDGE received (overlap)
 *   dtmf call=N digit=D         in-band DTMF detected in what we receive
 *                               (Goertzel, 17 ms blocks, two in a row:
 *                               tones of 55 ms and more)
 *   keypad call=N digits=…      INFORMATION with keypad digits (active)
 *   info call=N digits=…        INFORMATION while overlap receiving
 *   config-err msg=…            PRI_EVENT_CONFIG_ERR
 *   other event=…               any other libpri event, by name
 *   call-state call=N channel=CH media=0|1 clearing=0|1 rx=… tx=…
 *                               the answer to `calls`
 *   pong                        the answer to `ping`
 *   error cmd=… msg=…           a command failed
 *   timeout                     --max-seconds reached (then exit 3)
 *   bye
 * libpri's own messages go to stderr, prefixed with the ms timestamp.
 *
 * ---------------------------------------------------------------------
 * INCOMING CALLS (unless --manual), by the called number's last digit —
 * like tests/sipp/uas_campaign.xml, but with a digit for each cause:
 *   1      RELEASE COMPLETE cause 1 (unallocated number), at once
 *   2      CALL PROCEEDING, DISCONNECT cause 17 (user busy)
 *   3      CALL PROCEEDING, ALERTING, never answers (the caller cancels)
 *   4      CALL PROCEEDING, DISCONNECT cause 34 (no circuit available)
 *   5      CALL PROCEEDING, ALERTING, CONNECT, then DISCONNECT cause 16
 *          after --clear-after-ms
 *   6      CALL PROCEEDING, ALERTING, DISCONNECT cause 19 (no answer)
 *          after --no-answer-ms
 *   other  CALL PROCEEDING, ALERTING, CONNECT; sends the tone (or --play
 *          file) and records (--record-dir) until the caller clears
 * Answers and clearings come --answer-ms after the SETUP. A SETUP for a
 * busy or unconfigured exclusive channel gets cause 44; none free, 34.
 *
 * libpri notes (1.6.0):
 *   - One side must be PRI_NETWORK and the other PRI_CPE (two networks
 *     give a CONFIG_ERR on SABME); the switch types should match. libpri
 *     starts Q.921 itself (SABME from pri_new_cb on, every T200 = 1 s,
 *     forever), so the link comes up within a T200 of both ends
 *     exchanging frames; nothing else (pri_set_debug, pri_restart — a
 *     no-op since the Q.921 rewrite) is needed.
 *   - pri_hangup_fix_enable(1) is set so clearing follows Q.931 5.3.2
 *     (cause 34 after CALL PROCEEDING is a DISCONNECT, not libpri's
 *     legacy RELEASE COMPLETE).
 *   - Call ownership: after PRI_EVENT_HANGUP the call lives on until the
 *     application calls pri_hangup once more; after PRI_EVENT_HANGUP_ACK
 *     libpri has freed it; a SETUP refused before any answer (causes 1,
 *     34, 44, 82, 88) is freed inside pri_hangup. Checked with valgrind:
 *     no invalid access, no leak.
 *   - RESTART: libpri acknowledges a received RESTART itself and leaves
 *     the calls on that channel to the application (here: destroyed,
 *     `end reason=restart`). pri_reset(ch) sends class "indicated
 *     channel"; there is no whole-interface RESTART (pri_reset(0) sends
 *     nothing, pri_reset(-1) a channel-id IE with interface 127), so
 *     `restart all` sends one per timeslot. A class-7 RESTART received
 *     from rivr is reported as channel=all.
 *   - Losing the D-channel: libpri notices only by its own timers. Idle
 *     T203 (10 s) → RR polls, N200 (3) x T200 (1 s) → `down` (MDL-ERROR
 *     I) and SABME again; calls are untouched. Only when N200 SABMEs go
 *     unanswered does Q.931 get DL-RELEASE: calls not yet active are
 *     cleared at once and active ones start T309 (6 s), both clearing
 *     with cause 27 (`release cause=27`). A link back before that keeps
 *     every call. `--timer T200=300 --timer T203=500 --timer T309=1500`
 *     makes this take seconds instead of half a minute.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpri.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_TS 32          /* timeslots 1..31 */
#define MAX_CALLS 128      /* live calls, incl. ones clearing */
#define FRAME 160          /* 20 ms at 8 kHz */
#define DBUF 1024          /* libpri's own read buffer size */
#define DTMF_N 136         /* DTMF detector block: 17 ms */
#define PLAN_UNKNOWN_E164 0x01 /* TON unknown, NPI E.164 */
/* libpri's event channel encoding: bits 0-7 B-channel (0xff any), 8-15
 * span, 16 explicit interface; -1 for none/all. */
#define CHAN_NO(x) ((x) & 0xff)

/* ------------------------------------------------------------------ */
/* configuration                                                        */

static struct {
	const char *dpath;
	const char *bpattern;
	int switchtype;
	int node;
	int alaw;
	int chan_enabled[MAX_TS];
	int connect_mode;
	int max_seconds;
	int manual;
	double tone_hz;
	const char *play_file;
	const char *record_dir;
	int answer_ms;
	int clear_after_ms;
	int no_answer_ms;
	int debug;
} cfg;

static int64_t t0_ms;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t rel_ms(void)
{
	return now_ms() - t0_ms;
}

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	va_list ap;
	printf("%lld ", (long long)rel_ms());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A string from the peer, made safe for a space-separated event line. */
static const char *clean(const char *s, char *out, size_t outlen)
{
	size_t n = 0;
	for (; s && *s && n + 1 < outlen && n < 32; s++) {
		char c = *s;
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			 (c >= 'A' && c <= 'Z') || c == '*' || c == '#' || c == '+';
		out[n++] = ok ? c : '?';
	}
	if (n == 0 && outlen > 1)
		out[n++] = '-';
	out[n] = '\0';
	return out;
}

/* ------------------------------------------------------------------ */
/* G.711, 16-bit linear in and out; the encoders follow the G.191
 * reference (alaw_compress/ulaw_compress: 1's complement magnitude of the
 * 13/14 most significant bits), the decoders the G.711 tables.          */

static uint8_t linear_to_ulaw(int pcm)
{
	int absno = (pcm < 0) ? ((~pcm) >> 2) + 33 : (pcm >> 2) + 33;
	if (absno > 0x1fff)
		absno = 0x1fff;
	int segno = 1;
	for (int i = absno >> 6; i != 0; i >>= 1)
		segno++;
	int high = 8 - segno;
	int low = 0x0f - ((absno >> segno) & 0x0f);
	int out = (high << 4) | low;
	if (pcm >= 0)
		out |= 0x80;
	return (uint8_t)out;
}

static int ulaw_to_linear(uint8_t u)
{
	int t;
	u = (uint8_t)~u;
	t = ((u & 0x0f) << 3) + 0x84;
	t <<= (u & 0x70) >> 4;
	return (u & 0x80) ? (0x84 - t) : (t - 0x84);
}

static uint8_t linear_to_alaw(int pcm)
{
	int ix = (pcm < 0) ? (~pcm) >> 4 : pcm >> 4;
	if (ix > 15) {
		int iexp = 1;
		while (ix > 16 + 15) {
			ix >>= 1;
			iexp++;
		}
		ix -= 16;
		ix += iexp << 4;
	}
	if (pcm >= 0)
		ix |= 0x80;
	return (uint8_t)(ix ^ 0x55);
}

static int alaw_to_linear(uint8_t a)
{
	int t, seg;
	a ^= 0x55;
	t = (a & 0x0f) << 4;
	seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else
		t = (t + 0x108) << (seg - 1);
	return (a & 0x80) ? t : -t;
}

static uint8_t encode(int pcm)
{
	if (pcm > 32767)
		pcm = 32767;
	if (pcm < -32768)
		pcm = -32768;
	return cfg.alaw ? linear_to_alaw(pcm) : linear_to_ulaw(pcm);
}

static int decode(uint8_t b)
{
	return cfg.alaw ? alaw_to_linear(b) : ulaw_to_linear(b);
}

/* Peak amplitude of a 0 dBm0 sine in 16-bit linear (G.711: 3.14/3.17 dB
 * below the codec's full scale). */
static double dbm0_amplitude(double dbm0)
{
	return 22900.0 * pow(10.0, dbm0 / 20.0);
}

/* ------------------------------------------------------------------ */
/* DTMF                                                                 */

static const double dtmf_rows[4] = {697, 770, 852, 941};
static const double dtmf_cols[4] = {1209, 1336, 1477, 1633};
static const char dtmf_keys[4][5] = {"123A", "456B", "789C", "*0#D"};

static int dtmf_freqs(char d, double *lo, double *hi)
{
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 4; c++)
			if (dtmf_keys[r][c] == d) {
				*lo = dtmf_rows[r];
				*hi = dtmf_cols[c];
				return 0;
			}
	return -1;
}

/* Power of frequency f in x[0..n), scaled so a sine of amplitude A gives
 * about A*A/2 (the mean square of that sine). */
static double goertzel(const double *x, int n, double f)
{
	double w = 2.0 * M_PI * f / 8000.0, coeff = 2.0 * cos(w);
	double s1 = 0, s2 = 0;
	for (int i = 0; i < n; i++) {
		double s0 = x[i] + coeff * s1 - s2;
		s2 = s1;
		s1 = s0;
	}
	double p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
	return 2.0 * p / ((double)n * n);
}

struct dtmf_det {
	double buf[DTMF_N];
	int fill;
	char last;    /* digit seen in the previous block, or 0 */
	int run;      /* consecutive blocks with `last` */
	char held;    /* digit reported and not yet released */
	int quiet;    /* consecutive blocks without `held` */
};

static char dtmf_block(const double *x)
{
	double ms = 0, pr[4], pc[4];
	for (int i = 0; i < DTMF_N; i++)
		ms += x[i] * x[i];
	ms /= DTMF_N;
	if (ms <= 0)
		return 0;
	int r = 0, c = 0;
	for (int i = 0; i < 4; i++) {
		pr[i] = goertzel(x, DTMF_N, dtmf_rows[i]);
		pc[i] = goertzel(x, DTMF_N, dtmf_cols[i]);
		if (pr[i] > pr[r])
			r = i;
		if (pc[i] > pc[c])
			c = i;
	}
	double min_level = dbm0_amplitude(-30) * dbm0_amplitude(-30) / 2;
	if (pr[r] < min_level || pc[c] < min_level)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (i != r && pr[i] * 4 > pr[r])
			return 0;
		if (i != c && pc[i] * 4 > pc[c])
			return 0;
	}
	if (pr[r] > pc[c] * 6.3 || pc[c] > pr[r] * 6.3)
		return 0;
	if (pr[r] + pc[c] < 0.4 * ms)
		return 0;
	return dtmf_keys[r][c];
}

/* Feeds samples; returns a digit once per key press, or 0. */
static char dtmf_feed(struct dtmf_det *d, double s)
{
	d->buf[d->fill++] = s;
	if (d->fill < DTMF_N)
		return 0;
	d->fill = 0;
	char k = dtmf_block(d->buf);
	if (k && k == d->last)
		d->run++;
	else
		d->run = k ? 1 : 0;
	d->last = k;
	if (d->held) {
		if (k == d->held) {
			d->quiet = 0;
		} else if (++d->quiet >= 2) {
			d->held = 0;
		}
	}
	if (!d->held && k && d->run >= 2) {
		d->held = k;
		d->quiet = 0;
		return k;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* calls and channels                                                   */

enum src { SRC_SILENCE, SRC_TONE, SRC_FILE };

enum action {
	ACT_NONE,
	ACT_ANSWER,        /* alert + connect */
	ACT_DISCONNECT,    /* clear with due_cause */
	ACT_CLEAR_LATER,   /* after connect: clear with cause 16 */
};

struct call {
	int used;
	int num;
	q931_call *c;
	int ts;            /* timeslot, 0 if none yet */
	int outgoing;
	int responded;     /* we sent something in answer to their SETUP */
	int media;         /* B-channel frames flowing */
	int hangup_sent;   /* we called pri_hangup */
	/* what we send */
	enum src src;
	double tone_hz, tone_amp, phase;
	unsigned char *file;
	size_t file_len, file_pos;
	char dtmf_q[64];
	int dtmf_pos, dtmf_len;
	int dtmf_sample;
	/* what we receive */
	FILE *rec;
	long rx, tx, bad;
	struct dtmf_det det;
	/* the behaviour's next step */
	enum action due;
	int due_cause;
	int64_t due_at;
};

struct bchan {
	int listen_fd;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int call;          /* index into calls[], or -1 */
	int64_t retry_at;  /* connect mode */
};

static struct call calls[MAX_CALLS];
static struct bchan bch[MAX_TS];
static int next_call_num = 1;

static struct pri *pri;
static int d_listen = -1, d_fd = -1;
static int d_eof;
static int d_hup;       /* poll saw the peer hang up: a 0-byte read is EOF */
static int d_got_packet;
static int64_t d_reopen_at = -1; /* listen: re-create; connect: reconnect */
static long d_lost;

static struct call *call_by_num(int num)
{
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].used && calls[i].num == num)
			return &calls[i];
	return NULL;
}

static struct call *call_by_pri(q931_call *c)
{
	if (!c)
		return NULL;
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].used && calls[i].c == c)
			return &calls[i];
	return NULL;
}

static int call_index(struct call *k)
{
	return (int)(k - calls);
}

static struct call *call_new(q931_call *c, int outgoing)
{
	for (int i = 0; i < MAX_CALLS; i++) {
		if (!calls[i].used) {
			struct call *k = &calls[i];
			memset(k, 0, sizeof(*k));
			k->used = 1;
			k->num = next_call_num++;
			k->c = c;
			k->outgoing = outgoing;
			k->src = SRC_SILENCE;
			return k;
		}
	}
	return NULL;
}

static int ts_free(int ts)
{
	return ts > 0 && ts < MAX_TS && cfg.chan_enabled[ts] && bch[ts].call < 0;
}

static int pick_ts(void)
{
	if (cfg.node == PRI_NETWORK) {
		for (int ts = MAX_TS - 1; ts > 0; ts--)
			if (ts_free(ts))
				return ts;
	} else {
		for (int ts = 1; ts < MAX_TS; ts++)
			if (ts_free(ts))
				return ts;
	}
	return 0;
}

static void call_bind(struct call *k, int ts)
{
	if (k->ts > 0 && k->ts < MAX_TS && bch[k->ts].call == call_index(k))
		bch[k->ts].call = -1;
	k->ts = ts;
	if (ts > 0 && ts < MAX_TS)
		bch[ts].call = call_index(k);
}

static void call_end(struct call *k, const char *reason)
{
	/* The recording is complete on disk before anyone hears of the end. */
	if (k->rec)
		fclose(k->rec);
	emit("end call=%d channel=%d reason=%s rx=%ld tx=%ld bad=%ld", k->num, k->ts,
	     reason, k->rx, k->tx, k->bad);
	free(k->file);
	call_bind(k, 0);
	memset(k, 0, sizeof(*k));
}

static void media_default(struct call *k)
{
	if (cfg.play_file) {
		FILE *f = fopen(cfg.play_file, "rb");
		if (f) {
			unsigned char *buf = NULL;
			size_t len = 0, cap = 0, n;
			unsigned char tmp[4096];
			while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
				if (len + n > cap) {
					cap = (len + n) * 2;
					unsigned char *nb = realloc(buf, cap);
					if (!nb)
						break;
					buf = nb;
				}
				memcpy(buf + len, tmp, n);
				len += n;
			}
			fclose(f);
			if (len > 0) {
				free(k->file);
				k->file = buf;
				k->file_len = len;
				k->file_pos = 0;
				k->src = SRC_FILE;
				return;
			}
			free(buf);
		}
		emit("error cmd=play msg=cannot-read-play-file");
	}
	k->src = SRC_TONE;
	k->tone_hz = cfg.tone_hz;
	k->tone_amp = dbm0_amplitude(-10);
}

static void media_start(struct call *k)
{
	if (k->media)
		return;
	k->media = 1;
	if (cfg.record_dir && !k->rec) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/call-%d.%s", cfg.record_dir, k->num,
			 cfg.alaw ? "alaw" : "ulaw");
		k->rec = fopen(path, "wb");
	}
}

/* ------------------------------------------------------------------ */
/* sockets                                                              */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int fill_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -1;
	strcpy(a->sun_path, path);
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un a;
	if (fill_addr(&a, path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) || set_nonblock(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a;
	if (fill_addr(&a, path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) || set_nonblock(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void d_close(void)
{
	if (d_fd >= 0) {
		close(d_fd);
		d_fd = -1;
		emit("d-closed");
	}
	d_eof = 0;
}

static void b_close(int ts)
{
	if (bch[ts].fd >= 0) {
		close(bch[ts].fd);
		bch[ts].fd = -1;
		emit("b-closed channel=%d", ts);
		if (cfg.connect_mode)
			bch[ts].retry_at = now_ms() + 100;
	}
}

/* libpri I/O: see the header comment for the FCS findings. */
static int d_read(struct pri *p, void *buf, int buflen)
{
	(void)p;
	if (d_fd < 0)
		return 0;
	ssize_t n = recv(d_fd, buf, (size_t)buflen, MSG_DONTWAIT | MSG_TRUNC);
	if (n == 0) {
		/* SOCK_SEQPACKET: a 0-byte packet reads like EOF; only poll's
		 * hang-up tells them apart. */
		if (d_hup)
			d_eof = 1;
		else
			fprintf(stderr, "%lld dchan: dropped an empty packet\n", (long long)rel_ms());
		return 0;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			d_eof = 1;
		return 0;
	}
	d_got_packet = 1;
	if (n < 5 || n > buflen) {
		fprintf(stderr, "%lld dchan: dropped a %zd-byte packet\n", (long long)rel_ms(), n);
		return 0;
	}
	return (int)n;
}

static int d_write(struct pri *p, void *buf, int buflen)
{
	(void)p;
	if (d_fd < 0 || buflen <= 0) {
		d_lost++;
		return buflen;
	}
	ssize_t n = send(d_fd, buf, (size_t)buflen, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != buflen)
		d_lost++;
	return buflen; /* a frame lost on the wire, not a local error */
}

static void pri_msg(struct pri *p, char *s)
{
	(void)p;
	fprintf(stderr, "%lld libpri: %s", (long long)rel_ms(), s);
	size_t n = strlen(s);
	if (n == 0 || s[n - 1] != '\n')
		fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* libpri events                                                        */

static const char *chan_str(int channel, char *buf, size_t len)
{
	if (channel == -1 || CHAN_NO(channel) == 0xff)
		snprintf(buf, len, "all");
	else
		snprintf(buf, len, "%d", CHAN_NO(channel));
	return buf;
}

/* libpri (with the hangup fix) answers a SETUP it has not yet responded
 * to with RELEASE COMPLETE for these causes, and frees the call there and
 * then: no event follows. */
static int freed_at_once(const struct call *k, int cause)
{
	if (k->outgoing || k->responded)
		return 0;
	switch (cause) {
	case PRI_CAUSE_UNALLOCATED:
	case PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION:
	case PRI_CAUSE_REQUESTED_CHAN_UNAVAIL:
	case PRI_CAUSE_IDENTIFIED_CHANNEL_NOTEXIST:
	case PRI_CAUSE_INCOMPATIBLE_DESTINATION:
		return 1;
	default:
		return 0;
	}
}

static void do_hangup(struct call *k, int cause, const char *reason)
{
	if (k->hangup_sent)
		return;
	k->hangup_sent = 1;
	k->media = 0;
	k->due = ACT_NONE;
	int gone = freed_at_once(k, cause);
	pri_hangup(pri, k->c, cause);
	if (gone)
		call_end(k, reason);
}

static void do_proceed(struct call *k)
{
	k->responded = 1;
	pri_proceeding(pri, k->c, k->ts, 0);
}

static void do_alert(struct call *k)
{
	k->responded = 1;
	pri_acknowledge(pri, k->c, k->ts, 0);
}

static void do_answer(struct call *k)
{
	k->responded = 1;
	k->due = ACT_NONE;
	pri_answer(pri, k->c, k->ts, 0);
	emit("answered call=%d channel=%d", k->num, k->ts);
	if (k->src == SRC_SILENCE)
		media_default(k);
	media_start(k);
}

static void on_ring(pri_event *e)
{
	char called[40], calling[40];
	int want = e->ring.channel;
	int ts = (want == -1 || CHAN_NO(want) == 0xff) ? 0 : CHAN_NO(want);
	int exclusive = !e->ring.flexible;

	struct call *k = call_new(e->ring.call, 0);
	if (!k) {
		pri_hangup(pri, e->ring.call, PRI_CAUSE_SWITCH_CONGESTION);
		return;
	}
	clean(e->ring.callednum, called, sizeof(called));
	clean(e->ring.callingnum, calling, sizeof(calling));

	int cause = 0;
	if (ts && !ts_free(ts)) {
		if (exclusive)
			cause = PRI_CAUSE_REQUESTED_CHAN_UNAVAIL;
		else
			ts = 0;
	}
	if (!cause && !ts) {
		ts = pick_ts();
		if (!ts)
			cause = PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION;
	}
	if (!cause)
		call_bind(k, ts);
	emit("setup call=%d called=%s calling=%s channel=%d", k->num, called, calling, k->ts);
	if (cause) {
		do_hangup(k, cause, cause == PRI_CAUSE_REQUESTED_CHAN_UNAVAIL ? "channel-busy" : "no-channel");
		return;
	}

	if (cfg.manual) {
		do_proceed(k);
		return;
	}
	size_t n = strlen(e->ring.callednum);
	char last = n ? e->ring.callednum[n - 1] : '0';
	if (last == '1') {
		do_hangup(k, PRI_CAUSE_UNALLOCATED, "unallocated");
		return;
	}
	do_proceed(k);
	k->due_at = now_ms() + cfg.answer_ms;
	switch (last) {
	case '2':
		k->due = ACT_DISCONNECT;
		k->due_cause = PRI_CAUSE_USER_BUSY;
		break;
	case '3':
		do_alert(k);
		break;
	case '4':
		k->due = ACT_DISCONNECT;
		k->due_cause = PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION;
		break;
	case '6':
		do_alert(k);
		k->due = ACT_DISCONNECT;
		k->due_cause = PRI_CAUSE_NO_ANSWER;
		k->due_at = now_ms() + cfg.no_answer_ms;
		break;
	default:
		do_alert(k);
		k->due = ACT_ANSWER;
		k->due_cause = last == '5' ? PRI_CAUSE_NORMAL_CLEARING : 0;
		break;
	}
}

static void handle_event(pri_event *e)
{
	char cbuf[16];
	struct call *k;

	switch (e->e) {
	case PRI_EVENT_DCHAN_UP:
		emit("up");
		break;
	case PRI_EVENT_DCHAN_DOWN:
		emit("down");
		break;
	case PRI_EVENT_CONFIG_ERR: {
		char m[300];
		size_t j = 0;
		for (const char *s = e->err.err; *s && j + 1 < sizeof(m); s++)
			m[j++] = (*s == ' ') ? '_' : (*s == '\n' ? '\0' : *s);
		m[j] = '\0';
		emit("config-err msg=%s", m);
		break;
	}
	case PRI_EVENT_RING:
		on_ring(e);
		break;
	case PRI_EVENT_PROCEEDING:
		if ((k = call_by_pri(e->proceeding.call))) {
			int ch = CHAN_NO(e->proceeding.channel);
			if (e->proceeding.channel != -1 && ch != 0xff && ch != k->ts && ch > 0 &&
			    ch < MAX_TS)
				call_bind(k, ch);
			emit("proceeding call=%d channel=%d", k->num, k->ts);
		}
		break;
	case PRI_EVENT_PROGRESS:
		if ((k = call_by_pri(e->proceeding.call)))
			emit("progress call=%d", k->num);
		break;
	case PRI_EVENT_SETUP_ACK:
		if ((k = call_by_pri(e->setup_ack.call)))
			emit("setup-ack call=%d", k->num);
		break;
	case PRI_EVENT_RINGING:
		if ((k = call_by_pri(e->ringing.call)))
			emit("alerting call=%d", k->num);
		break;
	case PRI_EVENT_ANSWER:
		if ((k = call_by_pri(e->answer.call))) {
			emit("connect call=%d channel=%d", k->num, k->ts);
			media_start(k);
		}
		break;
	case PRI_EVENT_CONNECT_ACK:
		if ((k = call_by_pri(e->connect_ack.call)))
			emit("connect-ack call=%d", k->num);
		break;
	case PRI_EVENT_HANGUP_REQ:
		/* DISCONNECT received: answer with RELEASE. */
		if ((k = call_by_pri(e->hangup.call))) {
			emit("disconnect call=%d cause=%d", k->num, e->hangup.cause);
			k->media = 0;
			k->due = ACT_NONE;
			k->hangup_sent = 1;
		}
		pri_hangup(pri, e->hangup.call, e->hangup.cause);
		break;
	case PRI_EVENT_HANGUP:
		/* RELEASE or RELEASE COMPLETE received; the call stays alive in
		 * libpri until we pri_hangup it once more. */
		k = call_by_pri(e->hangup.call);
		if (k)
			emit("release call=%d cause=%d", k->num, e->hangup.cause);
		if (e->hangup.call)
			pri_hangup(pri, e->hangup.call, e->hangup.cause);
		if (k)
			call_end(k, "release");
		break;
	case PRI_EVENT_HANGUP_ACK:
		/* Our clearing completed; libpri has freed the call. */
		if ((k = call_by_pri(e->hangup.call))) {
			emit("hangup-ack call=%d cause=%d", k->num, e->hangup.cause);
			call_end(k, "hangup-ack");
		}
		break;
	case PRI_EVENT_RESTART: {
		int ch = e->restart.channel;
		int all = (ch == -1 || CHAN_NO(ch) == 0xff);
		emit("restart channel=%s", chan_str(ch, cbuf, sizeof(cbuf)));
		for (int i = 0; i < MAX_CALLS; i++) {
			k = &calls[i];
			if (k->used && (all || k->ts == CHAN_NO(ch))) {
				pri_destroycall(pri, k->c);
				call_end(k, "restart");
			}
		}
		break;
	}
	case PRI_EVENT_RESTART_ACK: {
		/* The channel is idle at both ends now (Q.931 5.5): forget any
		 * call we still had on it. */
		int ch = e->restartack.channel;
		int all = (ch == -1 || CHAN_NO(ch) == 0xff);
		emit("restart-ack channel=%s", chan_str(ch, cbuf, sizeof(cbuf)));
		for (int i = 0; i < MAX_CALLS; i++) {
			k = &calls[i];
			if (k->used && (all || k->ts == CHAN_NO(ch))) {
				pri_destroycall(pri, k->c);
				call_end(k, "restart");
			}
		}
		break;
	}
	case PRI_EVENT_KEYPAD_DIGIT:
		if ((k = call_by_pri(e->digit.call))) {
			char d[40];
			emit("keypad call=%d digits=%s", k->num, clean(e->digit.digits, d, sizeof(d)));
		}
		break;
	case PRI_EVENT_INFO_RECEIVED:
		if ((k = call_by_pri(e->ring.call))) {
			char d[40];
			emit("info call=%d digits=%s", k->num, clean(e->ring.callednum, d, sizeof(d)));
		}
		break;
	default:
		emit("other event=%s", pri_event2str(e->e));
		break;
	}
}

/* ------------------------------------------------------------------ */
/* commands                                                             */

static int parse_int(const char *s, int *out)
{
	char *end;
	if (!s || !*s)
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno || v < -1000000 || v > 1000000)
		return -1;
	*out = (int)v;
	return 0;
}

static struct call *cmd_call_arg(const char *cmd, const char *arg)
{
	int n;
	struct call *k;
	if (parse_int(arg, &n) || !(k = call_by_num(n))) {
		emit("error cmd=%s msg=no-such-call", cmd);
		return NULL;
	}
	return k;
}

static void cmd_call(char **av, int ac)
{
	int ts = 0;
	if (ac < 3) {
		emit("error cmd=call msg=usage");
		return;
	}
	if (ac > 3 && parse_int(av[3], &ts)) {
		emit("error cmd=call msg=bad-channel");
		return;
	}
	if (ts ? !ts_free(ts) : !(ts = pick_ts())) {
		emit("error cmd=call msg=no-free-channel");
		return;
	}
	q931_call *c = pri_new_call(pri);
	if (!c) {
		emit("error cmd=call msg=pri_new_call");
		return;
	}
	struct call *k = call_new(c, 1);
	if (!k) {
		pri_destroycall(pri, c);
		emit("error cmd=call msg=too-many-calls");
		return;
	}
	call_bind(k, ts);
	struct pri_sr *sr = pri_sr_new();
	pri_sr_set_channel(sr, ts, 1, 0);
	pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, cfg.alaw ? PRI_LAYER_1_ALAW : PRI_LAYER_1_ULAW);
	pri_sr_set_called(sr, av[1], PLAN_UNKNOWN_E164, 1);
	pri_sr_set_caller(sr, av[2], NULL, PLAN_UNKNOWN_E164, PRES_ALLOWED_USER_NUMBER_NOT_SCREENED);
	int res = pri_setup(pri, c, sr);
	pri_sr_free(sr);
	if (res) {
		emit("error cmd=call msg=pri_setup");
		pri_destroycall(pri, c);
		k->c = NULL;
		call_end(k, "setup-failed");
		return;
	}
	char called[40], calling[40];
	emit("dialing call=%d called=%s calling=%s channel=%d", k->num,
	     clean(av[1], called, sizeof(called)), clean(av[2], calling, sizeof(calling)), ts);
}

static void reopen_d_listener(void)
{
	d_listen = listen_on(cfg.dpath);
	if (d_listen < 0)
		emit("error cmd=close-d msg=cannot-listen");
}

/* send, waiting up to 1 s for room: a burst of test packets must not be
 * lost to a full socket buffer. */
static ssize_t send_waiting(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		struct pollfd p = {fd, POLLOUT, 0};
		if (poll(&p, 1, 1000) == 1)
			n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return n;
}

static int do_command(char *line)
{
	char *av[8];
	int ac = 0;
	for (char *t = strtok(line, " \t\r"); t && ac < 8; t = strtok(NULL, " \t\r"))
		av[ac++] = t;
	if (ac == 0)
		return 0;
	const char *cmd = av[0];
	struct call *k;

	if (!strcmp(cmd, "quit")) {
		emit("bye");
		return 1;
	} else if (!strcmp(cmd, "call")) {
		cmd_call(av, ac);
	} else if (!strcmp(cmd, "proceed") && ac >= 2) {
		if ((k = cmd_call_arg(cmd, av[1])))
			do_proceed(k);
	} else if (!strcmp(cmd, "alert") && ac >= 2) {
		if ((k = cmd_call_arg(cmd, av[1])))
			do_alert(k);
	} else if (!strcmp(cmd, "answer") && ac >= 2) {
		if ((k = cmd_call_arg(cmd, av[1])))
			do_answer(k);
	} else if (!strcmp(cmd, "hangup") && ac >= 3) {
		int cause;
		if (parse_int(av[2], &cause) || cause < 1 || cause > 127) {
			emit("error cmd=hangup msg=bad-cause");
		} else if ((k = cmd_call_arg(cmd, av[1]))) {
			if (k->hangup_sent)
				emit("error cmd=hangup msg=already-clearing");
			else
				do_hangup(k, cause, "rejected");
		}
	} else if (!strcmp(cmd, "restart") && ac >= 2) {
		int ts;
		if (!strcmp(av[1], "all")) {
			for (ts = 1; ts < MAX_TS; ts++)
				if (cfg.chan_enabled[ts])
					pri_reset(pri, ts);
		} else if (!parse_int(av[1], &ts) && ts > 0 && ts < MAX_TS) {
			pri_reset(pri, ts);
		} else {
			emit("error cmd=restart msg=bad-channel");
		}
	} else if (!strcmp(cmd, "tone") && ac >= 3) {
		int hz, dbm = -10;
		if (parse_int(av[2], &hz) || hz < 1 || hz > 3999 ||
		    (ac > 3 && parse_int(av[3], &dbm))) {
			emit("error cmd=tone msg=bad-args");
		} else if ((k = cmd_call_arg(cmd, av[1]))) {
			k->src = SRC_TONE;
			k->tone_hz = hz;
			k->tone_amp = dbm0_amplitude(dbm);
		}
	} else if (!strcmp(cmd, "silence") && ac >= 2) {
		if ((k = cmd_call_arg(cmd, av[1])))
			k->src = SRC_SILENCE;
	} else if (!strcmp(cmd, "play") && ac >= 3) {
		if ((k = cmd_call_arg(cmd, av[1]))) {
			const char *saved = cfg.play_file;
			cfg.play_file = av[2];
			media_default(k);
			cfg.play_file = saved;
		}
	} else if (!strcmp(cmd, "dtmf") && ac >= 3) {
		if ((k = cmd_call_arg(cmd, av[1]))) {
			double lo, hi;
			for (const char *d = av[2]; *d; d++) {
				if (dtmf_freqs(*d, &lo, &hi)) {
					emit("error cmd=dtmf msg=bad-digit");
					continue;
				}
				if (k->dtmf_len < (int)sizeof(k->dtmf_q))
					k->dtmf_q[k->dtmf_len++] = *d;
			}
		}
	} else if (!strcmp(cmd, "record") && ac >= 3) {
		if ((k = cmd_call_arg(cmd, av[1]))) {
			if (k->rec)
				fclose(k->rec);
			k->rec = fopen(av[2], "ab");
			if (!k->rec)
				emit("error cmd=record msg=cannot-open");
		}
	} else if (!strcmp(cmd, "close-d")) {
		int down = 0;
		if (ac > 1 && (parse_int(av[1], &down) || down < 0))
			down = 0;
		d_close();
		if (cfg.connect_mode) {
			d_reopen_at = now_ms() + (down > 0 ? down : 100);
		} else if (down > 0) {
			if (d_listen >= 0)
				close(d_listen);
			d_listen = -1;
			unlink(cfg.dpath);
			d_reopen_at = now_ms() + down;
		}
	} else if (!strcmp(cmd, "close-b") && ac >= 2) {
		int ts;
		if (!parse_int(av[1], &ts) && ts > 0 && ts < MAX_TS)
			b_close(ts);
		else
			emit("error cmd=close-b msg=bad-channel");
	} else if (!strcmp(cmd, "ping")) {
		emit("pong");
	} else if (!strcmp(cmd, "raw-d")) {
		uint8_t pkt[4096];
		size_t n = 0;
		const char *h = ac > 1 ? av[1] : "";
		int ok = strlen(h) % 2 == 0;
		for (; ok && h[0] && h[1] && n < sizeof(pkt); h += 2) {
			unsigned v;
			ok = sscanf(h, "%2x", &v) == 1;
			pkt[n++] = (uint8_t)v;
		}
		if (!ok || d_fd < 0)
			emit("error cmd=raw-d msg=%s", ok ? "not-connected" : "bad-hex");
		else if (send_waiting(d_fd, pkt, n) != (ssize_t)n)
			emit("error cmd=raw-d msg=send");
	} else if (!strcmp(cmd, "calls")) {
		for (int i = 0; i < MAX_CALLS; i++)
			if (calls[i].used)
				emit("call-state call=%d channel=%d media=%d clearing=%d rx=%ld tx=%ld",
				     calls[i].num, calls[i].ts, calls[i].media, calls[i].hangup_sent,
				     calls[i].rx, calls[i].tx);
	} else {
		emit("error cmd=%.32s msg=unknown-or-usage", cmd);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* media                                                                */

static void fill_frame(struct call *k, uint8_t *out)
{
	for (int i = 0; i < FRAME; i++) {
		double s = 0;
		if (k->dtmf_pos < k->dtmf_len) {
			/* 800 samples on, 800 off per digit */
			double lo, hi;
			int t = k->dtmf_sample++;
			if (t < 800 && !dtmf_freqs(k->dtmf_q[k->dtmf_pos], &lo, &hi)) {
				double a = dbm0_amplitude(-7);
				s = a * sin(2 * M_PI * lo * t / 8000.0) + a * sin(2 * M_PI * hi * t / 8000.0);
			}
			if (k->dtmf_sample >= 1600) {
				k->dtmf_sample = 0;
				k->dtmf_pos++;
				if (k->dtmf_pos >= k->dtmf_len)
					k->dtmf_pos = k->dtmf_len = 0;
			}
			out[i] = encode((int)lrint(s));
			continue;
		}
		switch (k->src) {
		case SRC_TONE:
			s = k->tone_amp * sin(k->phase);
			k->phase += 2 * M_PI * k->tone_hz / 8000.0;
			if (k->phase > 2 * M_PI)
				k->phase -= 2 * M_PI;
			out[i] = encode((int)lrint(s));
			break;
		case SRC_FILE:
			out[i] = k->file[k->file_pos++];
			if (k->file_pos >= k->file_len)
				k->file_pos = 0;
			break;
		default:
			out[i] = encode(0);
			break;
		}
	}
}

static void media_tick(void)
{
	uint8_t frame[FRAME];
	for (int i = 0; i < MAX_CALLS; i++) {
		struct call *k = &calls[i];
		if (!k->used || !k->media || k->ts <= 0 || bch[k->ts].fd < 0)
			continue;
		fill_frame(k, frame);
		ssize_t n = send(bch[k->ts].fd, frame, FRAME, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == FRAME)
			k->tx++;
	}
}

/* Whether the other end of fd has gone, asked now: the poll that woke us
 * may predate a close that came while we drained the socket. */
static int hung_up_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP, .revents = 0 };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static void b_readable(int ts, int hup)
{
	uint8_t buf[2048];
	for (int loop = 0; loop < 64; loop++) {
		ssize_t n = recv(bch[ts].fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n == 0) {
			if (hup || hung_up_now(bch[ts].fd)) {
				b_close(ts);
				return;
			}
			n = 0; /* an empty packet: a bad frame */
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				b_close(ts);
			return;
		}
		size_t got = (size_t)n > sizeof(buf) ? sizeof(buf) : (size_t)n;
		int ci = bch[ts].call;
		if (ci < 0 || !calls[ci].used)
			continue;
		struct call *k = &calls[ci];
		if (n != FRAME)
			k->bad++;
		if (n == 0)
			continue;
		k->rx++;
		if (k->rec)
			fwrite(buf, 1, got, k->rec);
		for (size_t j = 0; j < got; j++) {
			char d = dtmf_feed(&k->det, decode(buf[j]));
			if (d)
				emit("dtmf call=%d digit=%c", k->num, d);
		}
	}
}

/* ------------------------------------------------------------------ */
/* behaviours and the loop                                              */

static void run_due(int64_t now)
{
	for (int i = 0; i < MAX_CALLS; i++) {
		struct call *k = &calls[i];
		if (!k->used || k->due == ACT_NONE || k->due_at > now)
			continue;
		enum action a = k->due;
		k->due = ACT_NONE;
		switch (a) {
		case ACT_ANSWER:
			do_answer(k);
			if (k->due_cause) {
				k->due = ACT_CLEAR_LATER;
				k->due_at = now + cfg.clear_after_ms;
			}
			break;
		case ACT_DISCONNECT:
		case ACT_CLEAR_LATER:
			do_hangup(k, k->due_cause, "rejected");
			break;
		default:
			break;
		}
	}
}

static int64_t next_due(void)
{
	int64_t t = -1;
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].used && calls[i].due != ACT_NONE && (t < 0 || calls[i].due_at < t))
			t = calls[i].due_at;
	return t;
}

/* ms until libpri's next timer, or -1 */
static int64_t pri_next_ms(void)
{
	struct timeval *tv = pri_schedule_next(pri), now;
	if (!tv)
		return -1;
	gettimeofday(&now, NULL);
	int64_t d = (int64_t)(tv->tv_sec - now.tv_sec) * 1000 + (tv->tv_usec - now.tv_usec) / 1000;
	return d < 0 ? 0 : d;
}

static void run_pri_timers(void)
{
	for (int guard = 0; guard < 256; guard++) {
		int64_t d = pri_next_ms();
		if (d < 0 || d > 0)
			return;
		pri_event *e = pri_schedule_run(pri);
		if (e)
			handle_event(e);
	}
}

static void d_readable(void)
{
	for (int loop = 0; loop < 64 && d_fd >= 0; loop++) {
		d_got_packet = 0;
		pri_event *e = pri_check_event(pri);
		if (e)
			handle_event(e);
		if (d_eof) {
			d_close();
			if (cfg.connect_mode)
				d_reopen_at = now_ms() + 100;
			return;
		}
		if (!d_got_packet)
			return;
	}
}

static int parse_channels(const char *s)
{
	memset(cfg.chan_enabled, 0, sizeof(cfg.chan_enabled));
	char buf[256];
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
		int a, b;
		char *dash = strchr(t, '-');
		if (dash) {
			*dash = '\0';
			if (parse_int(t, &a) || parse_int(dash + 1, &b))
				return -1;
		} else if (parse_int(t, &a)) {
			return -1;
		} else {
			b = a;
		}
		if (a < 1 || b >= MAX_TS || a > b)
			return -1;
		for (int i = a; i <= b; i++)
			cfg.chan_enabled[i] = 1;
	}
	return 0;
}

static int bpath(int ts, char *out, size_t len)
{
	const char *p = strstr(cfg.bpattern, "{n}");
	if (!p)
		return -1;
	int n = snprintf(out, len, "%.*s%d%s", (int)(p - cfg.bpattern), cfg.bpattern, ts, p + 3);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* --g711-table FILE: for every 16-bit sample (-32768..32767) its A-law
 * and mu-law bytes, then for every code (0..255) its A-law and mu-law
 * decodings (i16, little-endian); so a test can check this file's codec
 * against an independent one. */
static int write_g711_table(const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return 2;
	for (int v = -32768; v < 32768; v++) {
		fputc(linear_to_alaw(v), f);
		fputc(linear_to_ulaw(v), f);
	}
	for (int b = 0; b < 256; b++) {
		int a = alaw_to_linear((uint8_t)b), u = ulaw_to_linear((uint8_t)b);
		fputc(a & 0xff, f);
		fputc((a >> 8) & 0xff, f);
		fputc(u & 0xff, f);
		fputc((u >> 8) & 0xff, f);
	}
	return fclose(f) ? 2 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: libpri_peer --dchannel PATH --bchannels PATTERN_WITH_{n} "
			"[--switch euroisdn|ni2] [--side network|user] [--law alaw|ulaw] "
			"[--channels 1-15,17-31] [--connect] [--max-seconds N] [--manual] "
			"[--tone-hz HZ] [--play FILE] [--record-dir DIR] [--answer-ms MS] "
			"[--clear-after-ms MS] [--no-answer-ms MS] [--timer NAME=MS] [--debug MASK]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *channels = NULL;
	const char *timers[32];
	int ntimers = 0;

	t0_ms = now_ms();
	signal(SIGPIPE, SIG_IGN);
	cfg.switchtype = PRI_SWITCH_EUROISDN_E1;
	cfg.node = PRI_NETWORK;
	cfg.alaw = 1;
	cfg.max_seconds = 120;
	cfg.tone_hz = 1000;
	cfg.answer_ms = 100;
	cfg.clear_after_ms = 1000;
	cfg.no_answer_ms = 2000;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
		int n;
#define NEEDV() do { if (!v) usage(); i++; } while (0)
		if (!strcmp(a, "--dchannel")) {
			NEEDV();
			cfg.dpath = v;
		} else if (!strcmp(a, "--bchannels")) {
			NEEDV();
			cfg.bpattern = v;
		} else if (!strcmp(a, "--switch")) {
			NEEDV();
			if (!strcmp(v, "euroisdn"))
				cfg.switchtype = PRI_SWITCH_EUROISDN_E1;
			else if (!strcmp(v, "ni2"))
				cfg.switchtype = PRI_SWITCH_NI2;
			else
				usage();
		} else if (!strcmp(a, "--side")) {
			NEEDV();
			if (!strcmp(v, "network"))
				cfg.node = PRI_NETWORK;
			else if (!strcmp(v, "user"))
				cfg.node = PRI_CPE;
			else
				usage();
		} else if (!strcmp(a, "--law")) {
			NEEDV();
			if (!strcmp(v, "alaw"))
				cfg.alaw = 1;
			else if (!strcmp(v, "ulaw"))
				cfg.alaw = 0;
			else
				usage();
		} else if (!strcmp(a, "--channels")) {
			NEEDV();
			channels = v;
		} else if (!strcmp(a, "--connect")) {
			cfg.connect_mode = 1;
		} else if (!strcmp(a, "--manual")) {
			cfg.manual = 1;
		} else if (!strcmp(a, "--max-seconds")) {
			NEEDV();
			if (parse_int(v, &cfg.max_seconds) || cfg.max_seconds < 1)
				usage();
		} else if (!strcmp(a, "--tone-hz")) {
			NEEDV();
			if (parse_int(v, &n) || n < 1 || n > 3999)
				usage();
			cfg.tone_hz = n;
		} else if (!strcmp(a, "--play")) {
			NEEDV();
			cfg.play_file = v;
		} else if (!strcmp(a, "--record-dir")) {
			NEEDV();
			cfg.record_dir = v;
		} else if (!strcmp(a, "--answer-ms")) {
			NEEDV();
			if (parse_int(v, &cfg.answer_ms) || cfg.answer_ms < 0)
				usage();
		} else if (!strcmp(a, "--clear-after-ms")) {
			NEEDV();
			if (parse_int(v, &cfg.clear_after_ms) || cfg.clear_after_ms < 0)
				usage();
		} else if (!strcmp(a, "--no-answer-ms")) {
			NEEDV();
			if (parse_int(v, &cfg.no_answer_ms) || cfg.no_answer_ms < 0)
				usage();
		} else if (!strcmp(a, "--timer")) {
			NEEDV();
			if (ntimers < 32)
				timers[ntimers++] = v;
		} else if (!strcmp(a, "--g711-table")) {
			NEEDV();
			return write_g711_table(v);
		} else if (!strcmp(a, "--debug")) {
			NEEDV();
			cfg.debug = (int)strtol(v, NULL, 0);
		} else {
			usage();
		}
#undef NEEDV
	}
	if (!cfg.dpath || !cfg.bpattern || !strstr(cfg.bpattern, "{n}"))
		usage();
	if (!channels)
		channels = cfg.alaw ? "1-15,17-31" : "1-23";
	if (parse_channels(channels))
		usage();

	for (int ts = 0; ts < MAX_TS; ts++) {
		bch[ts].listen_fd = bch[ts].fd = -1;
		bch[ts].call = -1;
		if (cfg.chan_enabled[ts] && bpath(ts, bch[ts].path, sizeof(bch[ts].path))) {
			fprintf(stderr, "B-channel path too long\n");
			return 2;
		}
	}

	pri_set_message(pri_msg);
	pri_set_error(pri_msg);
	pri = pri_new_cb(-1, cfg.node, cfg.switchtype, d_read, d_write, NULL);
	if (!pri) {
		fprintf(stderr, "pri_new_cb failed\n");
		return 2;
	}
	pri_set_debug(pri, cfg.debug);
	pri_hangup_fix_enable(pri, 1);
	for (int i = 0; i < ntimers; i++) {
		char name[32];
		const char *eq = strchr(timers[i], '=');
		int val, idx;
		if (!eq || (size_t)(eq - timers[i]) >= sizeof(name) || parse_int(eq + 1, &val)) {
			fprintf(stderr, "bad --timer %s\n", timers[i]);
			return 2;
		}
		memcpy(name, timers[i], (size_t)(eq - timers[i]));
		name[eq - timers[i]] = '\0';
		idx = pri_timer2idx(name);
		if (idx < 0 || pri_set_timer(pri, idx, val)) {
			fprintf(stderr, "unknown timer %s\n", name);
			return 2;
		}
	}

	if (!cfg.connect_mode) {
		d_listen = listen_on(cfg.dpath);
		if (d_listen < 0) {
			fprintf(stderr, "cannot listen on %s: %s\n", cfg.dpath, strerror(errno));
			return 2;
		}
		for (int ts = 1; ts < MAX_TS; ts++) {
			if (!cfg.chan_enabled[ts])
				continue;
			bch[ts].listen_fd = listen_on(bch[ts].path);
			if (bch[ts].listen_fd < 0) {
				fprintf(stderr, "cannot listen on %s: %s\n", bch[ts].path, strerror(errno));
				return 2;
			}
		}
	} else {
		d_reopen_at = now_ms();
		for (int ts = 1; ts < MAX_TS; ts++)
			bch[ts].retry_at = now_ms();
	}

	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {{0, 20 * 1000000}, {0, 20 * 1000000}};
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL)) {
		fprintf(stderr, "timerfd: %s\n", strerror(errno));
		return 2;
	}
	set_nonblock(0);
	emit("ready");

	char inbuf[4096];
	size_t inlen = 0;
	int stdin_open = 1;
	int64_t deadline = t0_ms + (int64_t)cfg.max_seconds * 1000;

	for (;;) {
		struct pollfd pfd[2 + 2 * MAX_TS + 3];
		int src[2 + 2 * MAX_TS + 3]; /* what each pollfd is */
		int np = 0;
		enum { P_STDIN = -1, P_TIMER = -2, P_DLISTEN = -3, P_D = -4 };
#define ADD(fd_, tag_) do { pfd[np].fd = (fd_); pfd[np].events = POLLIN | POLLRDHUP; pfd[np].revents = 0; src[np++] = (tag_); } while (0)
		if (stdin_open)
			ADD(0, P_STDIN);
		ADD(tfd, P_TIMER);
		if (d_listen >= 0)
			ADD(d_listen, P_DLISTEN);
		if (d_fd >= 0)
			ADD(d_fd, P_D);
		for (int ts = 1; ts < MAX_TS; ts++) {
			if (bch[ts].listen_fd >= 0)
				ADD(bch[ts].listen_fd, 1000 + ts);
			if (bch[ts].fd >= 0)
				ADD(bch[ts].fd, ts);
		}
#undef ADD
		int64_t now = now_ms();
		int64_t wait = deadline - now;
		int64_t t = pri_next_ms();
		if (t >= 0 && t < wait)
			wait = t;
		t = next_due();
		if (t >= 0 && t - now < wait)
			wait = t - now;
		if (d_reopen_at >= 0 && d_reopen_at - now < wait)
			wait = d_reopen_at - now;
		if (cfg.connect_mode)
			for (int ts = 1; ts < MAX_TS; ts++)
				if (cfg.chan_enabled[ts] && bch[ts].fd < 0 && bch[ts].retry_at - now < wait)
					wait = bch[ts].retry_at - now;
		if (wait < 0)
			wait = 0;
		if (poll(pfd, (nfds_t)np, (int)wait) < 0 && errno != EINTR) {
			fprintf(stderr, "poll: %s\n", strerror(errno));
			return 2;
		}

		for (int i = 0; i < np; i++) {
			if (!pfd[i].revents)
				continue;
			int tag = src[i];
			if (tag == P_STDIN) {
				ssize_t n = read(0, inbuf + inlen, sizeof(inbuf) - 1 - inlen);
				if (n == 0) {
					stdin_open = 0; /* the test went away */
					emit("bye");
					return 0;
				}
				if (n < 0)
					continue;
				inlen += (size_t)n;
				char *nl;
				while ((nl = memchr(inbuf, '\n', inlen))) {
					*nl = '\0';
					if (do_command(inbuf))
						return 0;
					size_t used = (size_t)(nl - inbuf) + 1;
					memmove(inbuf, nl + 1, inlen - used);
					inlen -= used;
				}
				if (inlen >= sizeof(inbuf) - 1) {
					emit("error cmd=- msg=line-too-long");
					inlen = 0;
				}
			} else if (tag == P_TIMER) {
				uint64_t exp = 0;
				if (read(tfd, &exp, sizeof(exp)) == sizeof(exp)) {
					if (exp > 5)
						exp = 5;
					for (uint64_t j = 0; j < exp; j++)
						media_tick();
				}
			} else if (tag == P_DLISTEN) {
				int fd = accept4(d_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd >= 0) {
					d_close();
					d_fd = fd;
					emit("d-connected");
				}
			} else if (tag == P_D) {
				d_hup = (pfd[i].revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
				d_readable();
			} else if (tag >= 1000) {
				int ts = tag - 1000;
				int fd = accept4(bch[ts].listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd >= 0) {
					if (bch[ts].fd >= 0) {
						close(bch[ts].fd);
						bch[ts].fd = -1;
					}
					bch[ts].fd = fd;
					emit("b-connected channel=%d", ts);
				}
			} else if (tag > 0) {
				if (bch[tag].fd >= 0)
					b_readable(tag, (pfd[i].revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0);
			}
		}

		now = now_ms();
		if (d_reopen_at >= 0 && now >= d_reopen_at) {
			if (cfg.connect_mode) {
				d_fd = connect_to(cfg.dpath);
				if (d_fd >= 0) {
					d_reopen_at = -1;
					emit("d-connected");
				} else {
					d_reopen_at = now + 100;
				}
			} else {
				d_reopen_at = -1;
				reopen_d_listener();
			}
		}
		if (cfg.connect_mode) {
			for (int ts = 1; ts < MAX_TS; ts++) {
				if (!cfg.chan_enabled[ts] || bch[ts].fd >= 0 || bch[ts].retry_at > now)
					continue;
				bch[ts].fd = connect_to(bch[ts].path);
				if (bch[ts].fd >= 0)
					emit("b-connected channel=%d", ts);
				else
					bch[ts].retry_at = now + 100;
			}
		}
		run_due(now);
		run_pri_timers();
		if (now_ms() >= deadline) {
			emit("timeout");
			return 3;
		}
	}
}
