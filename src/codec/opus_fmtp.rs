//! The Opus `a=fmtp` parameters of RFC 7587 §6.1 and how rivr answers them
//! (§7).
//!
//! Every Opus parameter is a declaration about the declaring side's own
//! receiver (`maxplaybackrate`, `stereo`, `useinbandfec`, `usedtx`, `cbr`,
//! `maxaveragebitrate`, `ptime`, `maxptime`) or its sender (`sprop-*`), so
//! each direction is configured separately: what the offer says shapes how
//! rivr encodes ([`OpusParams::encoder_config`]), and what rivr puts in its
//! answer says how it wants to receive ([`fmtp_answer`]). Parameters are
//! hints: unknown or malformed ones are ignored, never a reason to reject.

/// The highest audio rate rivr's receive path uses: calls are bridged to
/// 8 kHz telephony, recorded and DTMF-detected at 8 or 16 kHz, so anything
/// above wideband would be coded, sent and then thrown away.
pub const LOCAL_MAX_PLAYBACK_HZ: u32 = 16_000;

/// The highest audio rate rivr sends: prompts are cached at 8 kHz and
/// transcoded legs are G.711, but TTS or a wideband peer may reach 16 kHz.
pub const LOCAL_MAX_CAPTURE_HZ: u32 = 16_000;

/// Packet duration rivr sends and asks for.
const LOCAL_PTIME_MS: u32 = 20;

/// The Opus parameters of one `a=fmtp` line, with RFC 7587 defaults where
/// absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    /// `maxplaybackrate` (default 48000, clamped to 8000..=48000).
    pub max_playback_rate: u32,
    /// `sprop-maxcapturerate` (default 48000, clamped to 8000..=48000).
    pub sprop_max_capture_rate: u32,
    /// `maxptime` in ms, if given (3..=120).
    pub max_ptime: Option<u32>,
    /// `ptime` in ms, if given (3..=120).
    pub ptime: Option<u32>,
    /// `maxaveragebitrate` in b/s, if given (6000..=510000).
    pub max_average_bitrate: Option<u32>,
    /// `stereo=1`: the receiver prefers stereo.
    pub stereo: bool,
    /// `sprop-stereo=1`: the sender is likely to send stereo.
    pub sprop_stereo: bool,
    /// `cbr=1`: the receiver prefers constant bit rate.
    pub cbr: bool,
    /// `useinbandfec=1`: the receiver can use in-band FEC.
    pub use_inband_fec: bool,
    /// `usedtx=1`: the receiver prefers DTX.
    pub use_dtx: bool,
}

impl Default for OpusParams {
    fn default() -> Self {
        OpusParams {
            max_playback_rate: 48_000,
            sprop_max_capture_rate: 48_000,
            max_ptime: None,
            ptime: None,
            max_average_bitrate: None,
            stereo: false,
            sprop_stereo: false,
            cbr: false,
            use_inband_fec: false,
            use_dtx: false,
        }
    }
}

/// Parses the parameter part of an `a=fmtp` line (`key=value; key=value`).
/// A leading payload type (`111 minptime=10;...`) is skipped. Unknown keys,
/// bad numbers and out-of-range values are ignored (RFC 7587 §6.1: the
/// parameters are declarative hints).
pub fn parse_fmtp(fmtp: &str) -> OpusParams {
    let mut p = OpusParams::default();
    let body = fmtp.trim();
    let body = match body.split_once(char::is_whitespace) {
        Some((pt, rest)) if !pt.is_empty() && pt.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => body,
    };
    for item in body.split(';') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let number = value.parse::<u32>().ok();
        let flag = match value {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        };
        let in_range = |lo: u32, hi: u32| number.filter(|n| (lo..=hi).contains(n));
        match key.as_str() {
            "maxplaybackrate" => {
                if let Some(n) = number {
                    p.max_playback_rate = n.clamp(8000, 48_000);
                }
            }
            "sprop-maxcapturerate" => {
                if let Some(n) = number {
                    p.sprop_max_capture_rate = n.clamp(8000, 48_000);
                }
            }
            "maxptime" => p.max_ptime = in_range(3, 120).or(p.max_ptime),
            "ptime" => p.ptime = in_range(3, 120).or(p.ptime),
            "maxaveragebitrate" => {
                p.max_average_bitrate = in_range(6000, 510_000).or(p.max_average_bitrate);
            }
            "stereo" => p.stereo = flag.unwrap_or(p.stereo),
            "sprop-stereo" => p.sprop_stereo = flag.unwrap_or(p.sprop_stereo),
            "cbr" => p.cbr = flag.unwrap_or(p.cbr),
            "useinbandfec" => p.use_inband_fec = flag.unwrap_or(p.use_inband_fec),
            "usedtx" => p.use_dtx = flag.unwrap_or(p.use_dtx),
            _ => {}
        }
    }
    p
}

/// rivr's `a=fmtp` parameters for Opus in an answer to an offer carrying
/// `offer_fmtp` (or in an offer, with `None`).
///
/// - `maxplaybackrate`: rivr's own limit, lowered to the offerer's
///   `sprop-maxcapturerate` when that is lower (nothing above it will come);
/// - `sprop-maxcapturerate`: rivr's capture limit, lowered to the offerer's
///   `maxplaybackrate` (rivr will not send a band the peer cannot play);
/// - `stereo=0; sprop-stereo=0`: rivr receives and sends mono;
/// - `useinbandfec=1`: rivr's decoder recovers lost packets from FEC;
/// - `ptime=20`: how rivr likes to receive. (The offerer's `ptime` and
///   `maxptime` shape what rivr *sends*: 10, 20, 40 or 60 ms, see
///   `Codec::send_ptime`; 20 ms is the default, which every Opus receiver
///   must accept, RFC 7587 §4.2.)
pub fn fmtp_answer(offer_fmtp: Option<&str>) -> String {
    let offer = offer_fmtp.map(parse_fmtp).unwrap_or_default();
    let playback = LOCAL_MAX_PLAYBACK_HZ.min(offer.sprop_max_capture_rate);
    let capture = LOCAL_MAX_CAPTURE_HZ.min(offer.max_playback_rate);
    let ptime = LOCAL_PTIME_MS;
    format!(
        "maxplaybackrate={playback}; sprop-maxcapturerate={capture}; stereo=0; sprop-stereo=0; useinbandfec=1; ptime={ptime}"
    )
}
