//! Test signals: espeak-ng speech (`speech`) and generated music-like and
//! speech-like material (`music`).

pub mod music;
pub mod speech;
