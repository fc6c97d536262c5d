//! SIP message framing and parsing (placeholder, filled by the wire work).
