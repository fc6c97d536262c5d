/*
 * A narrow C face of spandsp for codecs-bench: G.711 over buffers, the DTMF
 * receiver over buffers, and spandsp's packet loss concealment. Rust sees
 * only opaque handles and plain arrays, so the FFI surface is a handful of
 * functions with no struct layouts to keep in sync.
 *
 * <spandsp.h> is not used because it pulls in <tiffio.h> (fax support) that
 * libspandsp-dev does not depend on; only the headers needed are included,
 * in the order spandsp.h itself uses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include <spandsp/telephony.h>
#include <spandsp/logging.h>
#include <spandsp/complex.h>
#include <spandsp/bit_operations.h>
#include <spandsp/g711.h>
#include <spandsp/tone_detect.h>
#include <spandsp/super_tone_rx.h>
#include <spandsp/dtmf.h>
#include <spandsp/plc.h>

/* ---- G.711 ------------------------------------------------------------- */

/* mode: 0 = A-law, 1 = mu-law (spandsp's G711_ALAW / G711_ULAW). */
g711_state_t *rivr_shim_g711_new(int mode)
{
    return g711_init(NULL, mode ? G711_ULAW : G711_ALAW);
}

void rivr_shim_g711_free(g711_state_t *s)
{
    if (s)
        g711_free(s);
}

int rivr_shim_g711_encode(g711_state_t *s, uint8_t *out, const int16_t *pcm, int len)
{
    return g711_encode(s, out, pcm, len);
}

int rivr_shim_g711_decode(g711_state_t *s, int16_t *out, const uint8_t *payload, int len)
{
    return g711_decode(s, out, payload, len);
}

/* The header's inline per-sample conversions, exported so they can be
 * compared with rivr's over every input value. */
uint8_t rivr_shim_linear_to_ulaw(int16_t x) { return linear_to_ulaw(x); }
int16_t rivr_shim_ulaw_to_linear(uint8_t x) { return ulaw_to_linear(x); }
uint8_t rivr_shim_linear_to_alaw(int16_t x) { return linear_to_alaw(x); }
int16_t rivr_shim_alaw_to_linear(uint8_t x) { return alaw_to_linear(x); }

/* ---- DTMF receiver ----------------------------------------------------- */

/* The receiver with its defaults (8 dB normal / 4 dB reverse twist, dial
 * tone filter off, spandsp's own level threshold); digits are queued inside
 * spandsp and read back with rivr_shim_dtmf_rx. */
dtmf_rx_state_t *rivr_shim_dtmf_rx_new(void)
{
    return dtmf_rx_init(NULL, NULL, NULL);
}

void rivr_shim_dtmf_rx_free(dtmf_rx_state_t *s)
{
    if (s)
        dtmf_rx_free(s);
}

/* Feeds len samples; writes up to max digits reported so far into digits
 * and returns how many. */
int rivr_shim_dtmf_rx(dtmf_rx_state_t *s, const int16_t *pcm, int len, char *digits, int max)
{
    dtmf_rx(s, pcm, len);
    return (int) dtmf_rx_get(s, digits, max);
}

/* ---- Packet loss concealment ------------------------------------------- */

plc_state_t *rivr_shim_plc_new(void)
{
    return plc_init(NULL);
}

void rivr_shim_plc_free(plc_state_t *s)
{
    if (s)
        plc_free(s);
}

/* A received frame: spandsp keeps history and smooths the end of a gap. */
int rivr_shim_plc_rx(plc_state_t *s, int16_t *pcm, int len)
{
    return plc_rx(s, pcm, len);
}

/* A lost frame: synthesised into pcm. */
int rivr_shim_plc_fillin(plc_state_t *s, int16_t *pcm, int len)
{
    return plc_fillin(s, pcm, len);
}
