//! Hostile bytes against `rivr smsc-sim` over real TCP: impossible lengths
//! close the connection, unknown or truncated PDUs get generic_nack, and the
//! simulator keeps serving new binds afterwards.

#[path = "smpp/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use harness::*;
use rivr::sms::pdu::{self, Bind, BindMode, Body, CommandStatus, Pdu};

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_pdu(s: &mut TcpStream) -> Option<Pdu> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Ok(Some(n)) = pdu::frame_len(&buf) {
            return Pdu::decode(&buf[..n]).ok();
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

fn bind(s: &mut TcpStream) -> Pdu {
    let mut b = Vec::new();
    let body = Bind {
        system_id: "rivrsim".into(),
        interface_version: 0x34,
        ..Bind::default()
    };
    Pdu::new(1, Body::Bind(BindMode::Transceiver, body))
        .encode(&mut b)
        .unwrap();
    s.write_all(&b).unwrap();
    read_pdu(s).unwrap()
}

#[test]
fn hostile_pdus_are_answered_or_dropped_and_the_simulator_survives() {
    let dir = temp_dir("malformed");
    let sim = Sim::start(&dir, &[]);

    // An impossible command_length: the connection is closed.
    let mut s = connect(sim.port);
    s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 4]).unwrap();
    assert!(read_pdu(&mut s).is_none());

    let mut s = connect(sim.port);
    assert_eq!(bind(&mut s).status, CommandStatus::OK);
    // Unknown command id.
    s.write_all(&[0, 0, 0, 16, 0, 0, 0x7F, 0x7F, 0, 0, 0, 0, 0, 0, 0, 9])
        .unwrap();
    let nack = read_pdu(&mut s).unwrap();
    assert_eq!(
        (nack.body, nack.sequence, nack.status),
        (Body::GenericNack, 9, CommandStatus::RINVCMDID)
    );
    // A submit_sm whose body ends inside a C-Octet string.
    s.write_all(&[
        0, 0, 0, 19, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 10, b'a', b'b', b'c',
    ])
    .unwrap();
    let nack = read_pdu(&mut s).unwrap();
    assert_eq!(
        (nack.body, nack.sequence, nack.status),
        (Body::GenericNack, 10, CommandStatus::RINVCMDLEN)
    );
    // The PDU split across writes still works: enquire_link in two pieces.
    s.write_all(&[0, 0, 0, 16, 0, 0]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&[0, 0x15, 0, 0, 0, 0, 0, 0, 0, 11]).unwrap();
    assert_eq!(
        read_pdu(&mut s).unwrap(),
        Pdu::new(11, Body::EnquireLinkResp)
    );

    // Random garbage on a third connection, then a clean bind on a fourth.
    let mut s = connect(sim.port);
    let mut x: u32 = 12345;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let _ = s.write_all(&junk);
    let mut s = connect(sim.port);
    assert_eq!(bind(&mut s).status, CommandStatus::OK);
}
