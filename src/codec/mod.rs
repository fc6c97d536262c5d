//! The codecs rivr speaks on the wire — names, RTP payload types, clock
//! rates, the G.711 law, and Opus's SDP `a=fmtp` parameters
//! (`opus_fmtp`). A leaf: both `sip::sdp` and `media` use it, and it uses
//! neither.

pub mod opus_fmtp;

/// Which of the two G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, North America and Japan).
    Ulaw,
    /// A-law (PCMA, everywhere else).
    Alaw,
}

impl Law {
    /// Both laws.
    pub const ALL: [Law; 2] = [Law::Ulaw, Law::Alaw];

    /// The code that decodes to (near) silence.
    pub fn silence_byte(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

/// An audio codec negotiated for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus (RFC 7587): dynamic payload type, `opus/48000/2`, mono 20 ms
    /// frames from rivr (10 ms to a peer that asks for 10 ms packets).
    Opus,
}

/// Payload type rivr gives Opus in its own offers (the usual choice of
/// WebRTC stacks and FreeSWITCH; any dynamic number would do).
pub const OFFER_OPUS_PT: u8 = 111;

impl Codec {
    /// Every codec rivr can send, in rivr's order of preference for offers:
    /// G.711 first, since every trunk and phone has it.
    pub const ALL: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::Opus];

    /// The SDP encoding name (`a=rtpmap:<pt> <name>/<rate>`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// The static RTP payload type (RFC 3551), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }

    /// The payload type rivr uses for the codec in its own offers.
    pub fn offer_payload_type(self) -> u8 {
        self.static_payload_type().unwrap_or(OFFER_OPUS_PT)
    }

    /// The RTP clock rate in Hz (48 kHz for Opus whatever the audio band,
    /// RFC 7587 §4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48_000,
        }
    }

    /// The channel count written in `a=rtpmap` (`opus/48000/2` always,
    /// RFC 7587 §7; none for G.711).
    pub fn rtpmap_channels(self) -> Option<u32> {
        match self {
            Codec::Pcmu | Codec::Pcma => None,
            Codec::Opus => Some(2),
        }
    }

    /// The RTP timestamp advance of one 20 ms frame.
    pub fn timestamp_step_20ms(self) -> u32 {
        self.clock_rate() / 50
    }

    /// Packet durations rivr sends in this codec, in ms. Opus goes in
    /// 20 ms frames (one, or two or three packed in one packet), or one
    /// 10 ms frame per packet, so it has no 30.
    pub fn send_ptimes(self) -> &'static [u32] {
        match self {
            Codec::Pcmu | Codec::Pcma => &[10, 20, 30, 40, 60],
            Codec::Opus => &[10, 20, 40, 60],
        }
    }

    /// The packet duration to send when the peer asked for `ptime` (its
    /// `a=ptime`, default 20) and at most `max_ptime` (`a=maxptime`): the
    /// supported duration nearest the request (the shorter one on a tie)
    /// among those within the cap, else the shortest supported one.
    pub fn send_ptime(self, ptime: Option<u32>, max_ptime: Option<u32>) -> u32 {
        let want = ptime.unwrap_or(20);
        let all = self.send_ptimes();
        let shortest = all.first().copied().unwrap_or(20);
        all.iter()
            .copied()
            .filter(|&p| max_ptime.is_none_or(|max| p <= max))
            .min_by_key(|&p| (p.abs_diff(want), p))
            .unwrap_or(shortest)
    }

    /// The G.711 law, for the two G.711 codecs.
    pub fn g711_law(self) -> Option<Law> {
        match self {
            Codec::Pcmu => Some(Law::Ulaw),
            Codec::Pcma => Some(Law::Alaw),
            Codec::Opus => None,
        }
    }
}

impl From<Law> for Codec {
    fn from(law: Law) -> Codec {
        match law {
            Law::Ulaw => Codec::Pcmu,
            Law::Alaw => Codec::Pcma,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_parameters() {
        assert_eq!(Codec::Pcmu.timestamp_step_20ms(), 160);
        assert_eq!(Codec::Opus.timestamp_step_20ms(), 960);
        assert_eq!(Codec::Opus.offer_payload_type(), 111);
        assert_eq!(Codec::Pcma.offer_payload_type(), 8);
        for law in Law::ALL {
            assert_eq!(Codec::from(law).g711_law(), Some(law));
        }
        assert_eq!(Codec::Opus.g711_law(), None);
    }

    /// Opus is sent at 10, 20, 40 or 60 ms: a 10 ms request (or a
    /// `maxptime` under 20) gets 10, 30 gets 20 (the shorter on a tie).
    #[test]
    fn opus_send_ptimes() {
        assert_eq!(Codec::Opus.send_ptime(Some(10), None), 10);
        assert_eq!(Codec::Opus.send_ptime(None, Some(15)), 10);
        assert_eq!(Codec::Opus.send_ptime(Some(20), Some(10)), 10);
        assert_eq!(Codec::Opus.send_ptime(Some(30), None), 20);
        assert_eq!(Codec::Opus.send_ptime(Some(5), None), 10);
        assert_eq!(Codec::Opus.send_ptime(None, None), 20);
    }
}
