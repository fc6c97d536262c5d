//! `rivr serve`: wires config, SIP transport, media workers and scripts.
