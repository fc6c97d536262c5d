//! The SDP text parser (RFC 4566 §5): line types rivr does not use are
//! skipped, lines offer/answer relies on are checked.

use super::{
    Direction, MediaDescription, Origin, RtcpAttr, RtpMap, SdpError, SessionDescription, MAX_MEDIA,
    MAX_SDP_BYTES,
};
use crate::sip::wire::is_forbidden_control;
use std::net::IpAddr;

fn syntax(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Syntax {
        line,
        reason: reason.into(),
    }
}

/// `c=IN IP4 <addr>[/ttl[/n]]`: `Ok(None)` for a non-IP address (an FQDN),
/// which rivr cannot send to without a resolver.
fn parse_connection(value: &str, line: usize) -> Result<Option<IpAddr>, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(net), Some(addr_type), Some(addr), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(syntax(line, "c= needs <nettype> <addrtype> <address>"));
    };
    if net != "IN" || !matches!(addr_type, "IP4" | "IP6") {
        return Err(syntax(line, "c= is not IN IP4/IP6"));
    }
    let host = addr.split('/').next().unwrap_or_default();
    let ip = host.parse::<IpAddr>().ok();
    match ip {
        Some(IpAddr::V4(_)) if addr_type != "IP4" => {
            Err(syntax(line, "c= IP4 with an IPv6 address"))
        }
        Some(IpAddr::V6(_)) if addr_type != "IP6" => {
            Err(syntax(line, "c= IP6 with an IPv4 address"))
        }
        _ => Ok(ip),
    }
}

fn parse_origin(value: &str, line: usize) -> Result<Origin, SdpError> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, session_version, _net, _addr_type, address] = f.as_slice() else {
        return Err(syntax(line, "o= needs six fields"));
    };
    Ok(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: (*session_version).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_media_line(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(syntax(line, "m= needs <media> <port> <proto> <fmt>..."));
    };
    // `<port>/<number of ports>` (RFC 4566 §5.14): rivr uses the first.
    let port = port
        .split('/')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| syntax(line, "m= port is not a number below 65536"))?;
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        proto: proto.to_owned(),
        formats: fields.map(str::to_owned).collect(),
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        max_ptime: None,
        direction: None,
        rtcp: None,
        attributes: Vec::new(),
    })
}

fn parse_pt(text: &str, line: usize) -> Result<u8, SdpError> {
    text.parse::<u8>()
        .ok()
        .filter(|&pt| pt <= 127)
        .ok_or_else(|| syntax(line, "payload type is not 0-127"))
}

/// A malformed rtpmap (RFC 4475's own bodies carry `a=rtpmap:31 LPC`) does
/// not fail the SDP, but its payload type is recorded with clock rate 0 so
/// that it can no longer fall back to a static assignment and match nothing.
/// `None` when even the payload type is unreadable.
fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.split_once(' ').unwrap_or((value, ""));
    let payload_type = pt.trim().parse::<u8>().ok().filter(|&pt| pt <= 127)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().unwrap_or_default().to_owned();
    let clock_rate = parts.next().and_then(|c| c.parse::<u32>().ok());
    let channels = parts.next().map(|c| c.parse::<u32>().ok());
    let unusable = RtpMap {
        payload_type,
        encoding: encoding.clone(),
        clock_rate: 0,
        channels: None,
    };
    match (clock_rate, channels) {
        (Some(clock_rate), None) => Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels: None,
        }),
        (Some(clock_rate), Some(Some(ch))) => Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels: Some(ch),
        }),
        _ => Some(unusable),
    }
}

fn parse_rtcp(value: &str, line: usize) -> Result<RtcpAttr, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let port = fields
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| syntax(line, "a=rtcp port is not a number"))?;
    let rest: Vec<&str> = fields.collect();
    let address = if rest.is_empty() {
        None
    } else {
        parse_connection(&rest.join(" "), line)?
    };
    Ok(RtcpAttr { port, address })
}

/// Longest packet time taken from `a=ptime` / `a=maxptime`: beyond it the
/// value is nonsense (RTP packets of seconds), so it is ignored.
const MAX_PTIME_MS: u32 = 1000;

/// A packet time in ms: digits, optionally with a fraction (`20.0`, which
/// some phones write; the fraction is dropped); `None` when unreadable, 0
/// or above [`MAX_PTIME_MS`].
pub(super) fn parse_ms(v: &str) -> Option<u32> {
    let v = v.trim();
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    whole
        .parse::<u32>()
        .ok()
        .filter(|ms| (1..=MAX_PTIME_MS).contains(ms))
}

/// Applies one `a=` line to the current media section.
fn media_attribute(
    m: &mut MediaDescription,
    name: &str,
    value: Option<&str>,
    line: usize,
) -> Result<(), SdpError> {
    match (name, value) {
        ("rtpmap", Some(v)) => m.rtpmaps.extend(parse_rtpmap(v)),
        ("fmtp", Some(v)) => {
            if let Some((pt, params)) = v.split_once(' ') {
                if let Ok(pt) = parse_pt(pt, line) {
                    m.fmtps.push((pt, params.trim().to_owned()));
                }
            }
        }
        // A ptime rivr cannot read is ignored: it is a hint (RFC 4566 §6).
        ("ptime", Some(v)) => m.ptime = parse_ms(v),
        ("maxptime", Some(v)) => m.max_ptime = parse_ms(v),
        ("rtcp", Some(v)) => m.rtcp = Some(parse_rtcp(v, line)?),
        (dir, None) => {
            if let Some(d) = Direction::from_attribute(dir) {
                m.direction = Some(d);
            }
        }
        _ => {}
    }
    m.attributes
        .push((name.to_owned(), value.map(str::to_owned)));
    Ok(())
}

/// Parses an SDP body. Unknown line types and attributes are skipped; a
/// malformed `v=`, `o=`, `c=`, `m=`, `a=rtpmap` or `a=rtcp` is an error.
pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge);
    }
    let numbered = || {
        text.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (i.saturating_add(1), l))
    };
    // RFC 4566 §9 allows control characters other than NUL, CR and LF in
    // free text (`s=`, `i=`, attribute values); rivr refuses them anywhere,
    // so no value it keeps can carry one (docs/security.md).
    if let Some((n, _)) = numbered().find(|(_, l)| l.bytes().any(is_forbidden_control)) {
        return Err(syntax(n, "control character"));
    }
    let mut lines = numbered().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, "v=0")) => {}
        Some((n, _)) => return Err(syntax(n, "the first line must be v=0")),
        None => return Err(SdpError::Missing("v=")),
    }
    let mut origin = None;
    let mut session_name = String::new();
    let mut connection = None;
    let mut direction = None;
    let mut media: Vec<MediaDescription> = Vec::new();
    for (n, line) in lines {
        let (kind, value) = match line.as_bytes() {
            [k, b'=', ..] if k.is_ascii_lowercase() => (*k, line.get(2..).unwrap_or_default()),
            _ => return Err(syntax(n, "not a <type>=<value> line")),
        };
        match (kind, media.last_mut()) {
            (b'm', _) => {
                if media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooLarge);
                }
                media.push(parse_media_line(value, n)?);
            }
            (b'o', None) => origin = Some(parse_origin(value, n)?),
            (b's', None) => session_name = value.to_owned(),
            (b'c', None) => connection = parse_connection(value, n)?,
            (b'c', Some(m)) => m.connection = parse_connection(value, n)?,
            (b'a', section) => {
                let (name, attr_value) = match value.split_once(':') {
                    Some((k, v)) => (k, Some(v)),
                    None => (value, None),
                };
                match section {
                    Some(m) => media_attribute(m, name, attr_value, n)?,
                    None if attr_value.is_none() => {
                        if let Some(d) = Direction::from_attribute(name) {
                            direction = Some(d);
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
    Ok(SessionDescription {
        origin: origin.ok_or(SdpError::Missing("o="))?,
        session_name,
        connection,
        direction,
        media,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a=ptime` and `a=maxptime`: integers (or `20.0`) from 1 to 1000 ms;
    /// anything else is left out, never an error.
    #[test]
    fn ptime_and_maxptime_are_read_or_ignored() {
        for (v, want) in [
            ("30", Some(30)),
            (" 20 ", Some(20)),
            ("20.0", Some(20)),
            ("22.5", Some(22)),
            ("1000", Some(1000)),
            ("1001", None),
            ("0", None),
            ("-20", None),
            ("+20", None),
            ("", None),
            (".5", None),
            ("20.x", None),
            ("4294967296", None),
            ("٣٠", None),
        ] {
            assert_eq!(super::parse_ms(v), want, "{v:?}");
        }
        let sd = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=ptime:30\r\na=maxptime:60\r\nm=audio 2 RTP/AVP 0\r\na=ptime:junk\r\na=maxptime:0\r\n").unwrap();
        assert_eq!(
            (sd.media[0].ptime, sd.media[0].max_ptime),
            (Some(30), Some(60))
        );
        assert_eq!((sd.media[1].ptime, sd.media[1].max_ptime), (None, None));
    }

    /// RFC 4566 §5's example.
    const RFC4566_EXAMPLE: &str = "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\ni=A Seminar on the session description protocol\r\nu=http://www.example.com/seminars/sdp.pdf\r\ne=j.doe@example.com (Jane Doe)\r\nc=IN IP4 224.2.17.12/127\r\nt=2873397496 2873404696\r\na=recvonly\r\nm=audio 49170 RTP/AVP 0\r\nm=video 51372 RTP/AVP 99\r\na=rtpmap:99 h263-1998/90000\r\n";

    #[test]
    fn rfc4566_example_parses() {
        let sd = parse(RFC4566_EXAMPLE).unwrap();
        assert_eq!(sd.origin.session_id, "2890844526");
        assert_eq!(sd.origin.address, "10.47.16.5");
        assert_eq!(sd.session_name, "SDP Seminar");
        assert_eq!(sd.connection, Some("224.2.17.12".parse().unwrap()));
        assert_eq!(sd.direction, Some(Direction::RecvOnly));
        assert_eq!(sd.media.len(), 2);
        assert_eq!(sd.media[0].port, 49170);
        assert_eq!(sd.media[0].formats, vec!["0"]);
        assert_eq!(
            sd.media[1].rtpmap(99),
            Some(&RtpMap {
                payload_type: 99,
                encoding: "h263-1998".into(),
                clock_rate: 90000,
                channels: None
            })
        );
    }

    #[test]
    fn bare_lf_unknown_lines_and_attributes_are_tolerated() {
        let sd = parse("v=0\no=- 1 1 IN IP6 ::1\ns=-\nz=whatever\nc=IN IP6 2001:db8::2\nt=0 0\nm=audio 4000/2 RTP/AVP 0\na=x-custom:1\na=rtcp:4001 IN IP6 2001:db8::3\na=ptime:junk\n").unwrap();
        assert_eq!(sd.connection, Some("2001:db8::2".parse().unwrap()));
        let m = &sd.media[0];
        assert_eq!(m.port, 4000);
        assert_eq!(m.ptime, None);
        assert_eq!(
            m.rtcp,
            Some(RtcpAttr {
                port: 4001,
                address: Some("2001:db8::3".parse().unwrap())
            })
        );
    }

    #[test]
    fn malformed_required_lines_are_errors() {
        let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n";
        for (bad, line) in [
            ("m=audio seventy RTP/AVP 0\r\n", 4),
            ("m=audio 70000 RTP/AVP 0\r\n", 4),
            ("c=IN IP4\r\n", 4),
            ("c=IN IP6 192.0.2.1\r\n", 4),
            ("m=audio 4000 RTP/AVP 0\r\na=rtcp:x\r\n", 5),
            ("garbage\r\n", 4),
        ] {
            match parse(&format!("{base}{bad}")) {
                Err(SdpError::Syntax { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(parse(""), Err(SdpError::Missing("v=")));
        assert_eq!(parse("v=0\r\ns=-\r\n"), Err(SdpError::Missing("o=")));
        assert!(matches!(
            parse("v=1\r\n"),
            Err(SdpError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn malformed_rtpmap_blocks_the_static_fallback_but_not_the_parse() {
        let sd = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0 31\r\na=rtpmap:31 LPC\r\na=rtpmap:0 G729\r\na=rtpmap:300 X/1\r\na=rtpmap\r\n").unwrap();
        let m = &sd.media[0];
        assert_eq!(m.rtpmap(0).map(|r| r.clock_rate), Some(0));
        assert_eq!(m.rtpmap(31).map(|r| r.encoding.as_str()), Some("LPC"));
        assert_eq!(m.rtpmaps.len(), 2);
    }

    #[test]
    fn control_characters_are_refused_with_their_line() {
        let base = [
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
        ];
        let forbidden = (0u8..0x20)
            .filter(|&b| b != b'\t' && b != b'\n')
            .chain([0x7f]);
        for b in forbidden {
            for (i, line) in base.iter().enumerate() {
                let mut lines: Vec<String> = base.iter().map(|l| l.to_string()).collect();
                lines[i] = format!("{line}{}x", b as char);
                let text = format!("{}\r\nm=audio 4000 RTP/AVP 0\r\n", lines.join("\r\n"));
                assert_eq!(
                    parse(&text),
                    Err(SdpError::Syntax {
                        line: i + 1,
                        reason: "control character".into()
                    }),
                    "{b:#04x} in line {}",
                    i + 1
                );
            }
        }
        // HTAB and a CRLF or bare LF line end are fine
        assert!(parse("v=0\r\no=- 1 1 IN IP4 h\ns=a\tb\r\n").is_ok());
    }

    #[test]
    fn fqdn_connection_is_none_not_error() {
        let sd =
            parse("v=0\r\no=- 1 1 IN IP4 host\r\ns=-\r\nc=IN IP4 host.example.com\r\n").unwrap();
        assert_eq!(sd.connection, None);
    }

    #[test]
    fn limits() {
        let many = format!(
            "v=0\r\no=- 1 1 IN IP4 h\r\n{}",
            "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1)
        );
        assert_eq!(parse(&many), Err(SdpError::TooLarge));
        assert_eq!(
            parse(&"a".repeat(MAX_SDP_BYTES + 1)),
            Err(SdpError::TooLarge)
        );
    }
}
