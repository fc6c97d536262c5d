//! Q.921 (LAPD), the D-channel's data link: frames and the point-to-point
//! data link state machine (TEI 0, SAPI 0). Being written.
