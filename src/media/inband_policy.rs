//! Which legs run the in-band DTMF detector (`[media] inband_dtmf`). The
//! detector is the costliest per-frame step of a quiet call, and a caller
//! whose offer negotiated RFC 4733 telephone-events sends its keys as
//! events: `auto` (the default, as Asterisk's and FreeSWITCH's defaults
//! do) runs it only on legs without telephone-events; `always` runs it on
//! every leg and merges both sources into one press (rivr's behaviour
//! before the setting); `never` hears keys only as events and SIP INFO.
//! PRI B-channels carry keys only as tones: they always run it.

/// The `[media] inband_dtmf` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InbandDtmf {
    #[default]
    Auto,
    Always,
    Never,
}

impl InbandDtmf {
    /// Whether a leg runs the detector; `telephone_events` when the leg
    /// negotiated RFC 4733 events.
    pub fn runs(self, telephone_events: bool) -> bool {
        match self {
            InbandDtmf::Auto => !telephone_events,
            InbandDtmf::Always => true,
            InbandDtmf::Never => false,
        }
    }

    /// The config's word for it.
    pub fn parse(word: &str) -> Option<InbandDtmf> {
        match word {
            "auto" => Some(InbandDtmf::Auto),
            "always" => Some(InbandDtmf::Always),
            "never" => Some(InbandDtmf::Never),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_runs_only_without_telephone_events() {
        assert!(InbandDtmf::Auto.runs(false));
        assert!(!InbandDtmf::Auto.runs(true));
        assert!(InbandDtmf::Always.runs(true) && InbandDtmf::Always.runs(false));
        assert!(!InbandDtmf::Never.runs(true) && !InbandDtmf::Never.runs(false));
        assert_eq!(InbandDtmf::parse("auto"), Some(InbandDtmf::Auto));
        assert_eq!(InbandDtmf::parse("Always"), None);
    }
}
