//! Wall-clock throughput of one operation, and the report's table rows:
//! samples per second and real-time channels per core (samples/s divided
//! by the stream's sample rate), rivr beside spandsp where spandsp has the
//! same operation.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs `op` (which processes `samples_per_call` samples) repeatedly for
/// about `budget` after a short warm-up; returns samples per second.
pub fn measure(budget: Duration, samples_per_call: usize, mut op: impl FnMut()) -> f64 {
    let warm_up = budget / 10;
    let start = Instant::now();
    while start.elapsed() < warm_up {
        op();
    }
    // Batches keep the clock reads out of the measured work.
    let mut batch: u64 = 1;
    let mut calls: u64 = 0;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..batch {
            op();
        }
        calls += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            break elapsed;
        }
        if elapsed < budget / 20 {
            batch = batch.saturating_mul(2);
        }
    };
    black_box(calls) as f64 * samples_per_call as f64 / elapsed.as_secs_f64()
}

/// One line of the throughput table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured, e.g. "G.711 µ-law encode, 20 ms frames".
    pub operation: String,
    /// The stream's sample rate (for channels per core).
    pub rate_hz: u32,
    /// rivr's samples per second.
    pub rivr: f64,
    /// spandsp's samples per second, if spandsp has this operation.
    pub spandsp: Option<f64>,
}

/// Markdown table header matching [`Row::markdown`].
pub const HEADER: &str = "| operation | rate | rivr samples/s | rivr channels/core | spandsp samples/s | spandsp channels/core | rivr ÷ spandsp |\n|---|---:|---:|---:|---:|---:|---:|";

impl Row {
    /// The row as a Markdown table line.
    pub fn markdown(&self) -> String {
        let rate = f64::from(self.rate_hz);
        let (sp, sp_ch, ratio) = match self.spandsp {
            Some(s) if s > 0.0 => (
                human(s),
                format!("{:.0}", s / rate),
                format!("{:.2}", self.rivr / s),
            ),
            _ => ("—".into(), "—".into(), "—".into()),
        };
        format!(
            "| {} | {} kHz | {} | {:.0} | {} | {} | {} |",
            self.operation,
            self.rate_hz / 1000,
            human(self.rivr),
            self.rivr / rate,
            sp,
            sp_ch,
            ratio
        )
    }
}

/// 1234567.0 -> "1.23 M".
pub fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_counts_only_the_timed_calls() {
        // Each call takes at least 100 µs of wall time, so no honest count
        // can exceed 1000 samples / 100 µs = 10 M/s, however loaded the
        // machine; counting the warm-up calls too would exceed it by 10 %.
        let mut calls = 0u64;
        let rate = measure(Duration::from_millis(50), 1000, || {
            calls += 1;
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(100) {}
        });
        assert!(rate > 0.0 && rate <= 1.0e7, "{rate}");
        assert!(
            calls as f64 >= rate * 0.05 / 1000.0,
            "{calls} calls for {rate}"
        );
    }

    #[test]
    fn row_formats_channels_and_ratio() {
        let row = Row {
            operation: "x".into(),
            rate_hz: 8000,
            rivr: 8e8,
            spandsp: Some(4e8),
        };
        assert_eq!(
            row.markdown(),
            "| x | 8 kHz | 800.00 M | 100000 | 400.00 M | 50000 | 2.00 |"
        );
        let alone = Row {
            spandsp: None,
            ..row
        };
        assert!(alone.markdown().ends_with("| — | — | — |"));
        assert_eq!(human(1500.0), "1.5 k");
        assert_eq!(human(2.5e9), "2.50 G");
    }
}
