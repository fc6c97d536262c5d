//! Test signals and measures shared by the codec tests.

/// A speech-like test signal at `rate_hz`: a glottal-pulse-like harmonic
/// series whose pitch glides between 110 and 190 Hz, shaped by two moving
/// formants, with a 4 Hz syllabic envelope and short pauses.
pub(crate) fn speech_like(rate_hz: u32, seconds: f32) -> Vec<i16> {
    let fs = rate_hz as f32;
    let n = (fs * seconds) as usize;
    let mut out = Vec::with_capacity(n);
    let mut phase = 0f32;
    for i in 0..n {
        let t = i as f32 / fs;
        let f0 = 150.0 + 40.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
        phase += f0 / fs;
        let f1 = 600.0 + 250.0 * (2.0 * std::f32::consts::PI * 1.3 * t).sin();
        let f2 = 1700.0 + 500.0 * (2.0 * std::f32::consts::PI * 0.9 * t).cos();
        let mut s = 0f32;
        let mut k = 1;
        while (k as f32) * f0 < 3400f32.min(fs / 2.0 - 200.0) {
            let fk = k as f32 * f0;
            let formant = 1.0 / (1.0 + ((fk - f1) / 150.0).powi(2))
                + 0.6 / (1.0 + ((fk - f2) / 200.0).powi(2))
                + 0.05;
            s +=
                formant * (2.0 * std::f32::consts::PI * k as f32 * phase).sin() / (k as f32).sqrt();
            k += 1;
        }
        let syllable = (std::f32::consts::PI * 4.0 * t).sin().abs();
        let pause = if (t % 1.5) > 1.3 { 0.0 } else { 1.0 };
        out.push((s * syllable * pause * 5000.0).clamp(-32767.0, 32767.0) as i16);
    }
    out
}

/// The best normalised cross-correlation of `test` against `reference` over
/// lags `0..=max_lag` (test delayed relative to reference), and that lag.
pub(crate) fn best_correlation(reference: &[i16], test: &[i16], max_lag: usize) -> (usize, f64) {
    let mut best = (0, f64::MIN);
    for lag in 0..=max_lag {
        let len = reference.len().min(test.len().saturating_sub(lag));
        if len == 0 {
            break;
        }
        let r = correlation(&reference[..len], &test[lag..lag + len]);
        if r > best.1 {
            best = (lag, r);
        }
    }
    best
}

/// Pearson-style normalised correlation of two equal-length signals.
pub(crate) fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// A sine of `freq` Hz at `rate_hz`, `n` samples, amplitude `amp`.
pub(crate) fn sine(freq: f32, rate_hz: u32, n: usize, amp: f32) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f32 / rate_hz as f32;
            (amp * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

/// RMS of a signal.
pub(crate) fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}
