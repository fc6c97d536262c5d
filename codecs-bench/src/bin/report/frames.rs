//! Feeding a signal to an operation one frame at a time, wrapping around,
//! so a measurement can run for as long as its budget asks.

/// Cycles through a signal one frame at a time.
pub struct Frames<'a, T> {
    signal: &'a [T],
    at: usize,
    len: usize,
}

impl<'a, T> Frames<'a, T> {
    /// Frames of `len` samples of `signal`.
    pub fn new(signal: &'a [T], len: usize) -> Self {
        Self { signal, at: 0, len }
    }

    /// The next frame; back to the start when the signal runs out (empty
    /// if the signal is shorter than one frame).
    pub fn next_frame(&mut self) -> &'a [T] {
        if self.at + self.len > self.signal.len() {
            self.at = 0;
        }
        let frame = self.signal.get(self.at..self.at + self.len).unwrap_or(&[]);
        self.at += self.len;
        frame
    }
}
