//! The file side of a recording: a writer thread fed by the media worker
//! through a bounded channel of pre-allocated frame buffers.
//!
//! The worker's per-frame cost is two non-blocking channel operations on
//! crossbeam's array channels (take a free buffer, send it full) and a
//! 320-byte copy. Neither side ever blocks on the other: the writer
//! drains its channel every [`POLL`] and sleeps in between, so no sender
//! has a waiter to wake (which would take a lock and a system call per
//! frame). When the pool runs dry — the disk stalled for more than
//! [`POOL_FRAMES`] × 20 ms — frames are counted, not lost in time: the
//! writer puts that much silence in their place, so the file keeps the
//! call's timing.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::detector::{End, EndedBy, INBAND_KEY_FRAMES};
use super::{is_valid_id, RecordError};
use crate::media::core::FRAME;

/// Frame buffers per recording: 5.12 s of audio the disk may fall behind
/// by (80 KiB).
pub const POOL_FRAMES: usize = 256;
/// How often the writer drains what the worker sent.
pub const POLL: Duration = Duration::from_millis(40);
/// The writer holds back this many frames, so an end that drops frames
/// (a key heard in the audio) can drop them before they are written.
const HOLD_BACK: usize = INBAND_KEY_FRAMES as usize;
const RATE_HZ: u32 = 8000;
const HEADER_BYTES: u32 = 44;

type Frame = Box<[i16; FRAME]>;

enum ToWriter {
    /// `gap_before` frames were lost (the pool was empty) before this one.
    Frame {
        pcm: Frame,
        gap_before: u32,
    },
    End {
        end: End,
        gap_before: u32,
    },
}

/// The worker's end of a recording.
pub struct RecordSink {
    full: Sender<ToWriter>,
    free: Receiver<Frame>,
    gap: u32,
    ended: bool,
}

impl RecordSink {
    /// Hands one 20 ms frame to the writer; never blocks, never allocates.
    pub fn push(&mut self, pcm: &[i16; FRAME]) {
        if self.ended {
            return;
        }
        let Ok(mut buf) = self.free.try_recv() else {
            self.gap = self.gap.saturating_add(1);
            return;
        };
        buf.copy_from_slice(pcm);
        // The channel holds every buffer there is and one end: a send fails
        // only when the writer is gone (its error is in its result).
        let msg = ToWriter::Frame {
            pcm: buf,
            gap_before: self.gap,
        };
        if self.full.try_send(msg).is_ok() {
            self.gap = 0;
        }
    }

    /// The recording is over; what is written is closed and kept.
    pub fn end(&mut self, end: End) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let _ = self.full.try_send(ToWriter::End {
            end,
            gap_before: self.gap,
        });
    }
}

impl Drop for RecordSink {
    /// A leg removed (the call ended) or dropped by a failure: the file is
    /// closed as a hangup's.
    fn drop(&mut self) {
        self.end(End {
            by: EndedBy::Hangup,
            drop_frames: 0,
        });
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: String,
    pub path: PathBuf,
    pub duration_ms: u64,
    pub ended_by: EndedBy,
    /// Frames the disk fell too far behind for, written as silence.
    pub lost_frames: u64,
}

/// The owner's end: waits for the file to be closed.
pub struct RecordHandle {
    join: JoinHandle<Result<Recorded, RecordError>>,
}

impl RecordHandle {
    /// Blocks until the writer has closed (and renamed) the file, or
    /// failed. Call it after the sink ended (or was dropped).
    pub fn wait(self) -> Result<Recorded, RecordError> {
        self.join.join().map_err(|_| RecordError::WriterFailed)?
    }

    /// True once the writer is done.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

/// Opens `dir/ID.wav.part` (creating `dir` if needed) and starts its
/// writer. Errors — a folder that cannot be made, a file that cannot be
/// created — come back here, before any audio.
pub fn start(dir: &Path, id: &str) -> Result<(RecordSink, RecordHandle), RecordError> {
    if !is_valid_id(id) {
        return Err(RecordError::BadId(id.to_owned()));
    }
    std::fs::create_dir_all(dir).map_err(|source| RecordError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    let part = dir.join(format!("{id}.wav.part"));
    let done = dir.join(format!("{id}.wav"));
    let file = File::create(&part).map_err(|source| RecordError::Create {
        path: part.clone(),
        source,
    })?;
    let (full_tx, full_rx) = crossbeam_channel::bounded(POOL_FRAMES + 1);
    let (free_tx, free_rx) = crossbeam_channel::bounded(POOL_FRAMES);
    for _ in 0..POOL_FRAMES {
        let _ = free_tx.try_send(Box::new([0i16; FRAME]));
    }
    let writer = Writer {
        out: WavOut::new(file),
        part: part.clone(),
        done,
        id: id.to_owned(),
        free: free_tx,
        held: VecDeque::with_capacity(HOLD_BACK + 1),
        lost: 0,
    };
    let join = std::thread::Builder::new()
        .name("record".into())
        .stack_size(256 * 1024)
        .spawn(move || writer.run(full_rx))
        .map_err(|e| {
            let _ = std::fs::remove_file(&part);
            RecordError::Thread(e)
        })?;
    let sink = RecordSink {
        full: full_tx,
        free: free_rx,
        gap: 0,
        ended: false,
    };
    Ok((sink, RecordHandle { join }))
}

struct Writer {
    out: WavOut,
    part: PathBuf,
    done: PathBuf,
    id: String,
    free: Sender<Frame>,
    held: VecDeque<Frame>,
    lost: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<ToWriter>) -> Result<Recorded, RecordError> {
        loop {
            match rx.try_recv() {
                Ok(ToWriter::Frame { pcm, gap_before }) => {
                    if gap_before > 0 {
                        self.flush_held();
                        self.gap(gap_before);
                    }
                    self.held.push_back(pcm);
                    if self.held.len() > HOLD_BACK {
                        if let Some(f) = self.held.pop_front() {
                            self.write(f);
                        }
                    }
                }
                Ok(ToWriter::End { end, gap_before }) => return self.finish(end, gap_before),
                Err(TryRecvError::Disconnected) => {
                    let end = End {
                        by: EndedBy::Hangup,
                        drop_frames: 0,
                    };
                    return self.finish(end, 0);
                }
                Err(TryRecvError::Empty) => std::thread::sleep(POLL),
            }
        }
    }

    fn write(&mut self, f: Frame) {
        self.out.frame(&f[..]);
        let _ = self.free.try_send(f);
    }

    fn flush_held(&mut self) {
        while let Some(f) = self.held.pop_front() {
            self.write(f);
        }
    }

    fn gap(&mut self, frames: u32) {
        self.lost += u64::from(frames);
        let zeros = [0i16; FRAME];
        for _ in 0..frames {
            self.out.frame(&zeros);
        }
    }

    /// The tail — held frames, then the frames lost at the very end — less
    /// what the end drops; then the file is closed and renamed.
    fn finish(mut self, end: End, gap_before: u32) -> Result<Recorded, RecordError> {
        let tail = self.held.len() + gap_before as usize;
        let mut keep = tail.saturating_sub(end.drop_frames as usize);
        while keep > 0 {
            match self.held.pop_front() {
                Some(f) => self.write(f),
                None => self.gap(1),
            }
            keep -= 1;
        }
        let frames = self.out.frames;
        let closed = self.out.close();
        let path = self.done.clone();
        let result = closed.and_then(|()| std::fs::rename(&self.part, &self.done));
        if let Err(source) = result {
            let _ = std::fs::remove_file(&self.part);
            return Err(RecordError::Write {
                path: self.part.clone(),
                source,
            });
        }
        if self.lost > 0 {
            tracing::warn!(recording = %self.id, frames = self.lost, "the disk fell behind: frames written as silence");
        }
        Ok(Recorded {
            id: std::mem::take(&mut self.id),
            path,
            duration_ms: frames * 20,
            ended_by: end.by,
            lost_frames: self.lost,
        })
    }
}

/// 16-bit mono 8 kHz PCM in a RIFF/WAVE file, sizes filled in at close.
/// The first write error is kept and later writes skipped.
struct WavOut {
    w: BufWriter<File>,
    frames: u64,
    error: Option<std::io::Error>,
    bytes: [u8; FRAME * 2],
}

impl WavOut {
    fn new(file: File) -> Self {
        let mut out = WavOut {
            w: BufWriter::with_capacity(64 * 1024, file),
            frames: 0,
            error: None,
            bytes: [0; FRAME * 2],
        };
        let header = header(0);
        out.put(&header);
        out
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.w.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    fn frame(&mut self, pcm: &[i16]) {
        let mut n = 0;
        for (chunk, s) in self.bytes.chunks_exact_mut(2).zip(pcm) {
            chunk.copy_from_slice(&s.to_le_bytes());
            n += 2;
        }
        let bytes = self.bytes;
        self.put(&bytes[..n]);
        if self.error.is_none() {
            self.frames += 1;
        }
    }

    /// Fills in the sizes, flushes and syncs.
    fn close(mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let data = u32::try_from(self.frames * FRAME as u64 * 2).unwrap_or(u32::MAX - HEADER_BYTES);
        self.w.seek(SeekFrom::Start(0))?;
        self.w.write_all(&header(data))?;
        let file = self.w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

fn header(data_bytes: u32) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    let mut at = 0;
    let mut put = |b: &[u8]| {
        if let Some(dst) = h.get_mut(at..at + b.len()) {
            dst.copy_from_slice(b);
        }
        at += b.len();
    };
    put(b"RIFF");
    put(&(data_bytes.saturating_add(HEADER_BYTES - 8)).to_le_bytes());
    put(b"WAVEfmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes()); // PCM
    put(&1u16.to_le_bytes()); // mono
    put(&RATE_HZ.to_le_bytes());
    put(&(RATE_HZ * 2).to_le_bytes());
    put(&2u16.to_le_bytes());
    put(&16u16.to_le_bytes());
    put(b"data");
    put(&data_bytes.to_le_bytes());
    h
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
