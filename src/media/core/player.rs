//! What a leg plays: a list of pre-encoded prompts, one 20 ms frame per
//! tick, ended by its last frame, a newer play, a stop, or — when the play
//! is interruptible — a key. Playing is a slice borrow per frame.
//!
//! A leg sending 10 ms Opus frames plays a prompt's 10 ms encoding when
//! the prompt has one as it starts; until the prompt has been encoded so
//! (the worker has it done off the tick, on first need), that prompt is
//! played from its PCM through the leg's own encoder, to its end, so one
//! prompt never mixes two encoder streams.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::codec::Codec;
use crate::media::events::MediaEvent;
use crate::media::opus::FrameDuration;
use crate::media::prompt::{Prompt, FRAME_SAMPLES};

struct Playback {
    id: u64,
    prompts: Vec<Arc<Prompt>>,
    /// The prompt playing and its next frame.
    prompt: usize,
    frame: usize,
    interruptible: bool,
    /// 10 ms Opus: whether the prompt playing goes through the leg's
    /// encoder (decided when it is first sent in 10 ms frames).
    live: Option<bool>,
}

/// A prompt's next 20 ms as the leg sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PromptFrame<'a> {
    /// Pre-encoded: 160 G.711 bytes, or one 20 ms Opus packet.
    Whole(&'a [u8]),
    /// Pre-encoded: two 10 ms Opus packets.
    Halves([&'a [u8]; 2]),
    /// The 8 kHz PCM, for the leg's encoder (up to 160 samples: the last
    /// frame is not padded).
    Pcm(&'a [i16]),
}

/// The leg's current play, if any.
#[derive(Default)]
pub(super) struct Player {
    playing: Option<Playback>,
}

impl Player {
    /// Starts a play; one still running ends as interrupted.
    pub fn play(
        &mut self,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
        events: &mut VecDeque<MediaEvent>,
    ) {
        self.end(events, true);
        self.playing = Some(Playback {
            id,
            prompts,
            prompt: 0,
            frame: 0,
            interruptible,
            live: None,
        });
    }

    /// Stops the play `id` if it is the one running.
    pub fn stop(&mut self, id: u64, events: &mut VecDeque<MediaEvent>) {
        if self.playing.as_ref().is_some_and(|p| p.id == id) {
            self.end(events, true);
        }
    }

    /// A key arrived: an interruptible play stops on this tick.
    pub fn key(&mut self, events: &mut VecDeque<MediaEvent>) {
        if self.playing.as_ref().is_some_and(|p| p.interruptible) {
            self.end(events, true);
        }
    }

    fn end(&mut self, events: &mut VecDeque<MediaEvent>, interrupted: bool) {
        if let Some(p) = self.playing.take() {
            events.push_back(MediaEvent::PlayDone {
                id: p.id,
                interrupted,
            });
        }
    }

    /// Whether a frame is due this tick: moves past prompts that are over
    /// and ends the play (PlayDone) after its last frame.
    pub fn advance(&mut self, events: &mut VecDeque<MediaEvent>) -> bool {
        let Some(p) = self.playing.as_mut() else {
            return false;
        };
        loop {
            let Some(prompt) = p.prompts.get(p.prompt) else {
                self.end(events, false);
                return false;
            };
            if p.frame < prompt.frame_count() {
                return true;
            }
            p.prompt += 1;
            p.frame = 0;
            p.live = None;
        }
    }

    /// The prompts of the play running, if any.
    pub fn prompts(&self) -> &[Arc<Prompt>] {
        self.playing.as_ref().map_or(&[], |p| &p.prompts)
    }

    /// The next frame in `codec`, in Opus frames of `opus` (call after
    /// [`Player::advance`] said one is due); `None` if the prompt has none
    /// in this codec.
    pub fn next_frame(&mut self, codec: Codec, opus: FrameDuration) -> Option<PromptFrame<'_>> {
        let p = self.playing.as_mut()?;
        let index = p.frame;
        p.frame += 1;
        let prompt = p.prompts.get(p.prompt)?;
        if codec != Codec::Opus || opus == FrameDuration::Ms20 {
            return prompt.frame(codec, index).map(PromptFrame::Whole);
        }
        if *p.live.get_or_insert_with(|| !prompt.has_opus_10ms()) {
            let start = index.checked_mul(FRAME_SAMPLES)?;
            let pcm = prompt.pcm_8k();
            let end = start.saturating_add(FRAME_SAMPLES).min(pcm.len());
            return pcm.get(start..end).map(PromptFrame::Pcm);
        }
        prompt.opus_10ms(index).map(PromptFrame::Halves)
    }
}
