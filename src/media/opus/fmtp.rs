//! How rivr encodes towards a receiver, from the Opus `a=fmtp` parameters
//! it declared (parsed by `codec::opus_fmtp`).

use super::OpusConfig;
use crate::codec::opus_fmtp::OpusParams;

impl OpusParams {
    /// How to encode towards the receiver that declared these parameters:
    /// no band above its `maxplaybackrate`, no more than its
    /// `maxaveragebitrate`, FEC only if it can use it, DTX and CBR if it
    /// asks. Always mono: rivr's audio is mono, and `stereo=1` is a
    /// preference, not a requirement (§7.1).
    pub fn encoder_config(&self, base: OpusConfig) -> OpusConfig {
        let bitrate = match (base.bitrate, self.max_average_bitrate) {
            (Some(b), Some(max)) => Some(b.min(max)),
            (None, Some(max)) => Some(max),
            (b, None) => b,
        };
        OpusConfig {
            max_playback_hz: self.max_playback_rate.min(base.max_playback_hz),
            bitrate,
            inband_fec: self.use_inband_fec,
            dtx: self.use_dtx,
            cbr: self.cbr,
            ..base
        }
    }
}
