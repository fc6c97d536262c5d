//! Property tests: every typed element and every message survives encode
//! → decode unchanged, and arbitrary octets never panic the decoder —
//! when they decode, re-encoding gives a message that decodes the same.

use proptest::collection::vec;
use proptest::prelude::*;

use super::ie::*;
use super::*;
use crate::call::cause::Cause;

fn ia5(max: usize) -> impl Strategy<Value = Ia5> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}"))
        .unwrap()
        .prop_map(|s| Ia5::new(&s).unwrap())
}

fn coding() -> impl Strategy<Value = CodingStandard> {
    (0u8..4).prop_map(CodingStandard::from_bits)
}

fn bearer() -> impl Strategy<Value = BearerCapability> {
    (
        coding(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u8..0x80,
        proptest::option::of(any::<u8>()),
        vec(any::<u8>(), 0..4),
        vec(any::<u8>(), 0..4),
    )
        .prop_map(|(coding, cap, mode, rate, mult, l1, mut ext, mut l23)| {
            let rate = TransferRate::from_bits(rate);
            let layer1 = l1.map(Layer1::from_bits);
            // As decoded: 5a–5d end with an extension bit, octets 6/7 do
            // not start with a layer 1 identifier unless octet 5 is there.
            if let Some(last) = ext.last_mut() {
                *last |= 0x80;
            }
            ext.iter_mut().rev().skip(1).for_each(|b| *b &= 0x7F);
            if layer1.is_none() {
                ext.clear();
                if let Some(first) = l23.first_mut() {
                    if *first & 0x60 == 0x20 {
                        *first ^= 0x40;
                    }
                }
            }
            BearerCapability {
                coding,
                capability: TransferCapability::from_bits(cap),
                mode: TransferMode::from_bits(mode),
                rate,
                multiplier: (rate == TransferRate::Multirate).then_some(mult),
                layer1,
                layer1_ext: ext,
                layers23: l23,
            }
        })
}

fn cause() -> impl Strategy<Value = CauseIe> {
    (
        coding(),
        any::<u8>(),
        proptest::option::of(0u8..0x80),
        1u8..=127,
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(coding, loc, recommendation, v, diagnostics)| CauseIe {
            coding,
            location: Location::from_bits(loc),
            recommendation,
            cause: Cause::new(v).unwrap(),
            diagnostics,
        })
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    let list = (
        coding(),
        any::<u8>(),
        any::<bool>(),
        vec(0u8..0x80, 0..6),
        vec(any::<u8>(), 0..4),
    )
        .prop_map(|(coding, unit, map, numbers, slots)| ChannelList {
            coding,
            unit: ChannelUnit::from_bits(unit),
            channels: if map {
                ChannelNumbers::Map(slots)
            } else {
                ChannelNumbers::Numbers(numbers)
            },
        });
    (
        vec(0u8..0x80, 0..3),
        any::<[bool; 3]>(),
        any::<u8>(),
        proptest::option::of(list),
    )
        .prop_map(
            |(interface_id, [primary, exclusive, d_channel], sel, channels)| ChannelId {
                interface_id,
                primary,
                exclusive,
                d_channel,
                selection: ChannelSelection::from_bits(sel),
                channels,
            },
        )
}

fn presentation() -> impl Strategy<Value = Presentation> {
    (any::<u8>(), any::<u8>()).prop_map(|(i, s)| Presentation {
        indicator: PresentationIndicator::from_bits(i),
        screening: Screening::from_bits(s),
    })
}

fn called() -> impl Strategy<Value = CalledNumber> {
    (any::<u8>(), any::<u8>(), ia5(30)).prop_map(|(t, p, digits)| CalledNumber {
        ton: TypeOfNumber::from_bits(t),
        plan: NumberingPlan::from_bits(p),
        digits,
    })
}

fn calling() -> impl Strategy<Value = CallingNumber> {
    (
        any::<u8>(),
        any::<u8>(),
        proptest::option::of(presentation()),
        ia5(30),
    )
        .prop_map(|(t, p, presentation, digits)| CallingNumber {
            ton: TypeOfNumber::from_bits(t),
            plan: NumberingPlan::from_bits(p),
            presentation,
            digits,
        })
}

fn progress() -> impl Strategy<Value = Progress> {
    (coding(), any::<u8>(), any::<u8>()).prop_map(|(coding, l, d)| Progress {
        coding,
        location: Location::from_bits(l),
        description: ProgressDescription::from_bits(d),
    })
}

fn display() -> impl Strategy<Value = Display> {
    (proptest::option::of(0x80u8..=0xFF), ia5(40)).prop_map(|(info, text)| Display { info, text })
}

/// Any typed element, as a raw codeset 0 element.
fn typed_ie() -> impl Strategy<Value = Ie> {
    prop_oneof![
        bearer().prop_map(Ie::BearerCapability),
        cause().prop_map(Ie::Cause),
        (coding(), any::<u8>()).prop_map(|(coding, s)| Ie::CallState(CallState {
            coding,
            state: CallStateValue::from_bits(s)
        })),
        channel_id().prop_map(Ie::ChannelId),
        progress().prop_map(Ie::Progress),
        display().prop_map(Ie::Display),
        ia5(20).prop_map(|t| Ie::Keypad(Keypad(t))),
        calling().prop_map(|n| Ie::ConnectedNumber(ConnectedNumber(n))),
        calling().prop_map(Ie::CallingNumber),
        called().prop_map(Ie::CalledNumber),
        any::<u8>().prop_map(|c| Ie::RestartIndicator(RestartIndicator {
            class: RestartClass::from_bits(c)
        })),
        Just(Ie::SendingComplete),
        Just(Ie::MoreData),
    ]
}

/// A raw element in any codeset that can be framed: never a shift octet.
fn raw_ie() -> impl Strategy<Value = RawIe> {
    prop_oneof![
        typed_ie().prop_map(|ie| ie.to_raw()),
        (0u8..8, 0u8..0x80, vec(any::<u8>(), 0..20)).prop_map(|(codeset, id, contents)| RawIe {
            codeset,
            id,
            contents
        }),
        (0u8..8, 0x80u8..=0xFF)
            .prop_filter("not a shift", |(_, id)| id & 0xF0 != 0x90)
            .prop_map(|(codeset, id)| RawIe {
                codeset,
                id,
                contents: Vec::new()
            }),
    ]
}

fn call_ref() -> impl Strategy<Value = CallRef> {
    prop_oneof![
        (0u16..0x8000, any::<bool>()).prop_map(|(v, f)| CallRef::new(v, f)),
        (0u16..0x80, any::<bool>()).prop_map(|(value, from_originator)| CallRef {
            value,
            from_originator,
            len: 1
        }),
        Just(CallRef::dummy()),
    ]
}

proptest! {
    #[test]
    fn typed_elements_round_trip(ie in typed_ie()) {
        let raw = ie.to_raw();
        prop_assert_eq!(Ie::from_raw(&raw), Ok(ie));
    }

    #[test]
    fn messages_round_trip(
        call_ref in call_ref(),
        kind in any::<u8>().prop_map(MessageType::from_u8),
        ies in vec(raw_ie(), 0..12),
    ) {
        let m = Message { call_ref, kind, ies: ies.into_iter().collect() };
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn setup_builder_round_trips(
        ni2 in any::<bool>(),
        bc in bearer(),
        sel in prop_oneof![
            Just(ChannelSel::Any),
            (1u8..32).prop_map(ChannelSel::Preferred),
            (1u8..32).prop_map(ChannelSel::Exclusive),
        ],
        called in called(),
        calling in proptest::option::of(calling()),
        name in proptest::option::of(ia5(30)),
        sending_complete in any::<bool>(),
        progress in proptest::option::of(progress()),
    ) {
        let variant = if ni2 { Variant::Ni2 } else { Variant::Etsi };
        let p = SetupParams {
            variant, bearer: bc, channel: sel, called, calling,
            calling_name: name, sending_complete, progress,
        };
        let m = Message::decode(&Message::setup(CallRef::new(1, true), &p).to_bytes().unwrap()).unwrap();
        prop_assert_eq!(m.bearer_capability(), Some(Ok(p.bearer.clone())));
        prop_assert_eq!(m.channel_id().unwrap().unwrap().sel(), Some(p.channel));
        prop_assert_eq!(m.called_number(), Some(Ok(p.called.clone())));
        prop_assert_eq!(m.calling_number(), p.calling.clone().map(Ok));
        prop_assert_eq!(m.ies.first::<Progress>(), p.progress.map(Ok));
        prop_assert_eq!(m.ies.sending_complete(), sending_complete && !ni2);
        let display = m.ies.first::<Display>().map(|d| d.unwrap().text);
        prop_assert_eq!(display, p.calling_name.filter(|_| ni2));
    }

    #[test]
    fn arbitrary_octets_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        check_decoder(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        ies in vec(raw_ie(), 0..6),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let m = Message { call_ref: CallRef::new(1, true), kind: MessageType::Setup, ies: ies.into_iter().collect() };
        let mut bytes = m.to_bytes().unwrap();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        check_decoder(&bytes);
    }
}

/// What the fuzz target checks, on proptest's inputs.
fn check_decoder(bytes: &[u8]) {
    crate::fuzzing::q931::run(bytes);
}
