//! One leg as a media worker serves it: its sans-IO [`MediaCore`], the
//! [`PacketPath`] its packets take, whether it may send yet, and where
//! its events go. The worker calls [`MediaCall::receive`] and
//! [`MediaCall::send`] once per tick (joined audio is handed over between
//! the two); neither allocates nor locks.

use std::time::Instant;

use crate::media::classify::{Classifier, ClassifyKind};
use crate::media::core::MediaCore;
use crate::media::events::{MediaEvent, MediaEventSink};
use crate::media::record::{EndRules, EndedBy, RecordSink};
use crate::media::send_gate::Flow;

use super::bchannel_path::BChannelPath;
use super::commands::{BChannelSetup, MediaCallSetup};
use super::path::PacketPath;
use super::recording::Recording;
use super::rtp_path::RtpPath;

pub(super) struct MediaCall {
    pub core: MediaCore,
    pub path: PacketPath,
    pub events: Box<dyn MediaEventSink>,
    /// Media may go to the peer (`Start`: early media, or answered).
    pub sending: bool,
    /// The peer holds the call (sendonly/inactive): nothing is sent, the
    /// media clock runs on.
    pub held: bool,
    /// Keys heard, by `totals::DIGIT_SOURCES` (added to the pool's totals
    /// when the call closes, so the tick touches nothing shared).
    pub digits: [u64; 4],
    /// What the leg hears is being recorded (`MediaCommand::Record`).
    recording: Option<Recording>,
    /// Classifiers listening to what the leg hears (`MediaCommand::Classify`).
    classifiers: Vec<Classifier>,
    /// Test hook: panic on the next tick.
    #[cfg(test)]
    pub panic_on_tick: bool,
}

impl MediaCall {
    pub fn new(s: MediaCallSetup, now: Instant) -> MediaCall {
        let ptime_ms = s.session.ptime_ms;
        let path = RtpPath::new(
            s.ports,
            s.allocator,
            s.session,
            s.codec,
            s.configured,
            s.early_media_unverified,
            now,
        );
        let mut core = MediaCore::new(s.codec, path.telephone_events(), ptime_ms);
        core.set_inband_policy(s.inband_dtmf);
        MediaCall {
            core,
            path: PacketPath::Rtp(path),
            events: s.events,
            sending: false,
            held: false,
            digits: [0; 4],
            recording: None,
            classifiers: Vec::new(),
            #[cfg(test)]
            panic_on_tick: false,
        }
    }

    /// A B-channel leg: 20 ms frames, no telephone-events (keys are
    /// heard and sent in-band).
    pub fn bchannel(s: BChannelSetup, now: Instant) -> MediaCall {
        MediaCall {
            core: MediaCore::new(s.codec, false, 20),
            path: PacketPath::BChannel(BChannelPath::open(s.path, s.kind, s.codec, now)),
            events: s.events,
            sending: false,
            held: false,
            digits: [0; 4],
            recording: None,
            classifiers: Vec::new(),
            #[cfg(test)]
            panic_on_tick: false,
        }
    }

    /// Passes the core's events to the owner; a key may end a recording
    /// (reported right after the key).
    pub fn flush_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            let mut ended = None;
            if let MediaEvent::Digit { digit, source } = e {
                if let Some(n) = self.digits.get_mut(super::totals::digit_index(source)) {
                    *n += 1;
                }
                ended = self.recording.as_mut().and_then(|r| r.key(digit, source));
            }
            self.events.emit(e);
            self.recording_ended(ended);
        }
    }

    /// Starts recording what the leg hears; one still running is stopped.
    pub fn start_recording(&mut self, id: u64, rules: EndRules, sink: Box<RecordSink>) {
        let old = self
            .recording
            .as_mut()
            .and_then(|r| r.stop(EndedBy::Stopped));
        self.recording_ended(old);
        self.recording = Some(Recording::new(id, rules, sink));
    }

    /// Ends the recording `id` if it is the one running.
    pub fn stop_recording(&mut self, id: u64, by: EndedBy) {
        let ended = self
            .recording
            .as_mut()
            .filter(|r| r.id == id)
            .and_then(|r| r.stop(by));
        self.recording_ended(ended);
    }

    /// Starts a classifier on what the leg hears (replacing one with `id`).
    pub fn start_classifier(&mut self, id: u64, kind: ClassifyKind) {
        self.classifiers.retain(|c| c.id != id);
        self.classifiers.push(Classifier::new(id, kind));
    }

    pub fn stop_classifier(&mut self, id: u64) {
        self.classifiers.retain(|c| c.id != id);
    }

    /// This tick's heard frame through each classifier.
    fn classify(&mut self) {
        let pcm = self.core.heard();
        let events = &self.events;
        self.classifiers.retain_mut(|c| {
            let (found, done) = c.frame(pcm);
            if let Some(result) = found {
                events.emit(MediaEvent::Classified { id: c.id, result });
            }
            !done
        });
    }

    fn recording_ended(&mut self, ended: Option<MediaEvent>) {
        if let Some(e) = ended {
            self.recording = None;
            self.events.emit(e);
        }
    }

    /// The first half of a tick: what arrived, and one frame heard.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8]) {
        #[cfg(test)]
        if std::mem::take(&mut self.panic_on_tick) {
            panic!("injected panic while serving a call");
        }
        self.path.receive(now, buf, &mut self.core);
        self.core.hear(now);
        let ended = match self.recording.as_mut() {
            Some(r) => r.frame(self.core.heard()),
            None => None,
        };
        self.recording_ended(ended);
        if !self.classifiers.is_empty() {
            self.classify();
        }
        self.flush_events();
    }

    /// The second half: this tick's frame and any RTCP due, as the
    /// reflection guard allows ([`Flow`]): sent; held (nothing advances —
    /// the prompt waits for the peer); or muted (the media clock runs —
    /// prompts advance, keys go by — and nothing leaves the socket).
    pub fn send(&mut self, now: Instant, buf: &mut [u8]) {
        let flow = self.path.flow(now);
        match flow.filter(|_| self.sending) {
            None => {}
            Some(Flow::Hold) => self.path.hold(),
            Some(f) => {
                let out = self.core.next_output();
                self.path
                    .send(now, &out, f == Flow::Send && !self.held, buf);
            }
        }
        self.path.send_reports(now, buf, flow == Some(Flow::Send));
        self.core.end_tick();
        self.flush_events();
    }
}
