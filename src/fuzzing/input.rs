//! Structured fuzz input: a target reads typed fields (an operation code, a
//! source address index, a time step, a length-prefixed payload) from the raw
//! bytes libFuzzer or the stable harness gives it, and [`Seed`] writes the
//! same fields, so seed inputs are built by code rather than by hand.
//!
//! Hand-rolled rather than the `arbitrary` crate: `arbitrary` decodes but
//! cannot encode, and the seeds must be encoded; the format here is simple
//! enough that a byte-level mutation still lands on a meaningful field. Every
//! read succeeds: an exhausted input reads as zeros and empty slices.

/// A cursor over fuzz input bytes.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// One of `items`, chosen by the next byte (`items` must not be empty).
    pub fn choose<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        let i = usize::from(self.u8()) % items.len().max(1);
        items.get(i).copied()
    }

    /// Up to `n` bytes (fewer if the input ends first).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A slice whose length (at most 255) is in the next byte.
    pub fn bytes8(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    /// A slice whose length is in the next two bytes, capped at `max`.
    pub fn bytes16(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u16()).min(max);
        self.take(n)
    }
}

/// Writes the fields an [`Input`] reads, in the same order: how seeds are
/// made.
#[derive(Debug, Clone, Default)]
pub struct Seed(Vec<u8>);

impl Seed {
    /// An empty input.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded input.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// Two bytes, big-endian.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Four bytes, big-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes (read back with [`Input::take`]).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    /// A slice with a one-byte length (truncated to 255 bytes).
    pub fn bytes8(&mut self, b: &[u8]) -> &mut Self {
        let b = b.get(..b.len().min(255)).unwrap_or_default();
        self.u8(b.len() as u8).raw(b)
    }

    /// A slice with a two-byte length (truncated to 65535 bytes).
    pub fn bytes16(&mut self, b: &[u8]) -> &mut Self {
        let b = b.get(..b.len().min(0xFFFF)).unwrap_or_default();
        self.u16(b.len() as u16).raw(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fields_read_back_in_order() {
        let mut s = Seed::new();
        s.u8(7)
            .u16(0xBEEF)
            .u32(0xDEAD_BEEF)
            .bytes8(b"abc")
            .bytes16(b"hello");
        let bytes = s.into_bytes();
        let mut i = Input::new(&bytes);
        assert_eq!(i.u8(), 7);
        assert_eq!(i.u16(), 0xBEEF);
        assert_eq!(i.u32(), 0xDEAD_BEEF);
        assert_eq!(i.bytes8(), b"abc");
        assert_eq!(i.bytes16(3), b"hel");
        assert_eq!(i.take(10), b"lo");
        assert!(i.is_empty());
        assert_eq!((i.u8(), i.u32(), i.bytes8()), (0, 0, &[][..]));
    }
}
