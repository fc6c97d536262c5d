//! Why a call leg ended, as a Q.850 cause value: the one vocabulary every
//! transport speaks (ISDN carries it natively in Q.931; SIP carries it in the
//! `Reason` header of RFC 3326 and by status code with the mapping of
//! RFC 3398). The call layer, CDRs and campaign outcomes see causes only;
//! each transport maps them at its own edge.

/// A Q.850 cause value (1–127).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cause(u8);

impl Cause {
    pub const UNALLOCATED_NUMBER: Cause = Cause(1);
    pub const NO_ROUTE_TRANSIT_NET: Cause = Cause(2);
    pub const NO_ROUTE_DESTINATION: Cause = Cause(3);
    pub const NORMAL_CLEARING: Cause = Cause(16);
    pub const USER_BUSY: Cause = Cause(17);
    pub const NO_USER_RESPONSE: Cause = Cause(18);
    pub const NO_ANSWER: Cause = Cause(19);
    pub const SUBSCRIBER_ABSENT: Cause = Cause(20);
    pub const CALL_REJECTED: Cause = Cause(21);
    pub const NUMBER_CHANGED: Cause = Cause(22);
    pub const REDIRECTION: Cause = Cause(23);
    pub const EXCHANGE_ROUTING_ERROR: Cause = Cause(25);
    pub const NON_SELECTED_USER_CLEARING: Cause = Cause(26);
    pub const DESTINATION_OUT_OF_ORDER: Cause = Cause(27);
    pub const INVALID_NUMBER_FORMAT: Cause = Cause(28);
    pub const FACILITY_REJECTED: Cause = Cause(29);
    pub const NORMAL_UNSPECIFIED: Cause = Cause(31);
    pub const NO_CIRCUIT_AVAILABLE: Cause = Cause(34);
    pub const NETWORK_OUT_OF_ORDER: Cause = Cause(38);
    pub const TEMPORARY_FAILURE: Cause = Cause(41);
    pub const SWITCHING_CONGESTION: Cause = Cause(42);
    pub const RESOURCE_UNAVAILABLE: Cause = Cause(47);
    pub const INCOMING_BARRED_CUG: Cause = Cause(55);
    pub const BEARER_NOT_AUTHORIZED: Cause = Cause(57);
    pub const BEARER_NOT_AVAILABLE: Cause = Cause(58);
    pub const SERVICE_UNAVAILABLE: Cause = Cause(63);
    pub const BEARER_NOT_IMPLEMENTED: Cause = Cause(65);
    pub const ONLY_RESTRICTED_DIGITAL: Cause = Cause(70);
    pub const SERVICE_NOT_IMPLEMENTED: Cause = Cause(79);
    pub const NOT_MEMBER_OF_CUG: Cause = Cause(87);
    pub const INCOMPATIBLE_DESTINATION: Cause = Cause(88);
    pub const INVALID_MESSAGE: Cause = Cause(95);
    pub const RECOVERY_ON_TIMER_EXPIRY: Cause = Cause(102);
    pub const PROTOCOL_ERROR: Cause = Cause(111);
    pub const INTERWORKING: Cause = Cause(127);
    // Causes ISDN call control (Q.931 §5.8) answers with.
    pub const CHANNEL_UNACCEPTABLE: Cause = Cause(6);
    pub const RESPONSE_TO_STATUS_ENQUIRY: Cause = Cause(30);
    pub const REQUESTED_CHANNEL_UNAVAILABLE: Cause = Cause(44);
    pub const INVALID_CALL_REFERENCE: Cause = Cause(81);
    pub const CHANNEL_DOES_NOT_EXIST: Cause = Cause(82);
    pub const MANDATORY_IE_MISSING: Cause = Cause(96);
    pub const MESSAGE_TYPE_NONEXISTENT: Cause = Cause(97);
    pub const MESSAGE_NOT_COMPATIBLE: Cause = Cause(98);
    pub const IE_NONEXISTENT: Cause = Cause(99);
    pub const INVALID_IE_CONTENTS: Cause = Cause(100);
    pub const WRONG_STATE: Cause = Cause(101);

    /// A cause from its number; `None` outside 1–127.
    pub fn new(value: u8) -> Option<Cause> {
        (1..=127).contains(&value).then_some(Cause(value))
    }

    pub fn value(self) -> u8 {
        self.0
    }

    /// The Q.850 name, for logs, CDRs and the `text` of a `Reason` header.
    pub fn text(self) -> &'static str {
        match self.0 {
            1 => "Unallocated number",
            2 => "No route to specified transit network",
            3 => "No route to destination",
            6 => "Channel unacceptable",
            16 => "Normal call clearing",
            17 => "User busy",
            18 => "No user responding",
            19 => "No answer from user",
            20 => "Subscriber absent",
            21 => "Call rejected",
            22 => "Number changed",
            23 => "Redirection to new destination",
            25 => "Exchange routing error",
            26 => "Non-selected user clearing",
            27 => "Destination out of order",
            28 => "Invalid number format",
            29 => "Facility rejected",
            30 => "Response to STATUS ENQUIRY",
            31 => "Normal, unspecified",
            34 => "No circuit/channel available",
            38 => "Network out of order",
            41 => "Temporary failure",
            42 => "Switching equipment congestion",
            44 => "Requested circuit/channel not available",
            47 => "Resource unavailable, unspecified",
            55 => "Incoming calls barred within CUG",
            57 => "Bearer capability not authorized",
            58 => "Bearer capability not presently available",
            63 => "Service or option not available, unspecified",
            65 => "Bearer capability not implemented",
            70 => "Only restricted digital information bearer capability is available",
            79 => "Service or option not implemented, unspecified",
            81 => "Invalid call reference value",
            82 => "Identified channel does not exist",
            87 => "User not member of CUG",
            88 => "Incompatible destination",
            95 => "Invalid message, unspecified",
            96 => "Mandatory information element is missing",
            97 => "Message type non-existent or not implemented",
            98 => "Message not compatible with call state or message type non-existent or not implemented",
            99 => "Information element/parameter non-existent or not implemented",
            100 => "Invalid information element contents",
            101 => "Message not compatible with call state",
            102 => "Recovery on timer expiry",
            111 => "Protocol error, unspecified",
            127 => "Interworking, unspecified",
            v => match v {
                0..=31 => "Normal class, unspecified",
                32..=47 => "Resource unavailable class",
                48..=63 => "Service or option not available class",
                64..=79 => "Service or option not implemented class",
                80..=95 => "Invalid message class",
                96..=111 => "Protocol error class",
                _ => "Interworking class",
            },
        }
    }

    /// The SIP final response for a call refused or failed with this cause
    /// (RFC 3398 §7.2.4.1). Causes the table does not list take their
    /// class's answer: normal 480, resource 503, service unavailable 503,
    /// not implemented 501, invalid message and protocol error 500,
    /// interworking 500.
    pub fn to_sip_status(self) -> u16 {
        match self.0 {
            1..=3 | 26 => 404,
            17 => 486,
            18 => 408,
            19 | 20 | 31 | 16 => 480,
            21 | 55 | 57 | 87 => 403,
            22 | 23 => 410,
            27 => 502,
            28 => 484,
            29 | 79 => 501,
            34 | 38 | 41 | 42 | 47 | 58 | 88 => 503,
            65 | 70 => 488,
            102 => 504,
            111 | 127 => 500,
            v => match v {
                0..=31 => 480,
                32..=63 => 503,
                64..=79 => 501,
                _ => 500,
            },
        }
    }

    /// The cause for a SIP final response (RFC 3398 §8.2.6.1). A status the
    /// table does not list is treated as the x00 of its class (RFC 3261
    /// §8.1.3.2); 2xx is normal clearing.
    pub fn from_sip_status(status: u16) -> Cause {
        let c = match status {
            200..=299 => 16,
            401..=403 => 21,
            404 | 485 | 604 => 1,
            405 => 63,
            406 | 415 | 501 => 79,
            407 => 21,
            408 | 504 => 102,
            410 => 22,
            413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => 127,
            480 => 18,
            482 | 483 => 25,
            484 => 28,
            486 | 600 => 17,
            502 => 38,
            400 | 481 | 500 | 503 => 41,
            603 => 21,
            // 487 (terminated by a CANCEL) and 488/606 have no cause of
            // their own; the CANCEL's reason or the media failure is the
            // cause, which the caller of this function decides.
            487 => 31,
            488 | 606 => 88,
            300..=399 => 23,
            400..=499 => 41,
            500..=599 => 41,
            600..=699 => 17,
            _ => 127,
        };
        Cause(c)
    }

    /// The value of a `Reason` header carrying this cause (RFC 3326).
    pub fn reason_header_value(self) -> String {
        format!("Q.850;cause={};text=\"{}\"", self.0, self.text())
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.text())
    }
}

/// The Q.850 cause in the value of a `Reason` header (RFC 3326 §2):
/// `protocol *(;param)` entries separated by commas; the first `Q.850`
/// entry with a valid `cause` wins. Anything unparseable is `None`.
pub fn cause_from_reason_header(value: &str) -> Option<Cause> {
    split_outside_quotes(value, ',').find_map(|entry| {
        let mut parts = split_outside_quotes(entry, ';');
        let protocol = parts.next()?.trim();
        if !protocol.eq_ignore_ascii_case("Q.850") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("cause") {
                return None;
            }
            Cause::new(v.trim().parse().ok()?)
        })
    })
}

/// Splits at `sep` where it is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    rest = s.get(i + c.len_utf8()..);
                    return s.get(..i);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3398_cause_to_status_table() {
        let table = [
            (1, 404),
            (2, 404),
            (3, 404),
            (17, 486),
            (18, 408),
            (19, 480),
            (20, 480),
            (21, 403),
            (22, 410),
            (23, 410),
            (26, 404),
            (27, 502),
            (28, 484),
            (29, 501),
            (31, 480),
            (34, 503),
            (38, 503),
            (41, 503),
            (42, 503),
            (47, 503),
            (55, 403),
            (57, 403),
            (58, 503),
            (65, 488),
            (70, 488),
            (79, 501),
            (87, 403),
            (88, 503),
            (102, 504),
            (111, 500),
            (127, 500),
        ];
        for (cause, status) in table {
            assert_eq!(
                Cause::new(cause).unwrap().to_sip_status(),
                status,
                "cause {cause}"
            );
        }
        // Unlisted causes answer by class.
        assert_eq!(Cause::new(9).unwrap().to_sip_status(), 480);
        assert_eq!(Cause::new(44).unwrap().to_sip_status(), 503);
        assert_eq!(Cause::new(66).unwrap().to_sip_status(), 501);
        assert_eq!(Cause::new(100).unwrap().to_sip_status(), 500);
    }

    #[test]
    fn rfc3398_status_to_cause_table() {
        let table = [
            (400, 41),
            (401, 21),
            (402, 21),
            (403, 21),
            (404, 1),
            (405, 63),
            (406, 79),
            (407, 21),
            (408, 102),
            (410, 22),
            (413, 127),
            (414, 127),
            (415, 79),
            (416, 127),
            (420, 127),
            (421, 127),
            (423, 127),
            (480, 18),
            (481, 41),
            (482, 25),
            (483, 25),
            (484, 28),
            (485, 1),
            (486, 17),
            (500, 41),
            (501, 79),
            (502, 38),
            (503, 41),
            (504, 102),
            (505, 127),
            (513, 127),
            (600, 17),
            (603, 21),
            (604, 1),
        ];
        for (status, cause) in table {
            assert_eq!(
                Cause::from_sip_status(status).value(),
                cause,
                "status {status}"
            );
        }
        // Unknown codes are the x00 of their class (RFC 3261 §8.1.3.2).
        assert_eq!(Cause::from_sip_status(499), Cause::from_sip_status(400));
        assert_eq!(Cause::from_sip_status(599), Cause::from_sip_status(500));
        assert_eq!(Cause::from_sip_status(699), Cause::from_sip_status(600));
    }

    #[test]
    fn causes_are_1_to_127() {
        assert!(Cause::new(0).is_none());
        assert!(Cause::new(128).is_none());
        for v in 1..=127 {
            let c = Cause::new(v).unwrap();
            assert!((400..700).contains(&c.to_sip_status()));
            assert!(!c.text().is_empty());
        }
    }

    #[test]
    fn reason_header_round_trip_and_parsing() {
        let v = Cause::USER_BUSY.reason_header_value();
        assert_eq!(v, "Q.850;cause=17;text=\"User busy\"");
        assert_eq!(cause_from_reason_header(&v), Some(Cause::USER_BUSY));
        assert_eq!(
            cause_from_reason_header("SIP;cause=200;text=\"Call completed elsewhere\""),
            None
        );
        assert_eq!(
            cause_from_reason_header(
                "SIP ;cause=600 ;text=\"a, b; c\", q.850 ; text=\"x;cause=3\" ; cause = 34"
            ),
            Some(Cause::NO_CIRCUIT_AVAILABLE)
        );
        for bad in [
            "",
            "Q.850",
            "Q.850;cause=0",
            "Q.850;cause=999",
            "Q.850;cause=x",
            "\"",
            "Q.850;cause",
        ] {
            assert_eq!(cause_from_reason_header(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn reason_parsing_never_panics(s in ".{0,200}") {
            let _ = cause_from_reason_header(&s);
        }
    }
}
