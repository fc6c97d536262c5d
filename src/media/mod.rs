//! Media: codecs, prompts, the RTP session, DTMF, the per-leg media core
//! (`core`: what a leg hears, plays, sends, and the legs it is joined to),
//! answering-machine, beep (`amd`) and SIT / call-progress (`sit`)
//! classifiers, and the media workers that serve many legs per 20 ms tick; recording a
//! leg's caller to a file (`record`). Cores here
//! are sans-IO: they take samples or packets and `now`, and own no socket
//! or clock (except `worker`, which is the I/O layer: packet paths,
//! threads, the tick).

pub mod amd;
pub mod classify;
pub mod core;
pub mod dtmf_detect;
pub mod dtmf_merge;
pub mod events;
pub mod g711;
pub mod impair;
pub mod inband_policy;
pub mod jitter;
pub mod listener;
pub mod netem;
pub mod opus;
pub mod packetizer;
pub mod plc;
pub mod ports;
pub mod prompt;
pub mod record;
pub mod resample;
pub mod rfc4733;
pub mod rtcp;
pub mod rtp_session;
pub mod send_gate;
pub mod sit;
pub mod stream_resample;
pub mod tone;
pub mod transcode;
pub mod tts;
pub mod worker;
