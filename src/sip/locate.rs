//! Locating a SIP server from a domain (RFC 3263 §4), the choices without
//! the lookups: which NAPTR record names the SRV set for a transport, and
//! the order to try SRV targets in (RFC 2782: lowest priority first, then
//! a weighted random order within a priority). The DNS queries themselves
//! are the caller's (`server::trunks`), so this stays testable with plain
//! records.

/// One NAPTR record, as far as SIP location needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    /// Lower-cased flags; SIP uses `s` (the replacement is an SRV name).
    pub flags: String,
    /// Lower-cased service, e.g. `sip+d2u`, `sip+d2t`, `sips+d2t`.
    pub service: String,
    /// The replacement domain (no trailing dot).
    pub replacement: String,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host (no trailing dot); `.` means "no service here".
    pub target: String,
}

/// The NAPTR service for SIP over `tcp` or UDP (RFC 3263 §4.1).
pub fn naptr_service(tcp: bool) -> &'static str {
    if tcp {
        "sip+d2t"
    } else {
        "sip+d2u"
    }
}

/// The SRV name to query for `domain` when no NAPTR record says otherwise.
pub fn default_srv_name(domain: &str, tcp: bool) -> String {
    let proto = if tcp { "tcp" } else { "udp" };
    format!("_sip._{proto}.{}", domain.trim_end_matches('.'))
}

/// The SRV name the NAPTR records give for the transport rivr will use: the
/// replacement of the first record (by order, then preference) with flag
/// `s` and the transport's service. `None` when no record fits, and the
/// caller queries [`default_srv_name`].
pub fn srv_name_from_naptr(records: &[Naptr], tcp: bool) -> Option<String> {
    let service = naptr_service(tcp);
    records
        .iter()
        .filter(|r| r.flags == "s" && r.service == service && !r.replacement.is_empty())
        .min_by_key(|r| (r.order, r.preference))
        .map(|r| r.replacement.trim_end_matches('.').to_string())
}

/// The order to try `records` in: by priority, and within one priority a
/// weighted random order (RFC 2782: each pick among the rest, with chance
/// weight / total; zero-weight records have a small chance, and come
/// first only when picked). `random` gives numbers in `0..n` for each
/// `n` it is asked. A lone `.` target ("decidedly not available") yields
/// nothing.
pub fn srv_order(records: &[Srv], mut random: impl FnMut(u32) -> u32) -> Vec<Srv> {
    let mut rest: Vec<Srv> = records
        .iter()
        .filter(|r| !r.target.is_empty() && r.target != ".")
        .cloned()
        .collect();
    rest.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(rest.len());
    while let Some(first) = rest.first() {
        let priority = first.priority;
        let mut group: Vec<Srv> = Vec::new();
        rest.retain(|r| {
            if r.priority == priority {
                group.push(r.clone());
                false
            } else {
                true
            }
        });
        // Zero weights first, as RFC 2782 orders the running sum.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total.saturating_add(1));
            let mut running = 0u32;
            let mut chosen = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                running += u32::from(r.weight);
                if running >= pick {
                    chosen = i;
                    break;
                }
            }
            out.push(group.remove(chosen));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, pref: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference: pref,
            flags: "s".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn naptr_picks_the_transports_service_by_order_then_preference() {
        let records = [
            naptr(20, 10, "sip+d2u", "_sip._udp.late.example."),
            naptr(10, 50, "sip+d2u", "_sip._udp.b.example."),
            naptr(10, 20, "sip+d2u", "_sip._udp.a.example."),
            naptr(5, 10, "sip+d2t", "_sip._tcp.example."),
            naptr(1, 1, "sips+d2t", "_sips._tcp.example."),
        ];
        assert_eq!(
            srv_name_from_naptr(&records, false).as_deref(),
            Some("_sip._udp.a.example")
        );
        assert_eq!(
            srv_name_from_naptr(&records, true).as_deref(),
            Some("_sip._tcp.example")
        );
        let mut not_s = naptr(1, 1, "sip+d2u", "x.example");
        not_s.flags = "a".into();
        assert_eq!(srv_name_from_naptr(&[not_s], false), None);
        assert_eq!(
            default_srv_name("example.org.", true),
            "_sip._tcp.example.org"
        );
    }

    #[test]
    fn srv_tries_priorities_in_order_and_weights_by_chance() {
        let records = [
            srv(20, 0, "backup.example"),
            srv(10, 90, "big.example"),
            srv(10, 10, "small.example"),
            srv(5, 0, "."),
        ];
        let mut seed = 12345u64;
        let mut first_big = 0;
        for _ in 0..1000 {
            let order = srv_order(&records, |n| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) % u64::from(n.max(1))) as u32
            });
            let names: Vec<&str> = order.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(names.len(), 3, "the `.` target is not a server");
            assert_eq!(names[2], "backup.example", "priority 20 after 10");
            if names[0] == "big.example" {
                first_big += 1;
            }
        }
        // 90 of 100 (weights 90 and 10; the running sum starts at 0).
        assert!((850..=950).contains(&first_big), "{first_big}");
    }
}
