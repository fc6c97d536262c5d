//! The `q931` target: the Q.931 message codec (`pri::q931`). Any octets go
//! to `Message::decode`; a message that decodes must encode, and decode
//! again to the same message (same call reference, type, and elements in
//! the same codesets). Each element rivr types is decoded too, and one
//! that decodes must encode back to the same value. The typed accessors
//! the call state machines use run on every message.

use crate::call::cause::Cause;
use crate::codec::Law;
use crate::pri::q931::ie::{
    BearerCapability, CallStateValue, CalledNumber, CallingNumber, CauseIe, Location,
    NumberingPlan, Presentation, PresentationIndicator, Progress, ProgressDescription,
    RestartClass, Screening, TransferCapability, TypeOfNumber,
};
use crate::pri::q931::{CallRef, ChannelSel, Ia5, Ie, Message, SetupParams, Variant};

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let bytes = msg.to_bytes().expect("a decoded message encodes again");
    let again = Message::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again, msg, "decode → encode → decode changed the message");

    for raw in &msg.ies {
        if let Ok(ie) = Ie::from_raw(raw) {
            let back = ie.to_raw();
            assert_eq!(Ie::from_raw(&back), Ok(ie), "element {:#04x}", raw.id);
        }
    }
    let _ = msg
        .bearer_capability()
        .map(|b| b.map(|b| (b.law(), b.is_voice())));
    let _ = msg
        .channel_id()
        .map(|c| c.map(|c| (c.sel(), c.numbers().len())));
    let _ = msg
        .channel_id()
        .and_then(Result::ok)
        .and_then(|c| c.channels.map(|l| l.map_bits()));
    let _ = msg.cause();
    let _ = msg.called_number();
    let _ = msg
        .calling_number()
        .map(|n| n.map(|n| n.presentation_allowed()));
    let _ = msg.ies.sending_complete();
}

/// Seeds: the messages call control sends and meets — ETSI and NI-2
/// SETUPs, the answers, clearing with causes, STATUS, RESTART — plus a
/// message with codeset shifts and unknown elements.
pub fn seeds() -> Vec<Vec<u8>> {
    let cr = CallRef::new(1, true);
    let back = cr.reply();
    let user = |c| CauseIe::new(c, Location::User);
    let called = CalledNumber::new(TypeOfNumber::National, NumberingPlan::Isdn, "3125550100").ok();
    let calling = CallingNumber::new(
        TypeOfNumber::National,
        NumberingPlan::Isdn,
        Some(Presentation {
            indicator: PresentationIndicator::Allowed,
            screening: Screening::Network,
        }),
        "2125551234",
    )
    .ok();
    let inband = Progress::new(Location::PublicLocal, ProgressDescription::InbandAvailable);
    let mut msgs = Vec::new();
    for variant in [Variant::Etsi, Variant::Ni2] {
        let Some(called) = called.clone() else {
            break;
        };
        msgs.push(Message::setup(
            cr,
            &SetupParams {
                variant,
                bearer: BearerCapability::g711(TransferCapability::Speech, variant.default_law()),
                channel: ChannelSel::Exclusive(1),
                called,
                calling: calling.clone(),
                calling_name: Ia5::new("Jane Doe").ok(),
                sending_complete: true,
                progress: Some(Progress::new(
                    Location::User,
                    ProgressDescription::OriginationNonIsdn,
                )),
            },
        ));
    }
    msgs.extend([
        Message::setup_ack(back, Some(ChannelSel::Preferred(3)), Some(inband)),
        Message::call_proceeding(back, Some(ChannelSel::Exclusive(1))),
        Message::alerting(back, None, Some(inband)),
        Message::connect(back, None),
        Message::connect_ack(cr),
        Message::disconnect(
            back,
            CauseIe::new(Cause::USER_BUSY, Location::PublicLocal),
            Some(inband),
        ),
        Message::release(cr, Some(user(Cause::NORMAL_CLEARING))),
        Message::release_complete(back, Some(user(Cause::NORMAL_CLEARING))),
        Message::status(
            back,
            user(Cause::MANDATORY_IE_MISSING).with_diagnostics(&[0x18]),
            CallStateValue::Active,
        ),
        Message::status_enquiry(cr),
        Message::restart(RestartClass::Indicated, &[1, 2, 3]),
        Message::restart_ack(RestartClass::AllInterfaces, &[]),
        Message::setup(
            cr,
            &SetupParams {
                variant: Variant::Etsi,
                bearer: BearerCapability::g711(TransferCapability::Audio3k1, Law::Alaw),
                channel: ChannelSel::Any,
                called: CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "")
                    .expect("the empty number is IA5"),
                calling: None,
                calling_name: None,
                sending_complete: false,
                progress: None,
            },
        ),
    ]);
    let mut seeds: Vec<Vec<u8>> = msgs.iter().filter_map(|m| m.to_bytes().ok()).collect();
    // Shifts (non-locking to 5, locking to 6), an unknown element, a
    // display with a type octet, a slot map, NFAS interface identifier.
    seeds.push(vec![
        0x08, 0x02, 0x00, 0x07, 0x05, 0x04, 0x03, 0x88, 0x98, 0x86, 0x18, 0x05, 0xE9, 0x81, 0x93,
        0x00, 0x01, 0x28, 0x03, 0xB1, 0x4A, 0x44, 0x73, 0x01, 0x00, 0x9D, 0x32, 0x01, 0x81, 0x96,
        0x7B, 0x01, 0x81, 0xA1,
    ]);
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decode_and_pass() {
        let seeds = seeds();
        assert!(seeds.len() > 15);
        for s in &seeds {
            assert!(Message::decode(s).is_ok(), "{s:02x?}");
            run(s);
        }
    }
}
