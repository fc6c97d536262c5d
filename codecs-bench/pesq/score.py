#!/usr/bin/env python3
"""Narrowband PESQ (ITU-T P.862, MOS-LQO) of every degraded file listed in a
manifest, grouped into a Markdown table.

Manifest lines (tab-separated): condition, codec, conceal, voice, ref.wav,
deg.wav, and the number of frames the run had to fill in ("?" if unknown).
Conditions keep their manifest order. Exit status 1 if concealment does not
beat zero-fill on a lossy condition that has both: one where some run
filled a frame in (or, with the count unknown, whose concealed and
zero-filled scores differ).
"""
import statistics
import sys
from collections import OrderedDict

import numpy as np
import soundfile as sf
from pesq import pesq


def load(path):
    audio, rate = sf.read(path, dtype="int16")
    if rate != 8000:
        raise SystemExit(f"{path}: {rate} Hz, want 8000")
    if audio.ndim > 1:
        audio = audio[:, 0]
    return audio.astype(np.float32)


def main(manifest):
    groups = OrderedDict()
    filled = {}
    voices = OrderedDict()
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            condition, codec, conceal, voice, ref, deg, frames = line.rstrip("\n").split("\t")
            r, d = load(ref), load(deg)
            n = min(len(r), len(d))
            score = pesq(8000, r[:n], d[:n], "nb")
            groups.setdefault((condition, codec, conceal), []).append(score)
            known = filled.setdefault((condition, codec), 0)
            if known is not None:
                filled[(condition, codec)] = None if frames == "?" else known + int(frames)
            voices[voice] = True
    print(f"| condition | codec | gaps filled by | MOS-LQO mean of {len(voices)} voices | min | max |")
    print("|---|---|---|---:|---:|---:|")
    for (condition, codec, conceal), scores in groups.items():
        print(
            f"| {condition} | {codec} | {conceal} | {statistics.mean(scores):.2f} "
            f"| {min(scores):.2f} | {max(scores):.2f} |"
        )
    print()
    failed = False
    for (condition, codec, conceal), scores in groups.items():
        if conceal == "zero-fill":
            continue
        zero = groups.get((condition, codec, "zero-fill"))
        if zero is None:
            continue
        count = filled.get((condition, codec))
        if count == 0 or (count is None and scores == zero):
            print(f"- {condition}, {codec}: no frame to fill in (nothing lost or late)")
            continue
        ok = statistics.mean(scores) > statistics.mean(zero)
        failed |= not ok
        print(
            f"- {condition}, {codec}: {conceal} {statistics.mean(scores):.2f} vs zero-fill "
            f"{statistics.mean(zero):.2f}: {'concealment wins' if ok else '**CONCEALMENT LOSES**'}"
        )
    print(f"\nVoices: {', '.join(voices)}.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
