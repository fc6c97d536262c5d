//! G.711 µ-law (PCMU) and A-law (PCMA) companding, bit-exact with the ITU-T
//! G.191 reference tools (`g711.c`: `ulaw_compress`, `ulaw_expand`,
//! `alaw_compress`, `alaw_expand`).
//!
//! Samples are 16-bit linear PCM. As in G.191, µ-law uses the 14 most
//! significant bits of the input and A-law the 13 most significant bits (of
//! which the least significant one never changes the code), and the expanders
//! return values left-justified in 16 bits. Negative inputs are taken as their
//! one's complement, exactly like the reference, so `-1` encodes like `0`.
//!
//! Every conversion is a lookup in a table built at compile time, so encoding
//! and decoding a frame costs one load per sample and never allocates.

pub use crate::codec::Law;

/// µ-law encode table, indexed by the top 14 bits of the sample taken as an
/// unsigned bit pattern (`s as u16 >> 2`), so any `i16` has an entry.
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();

/// A-law encode table, indexed by the top 12 bits of the sample taken as an
/// unsigned bit pattern (`s as u16 >> 4`): the 13th bit never changes the code.
static ALAW_ENCODE: [u8; 1 << 12] = build_alaw_encode();

/// µ-law decode table, one entry per code.
static ULAW_DECODE: [i16; 256] = build_ulaw_decode();

/// A-law decode table, one entry per code.
static ALAW_DECODE: [i16; 256] = build_alaw_decode();

/// Position of the highest set bit of a non-zero value.
const fn top_bit(v: u32) -> u32 {
    31 - v.leading_zeros()
}

/// µ-law code of a 14-bit sample (two's complement, `-8192..=8191`).
const fn ulaw_code(s14: i32) -> u8 {
    let sign = if s14 >= 0 { 0x80 } else { 0x00 };
    let magnitude = if s14 >= 0 { s14 } else { !s14 };
    // The bias of 33 aligns the µ-law segments on powers of two, so the
    // segment is found from the position of the leading one.
    let mut biased = (magnitude + 33) as u32;
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    let segment = top_bit(biased) - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    // µ-law transmits every bit inverted except the sign.
    sign | (0x7F ^ ((segment << 4) | mantissa) as u8)
}

/// A-law code of a sample's 11-bit magnitude field (`s >> 4`, two's complement).
const fn alaw_code(s12: i32) -> u8 {
    let sign = if s12 >= 0 { 0x80 } else { 0x00 };
    let magnitude = (if s12 >= 0 { s12 } else { !s12 }) as u32;
    let code = if magnitude < 16 {
        magnitude
    } else {
        let segment = top_bit(magnitude) - 3;
        let mantissa = (magnitude >> (segment - 1)) & 0x0F;
        (segment << 4) | mantissa
    };
    // A-law inverts the even bits (ITU-T G.711, Table 1 note).
    (sign | code as u8) ^ 0x55
}

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        // Sign-extend the 14-bit pattern back to a signed value.
        let s14 = ((i as i32) << 18) >> 18;
        table[i] = ulaw_code(s14);
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 1 << 12] {
    let mut table = [0u8; 1 << 12];
    let mut i = 0;
    while i < table.len() {
        let s12 = ((i as i32) << 20) >> 20;
        table[i] = alaw_code(s12);
        i += 1;
    }
    table
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let inverted = !(code as u32);
        let segment = (inverted >> 4) & 0x07;
        let mantissa = inverted & 0x0F;
        // ((2m + 33) << (seg + 2)) - 132, in 16-bit units: the midpoint of
        // the quantisation interval with the encoder's bias removed.
        let magnitude = ((((mantissa << 3) + 0x84) << segment) - 0x84) as i16;
        table[code] = if code & 0x80 != 0 {
            magnitude
        } else {
            -magnitude
        };
        code += 1;
    }
    table
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let toggled = (code as u32) ^ 0x55;
        let segment = (toggled >> 4) & 0x07;
        let mantissa = toggled & 0x0F;
        let magnitude = if segment == 0 {
            (mantissa << 4) + 8
        } else {
            // Segments above 0 carry an implicit leading one (0x100).
            ((mantissa << 4) + 0x108) << (segment - 1)
        } as i16;
        table[code] = if code & 0x80 != 0 {
            magnitude
        } else {
            -magnitude
        };
        code += 1;
    }
    table
}

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn linear_to_ulaw(s: i16) -> u8 {
    // The index is at most 0x3FFF, inside the 2^14-entry table.
    ULAW_ENCODE[usize::from(s as u16 >> 2)]
}

/// Decodes one µ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(b: u8) -> i16 {
    ULAW_DECODE[usize::from(b)]
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn linear_to_alaw(s: i16) -> u8 {
    // The index is at most 0x0FFF, inside the 2^12-entry table.
    ALAW_ENCODE[usize::from(s as u16 >> 4)]
}

/// Decodes one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(b: u8) -> i16 {
    ALAW_DECODE[usize::from(b)]
}

/// Encodes `pcm` into `out` with `law`, one byte per sample.
///
/// `out` should be at least as long as `pcm`; if it is shorter, only the
/// first `out.len()` samples are encoded (never a panic).
pub fn encode(law: Law, pcm: &[i16], out: &mut [u8]) {
    let table: &[u8] = match law {
        Law::Ulaw => &ULAW_ENCODE,
        Law::Alaw => &ALAW_ENCODE,
    };
    let shift = match law {
        Law::Ulaw => 2,
        Law::Alaw => 4,
    };
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = table
            .get(usize::from(s as u16 >> shift))
            .copied()
            .unwrap_or(law.silence_byte());
    }
}

/// Decodes `payload` into `out` with `law`, one sample per byte.
///
/// `out` should be at least as long as `payload`; if it is shorter, only the
/// first `out.len()` bytes are decoded (never a panic).
pub fn decode(law: Law, payload: &[u8], out: &mut [i16]) {
    let table = match law {
        Law::Ulaw => &ULAW_DECODE,
        Law::Alaw => &ALAW_DECODE,
    };
    for (o, &b) in out.iter_mut().zip(payload) {
        *o = table[usize::from(b)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- A transcription of the ITU-T G.191 `g711.c` reference loops. ----
    // Kept deliberately literal (C integer semantics, loops instead of
    // tables) so that it is an independent second implementation.

    fn g191_alaw_compress(lin: i16) -> u8 {
        let lin = i32::from(lin);
        let mut ix: i32 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if lin >= 0 {
            ix |= 0x0080;
        }
        ((ix ^ 0x0055) & 0xFF) as u8
    }

    fn g191_alaw_expand(log: u8) -> i16 {
        let log = i32::from(log);
        let mut ix = log ^ 0x0055;
        ix &= 0x007F;
        let iexp = ix >> 4;
        let mut mant = ix & 0x000F;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 0x0008;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        (if log > 127 { mant } else { -mant }) as i16
    }

    fn g191_ulaw_compress(lin: i16) -> u8 {
        let lin = i32::from(lin);
        let mut absno = if lin < 0 {
            ((!lin) >> 2) + 33
        } else {
            (lin >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let mut low_nibble = (absno >> segno) & 0x000F;
        low_nibble = 0x000F - low_nibble;
        let mut log = (high_nibble << 4) | low_nibble;
        if lin >= 0 {
            log |= 0x0080;
        }
        (log & 0xFF) as u8
    }

    fn g191_ulaw_expand(log: u8) -> i16 {
        let log = i32::from(log);
        let sign = if log < 0x0080 { -1 } else { 1 };
        let mut mantissa = !log;
        let exponent = (mantissa >> 4) & 0x0007;
        let segment = exponent + 1;
        mantissa &= 0x000F;
        let step = 4 << segment;
        (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
    }

    #[test]
    fn every_16_bit_input_matches_g191() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_ulaw(s), g191_ulaw_compress(s), "ulaw {s}");
            assert_eq!(linear_to_alaw(s), g191_alaw_compress(s), "alaw {s}");
        }
    }

    #[test]
    fn every_code_expands_like_g191() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_to_linear(b), g191_ulaw_expand(b), "ulaw {b:#04x}");
            assert_eq!(alaw_to_linear(b), g191_alaw_expand(b), "alaw {b:#04x}");
        }
    }

    #[test]
    fn companding_is_monotonic_and_clips_at_the_overload_points() {
        let mut prev = (
            ulaw_to_linear(linear_to_ulaw(i16::MIN)),
            alaw_to_linear(linear_to_alaw(i16::MIN)),
        );
        for s in i16::MIN + 1..=i16::MAX {
            let now = (
                ulaw_to_linear(linear_to_ulaw(s)),
                alaw_to_linear(linear_to_alaw(s)),
            );
            assert!(now.0 >= prev.0 && now.1 >= prev.1, "not monotonic at {s}");
            prev = now;
        }
        // The largest outputs are the last reconstruction values of Tables
        // 1a/2a: 8031 (µ-law, 14-bit) and 4032 (A-law, 13-bit).
        assert_eq!(ulaw_to_linear(linear_to_ulaw(i16::MAX)), 8031 * 4);
        assert_eq!(alaw_to_linear(linear_to_alaw(i16::MAX)), 4032 * 8);
        assert_eq!(ulaw_to_linear(linear_to_ulaw(i16::MIN)), -8031 * 4);
        assert_eq!(alaw_to_linear(linear_to_alaw(i16::MIN)), -4032 * 8);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#04x}");
            // µ-law has two codes for zero (0xFF "+0" and 0x7F "-0"); zero
            // re-encodes as +0, so 0x7F is the one code that does not survive.
            let want = if b == 0x7F { 0xFF } else { b };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), want, "ulaw {b:#04x}");
        }
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0xFF), 0);
    }

    /// One segment of a G.711 table, positive half, as printed in the
    /// recommendation: the lowest decision value of the segment, the
    /// quantisation step inside it, the first and last reconstruction
    /// values, and the character transmitted for the lowest interval.
    struct Segment {
        lower_decision: i32,
        step: i32,
        first_value: i32,
        last_value: i32,
        first_character: u8,
    }

    /// G.711 Table 2a (µ-law), normalised to the 8159 overload scale
    /// (14-bit linear). The transmitted character of the lowest interval of
    /// each segment, after the bit inversion, counts down from 0xFF.
    #[rustfmt::skip]
    const ULAW_TABLE_2A: [Segment; 8] = [
        Segment { lower_decision: 0, step: 2, first_value: 0, last_value: 30, first_character: 0xFF },
        Segment { lower_decision: 31, step: 4, first_value: 33, last_value: 93, first_character: 0xEF },
        Segment { lower_decision: 95, step: 8, first_value: 99, last_value: 219, first_character: 0xDF },
        Segment { lower_decision: 223, step: 16, first_value: 231, last_value: 471, first_character: 0xCF },
        Segment { lower_decision: 479, step: 32, first_value: 495, last_value: 975, first_character: 0xBF },
        Segment { lower_decision: 991, step: 64, first_value: 1023, last_value: 1983, first_character: 0xAF },
        Segment { lower_decision: 2015, step: 128, first_value: 2079, last_value: 3999, first_character: 0x9F },
        Segment { lower_decision: 4063, step: 256, first_value: 4191, last_value: 8031, first_character: 0x8F },
    ];

    /// G.711 Table 1a (A-law), normalised to the 4096 overload scale
    /// (13-bit linear). Characters are given after the even-bit inversion,
    /// so the lowest positive interval is sent as 0x80 ^ 0x55 = 0xD5.
    #[rustfmt::skip]
    const ALAW_TABLE_1A: [Segment; 8] = [
        Segment { lower_decision: 0, step: 2, first_value: 1, last_value: 31, first_character: 0xD5 },
        Segment { lower_decision: 32, step: 2, first_value: 33, last_value: 63, first_character: 0xC5 },
        Segment { lower_decision: 64, step: 4, first_value: 66, last_value: 126, first_character: 0xF5 },
        Segment { lower_decision: 128, step: 8, first_value: 132, last_value: 252, first_character: 0xE5 },
        Segment { lower_decision: 256, step: 16, first_value: 264, last_value: 504, first_character: 0x95 },
        Segment { lower_decision: 512, step: 32, first_value: 528, last_value: 1008, first_character: 0x85 },
        Segment { lower_decision: 1024, step: 64, first_value: 1056, last_value: 2016, first_character: 0xB5 },
        Segment { lower_decision: 2048, step: 128, first_value: 2112, last_value: 4032, first_character: 0xA5 },
    ];

    /// The top of the coding range: 8159 for µ-law, 4096 for A-law.
    const ULAW_OVERLOAD: i32 = 8159;
    const ALAW_OVERLOAD: i32 = 4096;

    /// The character of interval `k` (0..16) of a segment. µ-law counts the
    /// inverted code down, A-law counts the code up then re-applies 0x55.
    fn character(law: Law, seg: &Segment, k: i32) -> u8 {
        match law {
            Law::Ulaw => seg.first_character - k as u8,
            Law::Alaw => ((seg.first_character ^ 0x55) + k as u8) ^ 0x55,
        }
    }

    type Encoder = fn(i16) -> u8;
    type Decoder = fn(u8) -> i16;

    /// Walks one table: every interval's reconstruction value (decoder) and
    /// both ends of every decision interval (encoder), for both signs.
    /// `scale` maps the table's normalised units to 16-bit samples.
    fn check_table(law: Law, table: &[Segment; 8], overload: i32, scale: i32) {
        let (enc, dec): (Encoder, Decoder) = match law {
            Law::Ulaw => (linear_to_ulaw, ulaw_to_linear),
            Law::Alaw => (linear_to_alaw, alaw_to_linear),
        };
        for (n, seg) in table.iter().enumerate() {
            let upper = table.get(n + 1).map_or(overload, |s| s.lower_decision);
            let mut intervals = 0;
            for k in 0..16 {
                let ch = character(law, seg, k);
                let value = seg.first_value + k * seg.step;
                assert!(value <= seg.last_value);
                // Decoder: the table's reconstruction value, both signs
                // (the sign bit is bit 7, set for positive).
                assert_eq!(i32::from(dec(ch)), value * scale, "{law:?} {ch:#04x}");
                assert_eq!(i32::from(dec(ch & 0x7F)), -value * scale);
                // Encoder: the interval's first and last input. µ-law's
                // lowest interval is [0, 1), every other one is `step` wide.
                let lo = if law == Law::Ulaw && n == 0 && k > 0 {
                    seg.lower_decision + 2 * k - 1
                } else {
                    seg.lower_decision + k * seg.step
                };
                let hi = if law == Law::Ulaw && n == 0 {
                    lo + if k == 0 { 1 } else { 2 }
                } else {
                    lo + seg.step
                };
                for x in [lo, hi - 1] {
                    for r in 0..scale {
                        let pos = x * scale + r;
                        assert_eq!(enc(pos as i16), ch, "{law:?} +{x} (+{r})");
                        // G.191 takes negatives by one's complement.
                        assert_eq!(enc(!(pos as i16)), ch & 0x7F, "{law:?} -{x}");
                    }
                }
                intervals += 1;
                if k == 15 {
                    assert_eq!(value, seg.last_value, "{law:?} segment {n}");
                    assert_eq!(hi, upper, "{law:?} segment {n} end");
                }
            }
            assert_eq!(intervals, 16);
        }
    }

    #[test]
    fn ulaw_matches_g711_table_2a() {
        check_table(Law::Ulaw, &ULAW_TABLE_2A, ULAW_OVERLOAD, 4);
        // Beyond the last decision value everything clips to the end code.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_matches_g711_table_1a() {
        check_table(Law::Alaw, &ALAW_TABLE_1A, ALAW_OVERLOAD, 8);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    /// 1 kHz at 8 kHz, phase pi/8 so no sample falls on a zero crossing,
    /// starting on the negative half-cycle as G.711 Tables 5 and 6 do; at
    /// about 0 dBm0 (peak 22768 of 32768, 3.14 dB below A-law overload).
    fn milliwatt_pcm() -> [i16; 8] {
        let mut pcm = [0i16; 8];
        for (k, s) in pcm.iter_mut().enumerate() {
            let phase = std::f64::consts::PI * (1.0 / 8.0 + k as f64 / 4.0);
            *s = (-22768.0 * phase.sin()).round() as i16;
        }
        pcm
    }

    #[test]
    fn digital_milliwatt_sequences() {
        // G.711 Table 5 (µ-law) and Table 6 (A-law).
        let ulaw = [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E];
        let alaw = [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4];
        let pcm = milliwatt_pcm();
        let mut out = [0u8; 8];
        encode(Law::Ulaw, &pcm, &mut out);
        assert_eq!(out, ulaw);
        encode(Law::Alaw, &pcm, &mut out);
        assert_eq!(out, alaw);
    }

    #[test]
    fn buffers_encode_and_decode_like_single_samples() {
        let pcm: Vec<i16> = (0..4000)
            .map(|i| ((i * 977) % 65536 - 32768) as i16)
            .collect();
        for codec in Law::ALL {
            let mut bytes = vec![0u8; pcm.len()];
            encode(codec, &pcm, &mut bytes);
            let mut back = vec![0i16; pcm.len()];
            decode(codec, &bytes, &mut back);
            for ((&s, &b), &d) in pcm.iter().zip(&bytes).zip(&back) {
                let (e, x) = match codec {
                    Law::Ulaw => (linear_to_ulaw(s), ulaw_to_linear(b)),
                    Law::Alaw => (linear_to_alaw(s), alaw_to_linear(b)),
                };
                assert_eq!((b, d), (e, x));
            }
        }
    }

    #[test]
    fn short_output_buffers_are_not_overrun() {
        let mut out = [0u8; 3];
        encode(Law::Ulaw, &[0, 0, 0, 0, 0], &mut out);
        assert_eq!(out, [0xFF; 3]);
        let mut pcm = [7i16; 2];
        decode(Law::Alaw, &[0xD5, 0xD5, 0xD5], &mut pcm);
        assert_eq!(pcm, [8, 8]);
    }

    #[test]
    fn silence_bytes_decode_to_near_zero() {
        for codec in Law::ALL {
            let mut pcm = [99i16; 1];
            decode(codec, &[codec.silence_byte()], &mut pcm);
            assert!(pcm[0].abs() <= 8, "{codec:?} {}", pcm[0]);
        }
    }
}
