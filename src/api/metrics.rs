//! `/metrics`: the Prometheus text format, written by the `metrics`
//! facade's Prometheus exporter from values read at each scrape (the server
//! loop's counters, the trunks, the campaigns in the store), so nothing on
//! a call's path touches a metric. The recorder is local to the API (no
//! global recorder), and lives as long as it: counters are set to their
//! absolute values, and the store histogram keeps its history.

use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use super::error::ApiError;
use super::ApiState;
use crate::server::campaigns::Control;
use crate::server::stats::ServerStats;
use crate::store::CampaignState;

/// The recorder behind `/metrics`, with every metric's help text.
pub fn recorder() -> PrometheusRecorder {
    let buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
    ];
    let delay_buckets = [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.2, 0.3, 0.5];
    let tts_buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    // Only an empty bucket list is refused, and neither is empty.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("rivr_store_query_seconds".into()), &buckets)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("rivr_jitter_buffer_delay_seconds".into()),
                &delay_buckets,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("rivr_tts_synth_seconds".into()), &tts_buckets)
        })
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    metrics::with_local_recorder(&recorder, describe);
    recorder
}

fn describe() {
    describe_gauge!(
        "rivr_calls_active",
        "Calls not yet closed, by direction and state (ringing, answered, ending)"
    );
    describe_counter!(
        "rivr_call_legs_ended_total",
        "Call legs ended (one CDR each), by direction, trunk and outcome"
    );
    describe_counter!(
        "rivr_calls_offered_total",
        "Inbound calls offered (INVITEs and SETUPs)"
    );
    describe_counter!(
        "rivr_calls_no_route_total",
        "Inbound calls with no [[route]] for the number"
    );
    describe_counter!(
        "rivr_calls_admitted_total",
        "Calls admission control let in"
    );
    describe_counter!(
        "rivr_calls_refused_total",
        "Calls refused before routing, by reason"
    );
    describe_counter!(
        "rivr_scripts_started_total",
        "Call scripts started (result=started) or that could not start"
    );
    describe_counter!(
        "rivr_sip_messages_dropped_total",
        "SIP messages dropped unanswered, by reason"
    );
    describe_counter!(
        "rivr_sip_malformed_answered_total",
        "Malformed SIP requests answered 400"
    );
    describe_counter!(
        "rivr_sip_retransmissions_absorbed_total",
        "SIP retransmissions answered by their transaction"
    );
    describe_counter!(
        "rivr_sip_sipfrag_malformed_total",
        "Transfer NOTIFYs whose message/sipfrag body was no status line"
    );
    describe_counter!(
        "rivr_sip_failovers_total",
        "Requests moved to a trunk's next address"
    );
    describe_counter!(
        "rivr_signalling_panics_total",
        "Panics caught in the signalling loop (each ends at most one call)"
    );
    describe_gauge!("rivr_sip_tcp_connections", "SIP TCP connections open");
    describe_counter!(
        "rivr_sip_tcp_accepted_total",
        "SIP TCP connections accepted"
    );
    describe_counter!(
        "rivr_sip_tcp_refused_total",
        "SIP TCP connections closed at once (limits, untrusted source)"
    );
    describe_gauge!(
        "rivr_trunk_up",
        "1 when the trunk answers OPTIONS (SIP) or has a D-channel up (PRI)"
    );
    describe_gauge!(
        "rivr_trunk_registered",
        "1 when the SIP trunk's registration is current (trunks that register)"
    );
    describe_gauge!(
        "rivr_trunk_channels_in_use",
        "Calls holding a channel of the trunk"
    );
    describe_gauge!("rivr_trunk_channels_max", "The trunk's max_channels");
    describe_gauge!(
        "rivr_campaign_contacts",
        "Contacts of each campaign, by where they stand"
    );
    describe_gauge!(
        "rivr_campaign_state",
        "1 for each campaign's current state, 0 for the others"
    );
    describe_histogram!(
        "rivr_store_query_seconds",
        Unit::Seconds,
        "Time the API's store reads took (campaign progress at each scrape)"
    );
    describe_counter!(
        "rivr_media_legs_closed_total",
        "Call legs whose media closed (media counters grow when a leg closes)"
    );
    describe_counter!(
        "rivr_rtp_packets_received_total",
        "RTP packets accepted from peers, over closed legs"
    );
    describe_counter!(
        "rivr_rtp_packets_sent_total",
        "RTP packets sent, over closed legs"
    );
    describe_counter!(
        "rivr_rtp_packets_lost_total",
        "RTP packets lost on the way in (RFC 3550 cumulative loss), over closed legs"
    );
    describe_counter!(
        "rivr_rtp_packets_dropped_total",
        "Inbound RTP dropped (malformed, wrong source, unknown payload type…), over closed legs"
    );
    describe_counter!(
        "rivr_jitter_buffer_frames_total",
        "Jitter-buffer playout decisions (played, concealed), over closed legs"
    );
    describe_counter!(
        "rivr_jitter_buffer_packets_late_total",
        "Packets that came after their playout time, over closed legs"
    );
    describe_counter!(
        "rivr_jitter_buffer_packets_lost_total",
        "Sequence numbers never played because they never came in time, over closed legs"
    );
    describe_histogram!(
        "rivr_jitter_buffer_delay_seconds",
        Unit::Seconds,
        "Each closed leg's final jitter-buffer target delay"
    );
    describe_counter!(
        "rivr_dtmf_digits_total",
        "Keys heard, by source (rfc4733, signalling, inband, simulated), over closed legs"
    );
    describe_gauge!("rivr_smpp_bound", "1 while the SMPP session is bound");
    describe_gauge!(
        "rivr_smpp_window",
        "Outstanding submit_sm at most ([smpp] window)"
    );
    describe_gauge!(
        "rivr_smpp_outstanding",
        "submit_sm sent and not yet answered"
    );
    describe_gauge!(
        "rivr_smpp_pending",
        "SMS parts waiting to be sent or answered"
    );
    describe_counter!(
        "rivr_smpp_submits_total",
        "submit_sm written (retries included)"
    );
    describe_counter!(
        "rivr_smpp_responses_total",
        "submit_sm answers, by result (accepted, rejected, throttled)"
    );
    describe_counter!("rivr_smpp_receipts_total", "Delivery receipts received");
    describe_counter!(
        "rivr_smpp_connects_total",
        "TCP connections made to the SMSC"
    );
    describe_counter!(
        "rivr_smpp_malformed_total",
        "Bytes from the SMSC that were not a readable PDU"
    );
    describe_counter!(
        "rivr_script_ends_total",
        "Call scripts ended, by how (completed, hung_up, caller_hung_up, failed)"
    );
    describe_counter!(
        "rivr_script_limits_hit_total",
        "Scripts stopped by a limit, by which ([script] limits; Rhai's own)"
    );
    describe_counter!(
        "rivr_script_panics_total",
        "Panics caught in script threads (each failed one call)"
    );
    describe_counter!(
        "rivr_media_panics_total",
        "Panics caught in the media workers (each ends at most one call)"
    );
    describe_counter!(
        "rivr_tts_cache_hits_total",
        "say() texts found already made, by where (memory, in_flight, disk)"
    );
    describe_counter!(
        "rivr_tts_synth_total",
        "Text-to-speech syntheses run, by result (ok, failed)"
    );
    describe_histogram!(
        "rivr_tts_synth_seconds",
        Unit::Seconds,
        "Time each successful text-to-speech synthesis took (engine, resampling, encoding)"
    );
    describe_gauge!("rivr_tts_cache_entries", "Sentences in the TTS cache");
    describe_gauge!(
        "rivr_tts_cache_bytes",
        "Bytes the TTS cache holds ([tts] cache_bytes at most)"
    );
    describe_gauge!(
        "rivr_uptime_seconds",
        Unit::Seconds,
        "Seconds since the HTTP API started"
    );
}

/// Precision is not at stake: gauges are f64 in the format itself.
fn f(v: u64) -> f64 {
    v as f64
}

fn record_server(st: &ServerStats) {
    for direction in ["inbound", "outbound"] {
        for state in ["ringing", "answered", "ending"] {
            let n = st
                .calls_live
                .iter()
                .filter(|(d, s, _)| *d == direction && *s == state)
                .map(|(_, _, n)| *n)
                .sum();
            gauge!("rivr_calls_active", "direction" => direction, "state" => state).set(f(n));
        }
    }
    for ((direction, trunk, outcome), n) in &st.calls_ended {
        counter!(
            "rivr_call_legs_ended_total",
            "direction" => *direction,
            "trunk" => trunk.clone(),
            "outcome" => *outcome
        )
        .absolute(*n);
    }
    counter!("rivr_calls_offered_total").absolute(st.offered);
    counter!("rivr_calls_no_route_total").absolute(st.no_route);
    counter!("rivr_calls_admitted_total").absolute(st.admitted);
    for (reason, n) in [
        ("max_calls", st.refused_full),
        ("max_cps", st.refused_too_fast),
        ("flood", st.flood_refused),
        ("untrusted", st.untrusted_rejected),
    ] {
        counter!("rivr_calls_refused_total", "reason" => reason).absolute(n);
    }
    counter!("rivr_scripts_started_total", "result" => "started").absolute(st.scripts_started);
    counter!("rivr_scripts_started_total", "result" => "not_started")
        .absolute(st.scripts_not_started);
    for (reason, n) in [
        ("malformed", st.sip_malformed_dropped),
        ("untrusted", st.untrusted_dropped),
        ("silenced", st.flood_silenced),
        ("oversize", st.udp_oversize_dropped),
    ] {
        counter!("rivr_sip_messages_dropped_total", "reason" => reason).absolute(n);
    }
    counter!("rivr_sip_malformed_answered_total").absolute(st.sip_malformed_answered);
    counter!("rivr_sip_retransmissions_absorbed_total").absolute(st.sip_retransmissions_absorbed);
    counter!("rivr_sip_failovers_total").absolute(st.sip_failovers);
    counter!("rivr_sip_sipfrag_malformed_total").absolute(st.sip_sipfrag_malformed);
    counter!("rivr_signalling_panics_total").absolute(st.signalling_panics);
    gauge!("rivr_sip_tcp_connections").set(f(st.tcp_open));
    counter!("rivr_sip_tcp_accepted_total").absolute(st.tcp_accepted);
    counter!("rivr_sip_tcp_refused_total").absolute(st.tcp_refused);
    let m = &st.media;
    counter!("rivr_media_legs_closed_total").absolute(m.legs_closed);
    counter!("rivr_rtp_packets_received_total").absolute(m.packets_received);
    counter!("rivr_rtp_packets_sent_total").absolute(m.packets_sent);
    counter!("rivr_rtp_packets_lost_total").absolute(m.packets_lost);
    counter!("rivr_rtp_packets_dropped_total").absolute(m.packets_dropped);
    counter!("rivr_jitter_buffer_frames_total", "decision" => "played").absolute(m.jb_played);
    counter!("rivr_jitter_buffer_frames_total", "decision" => "concealed").absolute(m.jb_concealed);
    counter!("rivr_jitter_buffer_packets_late_total").absolute(m.jb_late);
    counter!("rivr_jitter_buffer_packets_lost_total").absolute(m.jb_lost);
    for (source, n) in ["rfc4733", "signalling", "inband", "simulated"]
        .into_iter()
        .zip(m.digits)
    {
        counter!("rivr_dtmf_digits_total", "source" => source).absolute(n);
    }
    counter!("rivr_media_panics_total").absolute(st.media_panics);
    let sc = &st.scripts;
    for (end, n) in [
        ("completed", sc.completed),
        ("hung_up", sc.hung_up),
        ("caller_hung_up", sc.caller_hung_up),
        ("failed", sc.failed),
    ] {
        counter!("rivr_script_ends_total", "end" => end).absolute(n);
    }
    for (limit, n) in crate::script::ends::Limit::ALL.iter().zip(sc.limits) {
        counter!("rivr_script_limits_hit_total", "limit" => limit.as_str()).absolute(n);
    }
    counter!("rivr_script_panics_total").absolute(st.script_panics);
    let tts = &st.tts;
    for (source, n) in [
        ("memory", tts.hits_memory),
        ("in_flight", tts.hits_in_flight),
        ("disk", tts.hits_disk),
    ] {
        counter!("rivr_tts_cache_hits_total", "where" => source).absolute(n);
    }
    counter!("rivr_tts_synth_total", "result" => "ok").absolute(tts.synth_ok);
    counter!("rivr_tts_synth_total", "result" => "failed").absolute(tts.synth_failed);
    gauge!("rivr_tts_cache_entries").set(f(tts.entries));
    gauge!("rivr_tts_cache_bytes").set(f(tts.bytes));
    for t in &st.trunks {
        let labels = [("trunk", t.name.clone()), ("kind", t.kind.to_string())];
        gauge!("rivr_trunk_up", &labels).set(f64::from(u8::from(t.up)));
        gauge!("rivr_trunk_channels_in_use", &labels).set(f64::from(t.channels_in_use));
        gauge!("rivr_trunk_channels_max", &labels).set(f64::from(t.max_channels));
        if let Some(r) = t.registered {
            gauge!("rivr_trunk_registered", &labels).set(f64::from(u8::from(r)));
        }
    }
}

/// One campaign's progress, read from the store.
struct CampaignRow {
    id: String,
    state: CampaignState,
    counts: [(&'static str, u64); 4],
}

const STATES: [CampaignState; 5] = [
    CampaignState::Created,
    CampaignState::Running,
    CampaignState::Paused,
    CampaignState::Done,
    CampaignState::Cancelled,
];

pub async fn scrape(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let st = s.ask(|reply| Control::Stats { reply }).await?;
    let delays = s.ask(|reply| Control::JitterDelays { reply }).await?;
    let tts_times = s.ask(|reply| Control::TtsSynthTimes { reply }).await?;
    let t0 = Instant::now();
    let now_ms = crate::store::now_ms();
    let mut rows = Vec::new();
    for c in s.store.campaigns().await? {
        let p = s.store.campaign_status(&c.id, now_ms).await?;
        rows.push(CampaignRow {
            id: c.id,
            state: c.state,
            counts: [
                ("done", p.done),
                ("remaining", p.remaining),
                ("in_progress", p.in_progress),
                ("waiting", p.waiting),
            ],
        });
    }
    let store_s = t0.elapsed().as_secs_f64();
    let link = s
        .sms
        .as_ref()
        .map(|m| m.link_status())
        .filter(|l| l.transport == "smpp");
    let uptime = s.started.elapsed().as_secs_f64();
    metrics::with_local_recorder(&*s.metrics, || {
        record_server(&st);
        for r in &rows {
            for (what, n) in r.counts {
                gauge!("rivr_campaign_contacts", "campaign" => r.id.clone(), "state" => what)
                    .set(f(n));
            }
            for state in STATES {
                gauge!("rivr_campaign_state", "campaign" => r.id.clone(), "state" => state.as_str())
                    .set(f64::from(u8::from(state == r.state)));
            }
        }
        if let Some(l) = &link {
            gauge!("rivr_smpp_bound").set(f64::from(u8::from(l.bound)));
            gauge!("rivr_smpp_window").set(l.window as f64);
            gauge!("rivr_smpp_outstanding").set(l.outstanding as f64);
            gauge!("rivr_smpp_pending").set(l.pending as f64);
            counter!("rivr_smpp_submits_total").absolute(l.submits);
            counter!("rivr_smpp_responses_total", "result" => "accepted").absolute(l.accepted);
            counter!("rivr_smpp_responses_total", "result" => "rejected").absolute(l.rejected);
            counter!("rivr_smpp_responses_total", "result" => "throttled").absolute(l.throttled);
            counter!("rivr_smpp_receipts_total").absolute(l.receipts);
            counter!("rivr_smpp_connects_total").absolute(l.connects);
            counter!("rivr_smpp_malformed_total").absolute(l.malformed);
        }
        metrics::histogram!("rivr_store_query_seconds").record(store_s);
        for d in &delays {
            metrics::histogram!("rivr_jitter_buffer_delay_seconds").record(*d);
        }
        for t in &tts_times {
            metrics::histogram!("rivr_tts_synth_seconds").record(*t);
        }
        gauge!("rivr_uptime_seconds").set(uptime);
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.handle().render(),
    ))
}
