//! What a leg plays: a list of pre-encoded prompts, one 20 ms frame per
//! tick, ended by its last frame, a newer play, a stop, or — when the play
//! is interruptible — a key. Playing is a slice borrow per frame.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::codec::Codec;
use crate::media::events::MediaEvent;
use crate::media::prompt::Prompt;

struct Playback {
    id: u64,
    prompts: Vec<Arc<Prompt>>,
    /// The prompt playing and its next frame.
    prompt: usize,
    frame: usize,
    interruptible: bool,
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
        }
    }

    /// The next frame in `codec` (call after [`Player::advance`] said one
    /// is due); `None` if the prompt has none in this codec.
    pub fn next_frame(&mut self, codec: Codec) -> Option<&[u8]> {
        let p = self.playing.as_mut()?;
        let index = p.frame;
        p.frame += 1;
        p.prompts.get(p.prompt)?.frame(codec, index)
    }
}
