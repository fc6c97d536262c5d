//! The writer: files it closes are valid WAVs holding what was pushed,
//! however the recording ends; disk errors come back as errors.

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rivr-rec-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn frame(k: usize) -> [i16; FRAME] {
    let mut f = [0i16; FRAME];
    for (i, s) in f.iter_mut().enumerate() {
        *s = ((k * FRAME + i) as i16).wrapping_mul(7);
    }
    f
}

fn read(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("a valid WAV");
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn end(by: EndedBy, drop_frames: u32) -> End {
    End { by, drop_frames }
}

#[test]
fn what_is_pushed_is_what_the_file_holds() {
    let dir = TempDir::new("ok");
    let (mut sink, handle) = start(&dir.0.join("sub"), "c1-1").unwrap();
    for k in 0..100 {
        sink.push(&frame(k));
    }
    sink.end(end(EndedBy::Silence, 0));
    let r = handle.wait().unwrap();
    assert_eq!(r.path, dir.0.join("sub/c1-1.wav"));
    assert_eq!(
        (r.duration_ms, r.ended_by, r.lost_frames),
        (2000, EndedBy::Silence, 0)
    );
    let want: Vec<i16> = (0..100).flat_map(frame).collect();
    assert_eq!(read(&r.path), want);
    assert!(!dir.0.join("sub/c1-1.wav.part").exists());
}

#[test]
fn a_dropped_sink_closes_the_file_as_a_hangup() {
    let dir = TempDir::new("drop");
    let (mut sink, handle) = start(&dir.0, "h").unwrap();
    for k in 0..30 {
        sink.push(&frame(k));
    }
    drop(sink);
    let r = handle.wait().unwrap();
    assert_eq!((r.ended_by, r.duration_ms), (EndedBy::Hangup, 600));
    assert_eq!(read(&r.path).len(), 30 * FRAME);
}

#[test]
fn an_end_drops_the_frames_it_says_and_no_more() {
    let dir = TempDir::new("tail");
    let (mut sink, handle) = start(&dir.0, "k").unwrap();
    for k in 0..40 {
        sink.push(&frame(k));
    }
    sink.end(end(EndedBy::Key('#'), 5));
    let r = handle.wait().unwrap();
    assert_eq!(r.duration_ms, 35 * 20);
    let want: Vec<i16> = (0..35).flat_map(frame).collect();
    assert_eq!(read(&r.path), want);
}

#[test]
fn frames_the_pool_had_no_room_for_become_silence_in_place() {
    let dir = TempDir::new("gap");
    let (mut sink, handle) = start(&dir.0, "g").unwrap();
    // Faster than the writer drains: the pool runs out, later frames are
    // counted, and the file keeps the call's length. Pushed until the pool
    // has run dry at least once (on a loaded machine the writer may drain
    // it between pushes), then 50 more.
    let mut n = 0;
    while sink.gap == 0 && n < 100 * POOL_FRAMES {
        sink.push(&frame(n));
        n += 1;
    }
    assert!(sink.gap > 0, "the pool never ran dry in {n} frames");
    for _ in 0..50 {
        sink.push(&frame(n));
        n += 1;
    }
    sink.end(end(EndedBy::Max, 0));
    let r = handle.wait().unwrap();
    assert_eq!(r.duration_ms, n as u64 * 20);
    assert!(r.lost_frames >= 1, "{r:?}");
    let got = read(&r.path);
    assert_eq!(got.len(), n * FRAME);
    // Every frame is in its place, or silence where one was lost.
    let mut zeros = 0;
    for (k, f) in got.chunks_exact(FRAME).enumerate() {
        if f.iter().all(|&s| s == 0) {
            zeros += 1;
        } else {
            assert_eq!(f, &frame(k)[..], "frame {k} out of place");
        }
    }
    assert_eq!(zeros, r.lost_frames);
}

#[test]
fn a_file_where_the_folder_should_be_is_an_error_before_any_audio() {
    let dir = TempDir::new("notdir");
    std::fs::create_dir_all(&dir.0).unwrap();
    let blocker = dir.0.join("recordings");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let e = start(&blocker, "x").err().expect("refused");
    assert!(matches!(e, RecordError::Dir { .. }), "{e}");
    assert!(e.to_string().contains("[media] recordings"), "{e}");
    let e = start(&blocker.join("below"), "x").err().expect("refused");
    assert!(matches!(e, RecordError::Dir { .. }), "{e}");
}

#[test]
fn a_bad_id_is_refused_before_touching_the_disk() {
    let dir = TempDir::new("badid");
    let e = start(&dir.0, "../escape").err().expect("refused");
    assert!(matches!(e, RecordError::BadId(_)));
    assert!(!dir.0.exists());
}

/// A full disk, honestly: the part file is a link to `/dev/full`, where
/// every write fails with ENOSPC.
#[test]
fn a_full_disk_fails_the_recording_and_leaves_no_file() {
    if !Path::new("/dev/full").exists() {
        panic!("/dev/full is needed for the disk-full case");
    }
    let dir = TempDir::new("full");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.0.join("f.wav.part")).unwrap();
    let (mut sink, handle) = start(&dir.0, "f").unwrap();
    for k in 0..500 {
        sink.push(&frame(k));
        if k % 100 == 99 {
            std::thread::sleep(POLL * 2);
        }
    }
    sink.end(end(EndedBy::Silence, 0));
    let e = handle.wait().expect_err("fails");
    assert!(matches!(e, RecordError::Write { .. }), "{e}");
    assert!(e.to_string().contains("No space left"), "{e}");
    assert!(!dir.0.join("f.wav").exists());
    assert!(!dir.0.join("f.wav.part").exists());
}

#[test]
fn the_header_says_8khz_mono_16_bit() {
    let h = header(320);
    assert_eq!(&h[0..4], b"RIFF");
    assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 320 + 36);
    assert_eq!(&h[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 8000);
    assert_eq!(&h[36..40], b"data");
}
