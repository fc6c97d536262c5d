//! Channel identification (Q.931 §4.5.13): which B-channel a call uses.
//! On a primary rate interface the channel is named in octet 3.3 — a
//! number (on E1 the timeslot, 1–15 and 17–31; on T1 1–23) or a slot map
//! — and octet 3 says whether it is preferred or exclusive, or that any
//! channel will do. Which numbers exist on a span is the span's business:
//! this file only codes them.

use super::{CodingStandard, IeError, InfoElement, Reader};

code_enum! {
    /// Information channel selection (octet 3, bits 2–1). On a primary
    /// rate interface 01 means "as indicated in octet 3.3"; on a basic
    /// rate interface 01 and 10 are B1 and B2.
    ChannelSelection: 0x03 {
        NoChannel = 0,
        AsIndicated = 1,
        Reserved = 2,
        Any = 3,
    }
}

code_enum! {
    /// Channel type or map element type (octet 3.2, bits 4–1).
    ChannelUnit: 0x0F {
        B = 0x3,
        H0 = 0x6,
        H11 = 0x8,
        H12 = 0x9,
    }
}

/// How octet 3.3 names channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelNumbers {
    /// Channel numbers (7 bits each). One for a call; RESTART may list
    /// several.
    Numbers(Vec<u8>),
    /// A slot map, raw, first octet first: bit 1 of the last octet is the
    /// lowest slot ([`ChannelList::map_bits`]).
    Map(Vec<u8>),
}

/// Octets 3.2 and 3.3: the channels on a primary rate interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelList {
    pub coding: CodingStandard,
    pub unit: ChannelUnit,
    pub channels: ChannelNumbers,
}

impl ChannelList {
    /// The set bits of a slot map, numbered from 0 at bit 1 of the last
    /// octet; empty for channel numbers. (How a bit maps to a timeslot
    /// differs between E1 and T1; the span decides.)
    pub fn map_bits(&self) -> Vec<u32> {
        let ChannelNumbers::Map(map) = &self.channels else {
            return Vec::new();
        };
        let mut bits = Vec::new();
        for (i, octet) in map.iter().rev().enumerate() {
            for b in 0..8u32 {
                if octet & (1 << b) != 0 {
                    bits.push(i as u32 * 8 + b);
                }
            }
        }
        bits
    }
}

/// The Channel identification element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelId {
    /// Octets 3.1: an explicit interface identifier (7 bits per octet),
    /// used with NFAS; empty when the interface is the one carrying this
    /// D-channel (implicit).
    pub interface_id: Vec<u8>,
    /// Interface type: a primary rate interface ("other"), not basic.
    pub primary: bool,
    /// Only the indicated channel is acceptable (else preferred).
    pub exclusive: bool,
    /// The channel identified is the D-channel.
    pub d_channel: bool,
    pub selection: ChannelSelection,
    /// Octets 3.2/3.3; absent for "any channel" and for a whole interface.
    pub channels: Option<ChannelList>,
}

/// The common choices of a B-channel, as the call layer makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelSel {
    /// Any channel the other side picks.
    Any,
    /// This channel, or another if it is busy.
    Preferred(u8),
    /// This channel or none.
    Exclusive(u8),
}

impl ChannelId {
    /// One B-channel by number on this interface.
    pub fn b_channel(channel: u8, exclusive: bool) -> ChannelId {
        ChannelId::b_channels(&[channel], exclusive)
    }

    /// Several B-channels by number (RESTART of indicated channels).
    pub fn b_channels(channels: &[u8], exclusive: bool) -> ChannelId {
        ChannelId {
            interface_id: Vec::new(),
            primary: true,
            exclusive,
            d_channel: false,
            selection: ChannelSelection::AsIndicated,
            channels: Some(ChannelList {
                coding: CodingStandard::Itu,
                unit: ChannelUnit::B,
                channels: ChannelNumbers::Numbers(channels.to_vec()),
            }),
        }
    }

    /// Any B-channel on this interface.
    pub fn any() -> ChannelId {
        ChannelId {
            interface_id: Vec::new(),
            primary: true,
            exclusive: false,
            d_channel: false,
            selection: ChannelSelection::Any,
            channels: None,
        }
    }

    /// The element for a choice.
    pub fn from_sel(sel: ChannelSel) -> ChannelId {
        match sel {
            ChannelSel::Any => ChannelId::any(),
            ChannelSel::Preferred(n) => ChannelId::b_channel(n, false),
            ChannelSel::Exclusive(n) => ChannelId::b_channel(n, true),
        }
    }

    /// The choice this element makes, when it is one of the common ones on
    /// this (implicit, primary rate) interface: any channel, or exactly one
    /// B-channel by number. `None` for anything else — a D-channel, no
    /// channel, a slot map, several channels, another interface — which the
    /// call layer refuses (cause 82 or 6) or handles on its own.
    pub fn sel(&self) -> Option<ChannelSel> {
        if !self.primary || self.d_channel || !self.interface_id.is_empty() {
            return None;
        }
        match (self.selection, &self.channels) {
            (ChannelSelection::Any, None) => Some(ChannelSel::Any),
            (ChannelSelection::AsIndicated, Some(list)) if list.unit == ChannelUnit::B => {
                match &list.channels {
                    ChannelNumbers::Numbers(n) => match n.as_slice() {
                        [one] if self.exclusive => Some(ChannelSel::Exclusive(*one)),
                        [one] => Some(ChannelSel::Preferred(*one)),
                        _ => None,
                    },
                    ChannelNumbers::Map(_) => None,
                }
            }
            _ => None,
        }
    }

    /// The channel numbers named in octet 3.3 (empty for a map or none).
    pub fn numbers(&self) -> &[u8] {
        match &self.channels {
            Some(ChannelList {
                channels: ChannelNumbers::Numbers(n),
                ..
            }) => n,
            _ => &[],
        }
    }
}

impl InfoElement for ChannelId {
    const ID: u8 = super::id::CHANNEL_ID;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        let mut interface_id = Vec::new();
        if o3 & 0x40 != 0 {
            let group = r.ext_group();
            if group.last().is_none_or(|b| b & 0x80 == 0) {
                return Err(IeError::Truncated);
            }
            interface_id.extend(group.iter().map(|b| b & 0x7F));
        }
        let channels = if r.is_empty() {
            None
        } else {
            let o32 = r.u8()?;
            let rest = r.rest();
            Some(ChannelList {
                coding: CodingStandard::from_bits(o32 >> 5),
                unit: ChannelUnit::from_bits(o32),
                channels: if o32 & 0x10 != 0 {
                    ChannelNumbers::Map(rest.to_vec())
                } else {
                    // Bit 8 should mark the last number, but senders
                    // differ on lists; every octet left is a number.
                    ChannelNumbers::Numbers(rest.iter().map(|b| b & 0x7F).collect())
                },
            })
        };
        Ok(ChannelId {
            interface_id,
            primary: o3 & 0x20 != 0,
            exclusive: o3 & 0x08 != 0,
            d_channel: o3 & 0x04 != 0,
            selection: ChannelSelection::from_bits(o3),
            channels,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let explicit = !self.interface_id.is_empty();
        out.push(
            0x80 | u8::from(explicit) << 6
                | u8::from(self.primary) << 5
                | u8::from(self.exclusive) << 3
                | u8::from(self.d_channel) << 2
                | self.selection.bits(),
        );
        if let Some((last, init)) = self.interface_id.split_last() {
            out.extend(init.iter().map(|b| b & 0x7F));
            out.push(0x80 | (last & 0x7F));
        }
        if let Some(list) = &self.channels {
            let map = matches!(list.channels, ChannelNumbers::Map(_));
            out.push(0x80 | list.coding.bits() << 5 | u8::from(map) << 4 | list.unit.bits());
            match &list.channels {
                ChannelNumbers::Map(m) => out.extend_from_slice(m),
                ChannelNumbers::Numbers(n) => {
                    if let Some((last, init)) = n.split_last() {
                        out.extend(init.iter().map(|b| b & 0x7F));
                        out.push(0x80 | (last & 0x7F));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(c: &ChannelId) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode(&mut v);
        v
    }

    #[test]
    fn common_choices() {
        let cases = [
            (ChannelSel::Exclusive(1), vec![0xA9, 0x83, 0x81]),
            (ChannelSel::Preferred(3), vec![0xA1, 0x83, 0x83]),
            (ChannelSel::Exclusive(31), vec![0xA9, 0x83, 0x9F]),
            (ChannelSel::Any, vec![0xA3]),
        ];
        for (sel, bytes) in cases {
            let c = ChannelId::from_sel(sel);
            assert_eq!(enc(&c), bytes, "{sel:?}");
            let d = ChannelId::decode(&bytes).unwrap();
            assert_eq!(d, c);
            assert_eq!(d.sel(), Some(sel));
        }
    }

    #[test]
    fn restart_list_and_slot_map() {
        let c = ChannelId::b_channels(&[1, 2, 3], true);
        assert_eq!(enc(&c), [0xA9, 0x83, 0x01, 0x02, 0x83]);
        assert_eq!(c.sel(), None);
        let d = ChannelId::decode(&[0xA9, 0x83, 0x81, 0x82, 0x83]).unwrap();
        assert_eq!(d.numbers(), [1, 2, 3]);
        // A T1 slot map with channels 1 and 24 (bits 0 and 23).
        let d = ChannelId::decode(&[0xA9, 0x93, 0x80, 0x00, 0x01]).unwrap();
        let list = d.channels.as_ref().unwrap();
        assert_eq!(list.map_bits(), [0, 23]);
        assert_eq!(d.sel(), None);
        assert_eq!(enc(&d), [0xA9, 0x93, 0x80, 0x00, 0x01]);
    }

    #[test]
    fn explicit_interface_and_d_channel() {
        // NFAS: interface 1, exclusive B-channel 5.
        let bytes = [0xE9, 0x81, 0x83, 0x85];
        let d = ChannelId::decode(&bytes).unwrap();
        assert_eq!(d.interface_id, [1]);
        assert_eq!(d.numbers(), [5]);
        assert_eq!(d.sel(), None);
        assert_eq!(enc(&d), bytes);
        let d = ChannelId::decode(&[0xAC]).unwrap();
        assert!(d.d_channel);
        assert_eq!(d.sel(), None);
        // The interface identifier runs off the end.
        assert_eq!(ChannelId::decode(&[0xE9]), Err(IeError::Truncated));
        assert_eq!(ChannelId::decode(&[0xE9, 0x01]), Err(IeError::Truncated));
        assert_eq!(ChannelId::decode(&[]), Err(IeError::Truncated));
    }
}
