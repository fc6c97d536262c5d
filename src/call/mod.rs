//! A call: one signalling leg, its media, and the control channel its script
//! drives.
