//! G.711 Appendix I-style packet-loss concealment (placeholder).
