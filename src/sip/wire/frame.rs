//! Message framing on stream transports (RFC 3261 §18.3): where one message
//! ends in a TCP byte stream.

use super::raw::{
    canonical_name, content_length, find_header_end, is_token_byte, leading_crlf_len, Field,
};
use super::{WireError, MAX_MESSAGE_BYTES};

/// Stream transports (TCP): `Ok(Some(n))` → `buf[..n]` is one complete
/// message (header + Content-Length body); `Ok(None)` → need more bytes;
/// `Err` → the stream is unusable (close it).
///
/// CRLF keep-alives (RFC 5626 §3.5.1) and any CRLFs before a start line
/// (RFC 3261 §7.5) are counted into the frame: `n` covers them and
/// [`parse_message`](super::parse_message) skips them. A buffer that starts
/// with nothing but CRLFs yields those CRLFs as a frame of their own, so the
/// caller consumes them at once; [`is_keepalive`] tells such a frame apart
/// (the caller may answer a double-CRLF ping with a single CRLF pong).
///
/// A missing Content-Length is read as 0 (RFC 3261 §18.3 makes it mandatory
/// on streams; a message without one cannot have a body we could delimit).
/// A negative, non-numeric or repeated Content-Length, or a message above
/// [`MAX_MESSAGE_BYTES`], loses the framing for good (RFC 4475 §3.1.2.3,
/// §3.3.9): `Err`. RFC 4475 asks to answer such a request before closing:
/// when the error has a status, [`error_response`](super::error_response)
/// on the same buffer builds that answer from the header section (400 for a
/// bad Content-Length, 513 for an oversize message).
///
/// Each call scans `buf` from the start (O(len)); a transport should call it
/// once per read, not per byte, and bound how long a connection may sit on
/// an incomplete message, so a peer trickling bytes cannot make framing
/// quadratic for long.
pub fn frame_stream(buf: &[u8]) -> Result<Option<usize>, WireError> {
    frame_stream_limited(buf, MAX_MESSAGE_BYTES)
}

/// [`frame_stream`] with a smaller size limit (`[limits] max_message_bytes`):
/// a message above `max` bytes (at most [`MAX_MESSAGE_BYTES`]) is an error.
pub fn frame_stream_limited(buf: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    let max = max.min(MAX_MESSAGE_BYTES);
    let crlf = leading_crlf_len(buf);
    let rest = buf.get(crlf..).unwrap_or_default();
    if crlf > 0 && (rest.is_empty() || rest == b"\r") {
        return Ok(Some(crlf));
    }
    let Some(head_end) = find_header_end(rest) else {
        if rest.len() > max {
            return Err(too_large());
        }
        return Ok(None);
    };
    let head = rest.get(..head_end).unwrap_or_default();
    let body_len = header_content_length(head)?.unwrap_or(0);
    let message_len = head_end
        .checked_add(4)
        .and_then(|n| n.checked_add(body_len))
        .filter(|&n| n <= max)
        .ok_or_else(too_large)?;
    let total = crlf.checked_add(message_len).ok_or_else(too_large)?;
    Ok((buf.len() >= total).then_some(total))
}

/// True for a frame that is only CRLF keep-alive bytes.
pub fn is_keepalive(frame: &[u8]) -> bool {
    !frame.is_empty() && frame.iter().all(|&b| b == b'\r' || b == b'\n')
}

fn too_large() -> WireError {
    WireError {
        status: Some(513),
        reason: "message too large".into(),
    }
}

/// Content-Length from a header section without parsing anything else, so a
/// message with a bad start line is still framed (and then answered 400).
fn header_content_length(head: &[u8]) -> Result<Option<usize>, WireError> {
    let mut fields = Vec::new();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default();
        let name = name
            .get(
                ..name
                    .iter()
                    .rposition(|&b| is_token_byte(b))
                    .map_or(0, |p| p.saturating_add(1)),
            )
            .unwrap_or_default();
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if canonical_name(name) == Some("Content-Length") {
            let value =
                String::from_utf8_lossy(line.get(colon.saturating_add(1)..).unwrap_or_default());
            fields.push(Field {
                name: "Content-Length",
                value: value.trim().to_owned(),
            });
        }
    }
    content_length(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn complete_message_is_framed_byte_by_byte() {
        for cut in 0..MSG.len() {
            assert_eq!(frame_stream(&MSG[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(frame_stream(MSG), Ok(Some(MSG.len())));
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        assert_eq!(frame_stream(&two), Ok(Some(MSG.len())));
    }

    #[test]
    fn keepalives_are_their_own_frame_or_prefix() {
        assert_eq!(frame_stream(b"\r\n\r\n"), Ok(Some(4)));
        assert!(is_keepalive(b"\r\n\r\n"));
        assert_eq!(frame_stream(b"\r\n"), Ok(Some(2)));
        let mut with_ping = b"\r\n\r\n".to_vec();
        with_ping.extend_from_slice(MSG);
        assert_eq!(frame_stream(&with_ping), Ok(Some(4 + MSG.len())));
        assert!(!is_keepalive(&with_ping));
    }

    #[test]
    fn missing_content_length_is_zero() {
        assert_eq!(
            frame_stream(b"OPTIONS sip:a@b SIP/2.0\r\n\r\nXYZ"),
            Ok(Some(27))
        );
    }

    #[test]
    fn bad_content_length_closes_the_stream() {
        for cl in ["-999", "13, 5", "x"] {
            let msg = format!("INVITE sip:a@b SIP/2.0\r\nContent-Length: {cl}\r\n\r\n");
            assert!(frame_stream(msg.as_bytes()).is_err(), "{cl}");
        }
        let two = b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx";
        assert!(frame_stream(two).is_err());
    }

    #[test]
    fn framing_errors_can_still_be_answered_before_closing() {
        let ncl = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: -999\r\n\r\nbody";
        let err = frame_stream(ncl).unwrap_err();
        assert_eq!(err.status, Some(400));
        let resp = super::super::error_response(ncl, &err).unwrap();
        assert!(resp.starts_with(b"SIP/2.0 400 "));
    }

    #[test]
    fn a_smaller_limit_applies_to_head_and_body() {
        assert_eq!(frame_stream_limited(MSG, MSG.len()), Ok(Some(MSG.len())));
        assert!(frame_stream_limited(MSG, MSG.len() - 1).is_err());
        let head = vec![b'a'; 2000];
        assert_eq!(frame_stream_limited(&head, 2000), Ok(None));
        assert!(frame_stream_limited(&head, 1999).is_err());
    }

    #[test]
    fn oversize_is_an_error_not_a_wait() {
        let msg = format!(
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            MAX_MESSAGE_BYTES
        );
        assert!(frame_stream(msg.as_bytes()).is_err());
        let endless = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(frame_stream(&endless).is_err());
    }
}
