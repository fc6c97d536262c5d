//! Bearer capability (Q.931 §4.5.5): what the B-channel carries. rivr
//! offers and accepts voice — speech or 3.1 kHz audio, circuit mode at
//! 64 kbit/s, G.711 in the span's law — but decodes any capability so a
//! data call can be refused with the right cause (65, 58) instead of
//! being dropped as malformed.

use super::{CodingStandard, IeError, InfoElement, Reader};
use crate::codec::Law;

code_enum! {
    /// Information transfer capability (octet 3, bits 5–1).
    TransferCapability: 0x1F {
        Speech = 0x00,
        UnrestrictedDigital = 0x08,
        RestrictedDigital = 0x09,
        /// 3.1 kHz audio: voice band, modems and fax allowed.
        Audio3k1 = 0x10,
        /// Unrestricted digital information with tones/announcements
        /// (formerly 7 kHz audio).
        DigitalWithTones = 0x11,
        Video = 0x18,
    }
}

code_enum! {
    /// Transfer mode (octet 4, bits 7–6).
    TransferMode: 0x03 {
        Circuit = 0,
        Packet = 2,
    }
}

code_enum! {
    /// Information transfer rate (octet 4, bits 5–1).
    TransferRate: 0x1F {
        /// The only value allowed with packet mode.
        PacketMode = 0x00,
        Kbit64 = 0x10,
        Kbit128 = 0x11,
        Kbit384 = 0x13,
        Kbit1536 = 0x15,
        Kbit1920 = 0x17,
        /// n × 64 kbit/s; the multiplier follows in octet 4.1.
        Multirate = 0x18,
    }
}

code_enum! {
    /// User information layer 1 protocol (octet 5, bits 5–1).
    Layer1: 0x1F {
        V110 = 0x01,
        Ulaw = 0x02,
        Alaw = 0x03,
        G721 = 0x04,
        H221 = 0x05,
        H223 = 0x06,
        NonItu = 0x07,
        V120 = 0x08,
        X31 = 0x09,
    }
}

/// Octet 5's layer identification (bits 7–6): layer 1.
const LAYER1_ID: u8 = 0x20;

/// The Bearer capability element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerCapability {
    pub coding: CodingStandard,
    pub capability: TransferCapability,
    pub mode: TransferMode,
    pub rate: TransferRate,
    /// The rate multiplier of octet 4.1 (7 bits); present exactly when
    /// `rate` is [`TransferRate::Multirate`] (encoded as 1 if missing).
    pub multiplier: Option<u8>,
    /// User information layer 1 protocol, when octet 5 is present.
    pub layer1: Option<Layer1>,
    /// Octets 5a–5d (rate adaption, modem type …) as received, each with
    /// its extension bit; only with `layer1`.
    pub layer1_ext: Vec<u8>,
    /// Octets 6 and 7 (layer 2 and 3 protocols) as received.
    pub layers23: Vec<u8>,
}

impl BearerCapability {
    /// Voice in a G.711 law: `capability` is speech or 3.1 kHz audio,
    /// ITU-T coding, circuit mode, 64 kbit/s.
    pub fn g711(capability: TransferCapability, law: Law) -> BearerCapability {
        BearerCapability {
            coding: CodingStandard::Itu,
            capability,
            mode: TransferMode::Circuit,
            rate: TransferRate::Kbit64,
            multiplier: None,
            layer1: Some(match law {
                Law::Ulaw => Layer1::Ulaw,
                Law::Alaw => Layer1::Alaw,
            }),
            layer1_ext: Vec::new(),
            layers23: Vec::new(),
        }
    }

    /// The G.711 law of octet 5, if that is what it names.
    pub fn law(&self) -> Option<Law> {
        match self.layer1 {
            Some(Layer1::Ulaw) => Some(Law::Ulaw),
            Some(Layer1::Alaw) => Some(Law::Alaw),
            _ => None,
        }
    }

    /// Whether a voice call can carry this: speech or 3.1 kHz audio,
    /// circuit mode, 64 kbit/s, and G.711 (or no layer 1 named, which
    /// NI-2 allows for speech).
    pub fn is_voice(&self) -> bool {
        matches!(
            self.capability,
            TransferCapability::Speech | TransferCapability::Audio3k1
        ) && self.mode == TransferMode::Circuit
            && self.rate == TransferRate::Kbit64
            && matches!(self.layer1, None | Some(Layer1::Ulaw | Layer1::Alaw))
    }
}

impl InfoElement for BearerCapability {
    const ID: u8 = super::id::BEARER_CAPABILITY;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        if o3 & 0x80 == 0 {
            // Octet 3a of the 1988 edition (negotiation); obsolete, skipped.
            r.ext_group();
        }
        let o4 = r.u8()?;
        if o4 & 0x80 == 0 {
            // Octets 4a/4b of the 1988 edition (structure, configuration,
            // establishment, symmetry); obsolete, skipped.
            r.ext_group();
        }
        let rate = TransferRate::from_bits(o4);
        let multiplier = if rate == TransferRate::Multirate {
            Some(r.u8()? & 0x7F)
        } else {
            None
        };
        let (layer1, layer1_ext) = match r.peek() {
            Some(o5) if o5 & 0x60 == LAYER1_ID => {
                r.u8()?;
                let ext = if o5 & 0x80 == 0 {
                    r.ext_group().to_vec()
                } else {
                    Vec::new()
                };
                (Some(Layer1::from_bits(o5)), ext)
            }
            _ => (None, Vec::new()),
        };
        Ok(BearerCapability {
            coding: CodingStandard::from_bits(o3 >> 5),
            capability: TransferCapability::from_bits(o3),
            mode: TransferMode::from_bits(o4 >> 5),
            rate,
            multiplier,
            layer1,
            layer1_ext,
            layers23: r.rest().to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(0x80 | self.coding.bits() << 5 | self.capability.bits());
        out.push(0x80 | self.mode.bits() << 5 | self.rate.bits());
        if self.rate == TransferRate::Multirate {
            out.push(0x80 | (self.multiplier.unwrap_or(1) & 0x7F));
        }
        if let Some(l1) = self.layer1 {
            let ext = if self.layer1_ext.is_empty() { 0x80 } else { 0 };
            out.push(ext | LAYER1_ID | l1.bits());
            out.extend_from_slice(&self.layer1_ext);
        }
        out.extend_from_slice(&self.layers23);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(b: &BearerCapability) -> Vec<u8> {
        let mut v = Vec::new();
        b.encode(&mut v);
        v
    }

    #[test]
    fn voice_encodings() {
        let speech_a = BearerCapability::g711(TransferCapability::Speech, Law::Alaw);
        assert_eq!(enc(&speech_a), [0x80, 0x90, 0xA3]);
        let speech_u = BearerCapability::g711(TransferCapability::Speech, Law::Ulaw);
        assert_eq!(enc(&speech_u), [0x80, 0x90, 0xA2]);
        let audio_u = BearerCapability::g711(TransferCapability::Audio3k1, Law::Ulaw);
        assert_eq!(enc(&audio_u), [0x90, 0x90, 0xA2]);
        for b in [speech_a, speech_u, audio_u] {
            assert!(b.is_voice());
            assert_eq!(BearerCapability::decode(&enc(&b)), Ok(b));
        }
    }

    #[test]
    fn unrestricted_digital_and_v110() {
        // 64k unrestricted digital, V.110 at 56 kbit/s (octets 5a/5b).
        let bytes = [0x88, 0x90, 0x21, 0x0F, 0x80];
        let b = BearerCapability::decode(&bytes).unwrap();
        assert_eq!(b.capability, TransferCapability::UnrestrictedDigital);
        assert_eq!(b.layer1, Some(Layer1::V110));
        assert_eq!(b.layer1_ext, [0x0F, 0x80]);
        assert!(!b.is_voice());
        assert_eq!(enc(&b), bytes);
        // No octet 5 at all (data calls often omit it).
        let b = BearerCapability::decode(&[0x88, 0x90]).unwrap();
        assert_eq!(b.layer1, None);
        assert_eq!(b.law(), None);
    }

    #[test]
    fn multirate_and_obsolete_octets() {
        let b = BearerCapability::decode(&[0x88, 0x98, 0x86]).unwrap();
        assert_eq!(b.rate, TransferRate::Multirate);
        assert_eq!(b.multiplier, Some(6));
        assert_eq!(enc(&b), [0x88, 0x98, 0x86]);
        assert_eq!(
            BearerCapability::decode(&[0x88, 0x98]),
            Err(IeError::Truncated)
        );
        // 1988-style octets 4a/4b are skipped, the rest still decodes.
        let b = BearerCapability::decode(&[0x80, 0x10, 0x00, 0x80, 0xA3]).unwrap();
        assert_eq!(b.law(), Some(Law::Alaw));
        assert_eq!(b.rate, TransferRate::Kbit64);
    }

    #[test]
    fn truncated() {
        assert_eq!(BearerCapability::decode(&[]), Err(IeError::Truncated));
        assert_eq!(BearerCapability::decode(&[0x80]), Err(IeError::Truncated));
        assert_eq!(
            BearerCapability::decode(&[0x00, 0x00]),
            Err(IeError::Truncated)
        );
    }
}
