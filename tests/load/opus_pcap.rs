//! Writes what an Opus caller says as a pcap of RTP packets, for SIPp's
//! `play_pcap_audio` in `tests/load/inbound.sh` with `CODEC=opus` (SIPp
//! streams only G.711 and G.729 from raw files; a pcap it replays as is).
//!
//!     cargo run --release --example opus_pcap -- IN.wav SECONDS OUT.pcap
//!
//! The recording is looped to SECONDS, encoded to Opus at 8 kHz in 20 ms
//! frames (payload type 111, timestamps +960, in-band FEC on, as a phone
//! would send it), and written with Ethernet/IPv4/UDP headers (127.0.0.1,
//! port 6000 to 6000; SIPp rewrites the addresses) one packet per 20 ms.

use std::io::Write;

use rivr::media::opus::{OpusConfig, OpusEncoder, MAX_PACKET_BYTES};
use rivr::media::prompt::{decode_file, Prompt};

const PT: u8 = 111;
const SSRC: u32 = 0x0bad_cafe;

fn main() {
    if let Err(e) = run() {
        eprintln!("opus_pcap: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, seconds, output] = args.as_slice() else {
        return Err("usage: opus_pcap IN.wav SECONDS OUT.pcap".into());
    };
    let seconds: usize = seconds
        .parse()
        .map_err(|_| format!("SECONDS: {seconds:?} is not a whole number"))?;
    let (samples, rate) = decode_file(input.as_ref()).map_err(|e| e.to_string())?;
    let prompt =
        Prompt::from_samples("caller", &samples, rate, input.into()).map_err(|e| e.to_string())?;
    let pcm = prompt.pcm_8k();
    if pcm.is_empty() {
        return Err(format!("{input}: no audio"));
    }
    let mut enc = OpusEncoder::new(OpusConfig {
        inband_fec: true,
        packet_loss_pct: 5,
        ..OpusConfig::at_rate(8000).map_err(|e| e.to_string())?
    })
    .map_err(|e| e.to_string())?;
    let frames = seconds * 50;
    let mut out = Vec::with_capacity(frames * 120 + 24);
    // pcap global header: microsecond timestamps, Ethernet link type.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut frame = [0i16; 160];
    let mut packet = vec![0u8; MAX_PACKET_BYTES];
    for i in 0..frames {
        for (k, s) in frame.iter_mut().enumerate() {
            *s = pcm[(i * 160 + k) % pcm.len()];
        }
        let n = enc.encode(&frame, &mut packet).map_err(|e| e.to_string())?;
        let rtp = rtp_packet(i, &packet[..n]);
        let udp = udp_ipv4_ethernet(&rtp);
        let t_us = i as u64 * 20_000;
        out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(udp.len() as u32).to_le_bytes());
        out.extend_from_slice(&(udp.len() as u32).to_le_bytes());
        out.extend_from_slice(&udp);
    }
    std::fs::File::create(output)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|e| format!("{output}: {e}"))?;
    println!(
        "{output}: {frames} Opus packets, {seconds} s, {} bytes",
        out.len()
    );
    Ok(())
}

fn rtp_packet(i: usize, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(if i == 0 { 0x80 | PT } else { PT });
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(&((i as u32).wrapping_mul(960)).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp_ipv4_ethernet(rtp: &[u8]) -> Vec<u8> {
    let udp_len = 8 + rtp.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&6000u16.to_be_bytes());
    f.extend_from_slice(&6000u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(rtp);
    f
}
