#!/usr/bin/env bash
# Builds the labelled corpus for the answering-machine, beep and
# early-media classifiers (src/media/amd, src/media/sit) from espeak-ng
# speech and sox-made tones and noise: nothing recorded elsewhere.
#
#   tests/amd/make-corpus.sh OUTDIR
#
# Every file is 8 kHz mono 16-bit WAV, labelled by its name:
#   amd/human-…            a person answering ("hello?"), then waiting
#   amd/machine-…-beepF-endMS-…   a greeting, then a beep of F Hz ending at MS
#   amd/machine-…-nobeep-endMS-…  a greeting with no beep; it ends at MS
#   amd/silence-…          dead air (line noise only)
#   amd/music-…            music on hold
#   early/sit-CODE-…       a three-segment SIT then an announcement
#   early/announce-…       an operator announcement with no SIT
#   early/ringback-…, early/busy-…   call-progress cadences
# The build is deterministic (sox -R, fixed lists), so the test may cache
# it under a name keyed by this script's hash.
set -euo pipefail

out=${1:?usage: make-corpus.sh OUTDIR}
for tool in espeak-ng sox soxi; do
    command -v "$tool" >/dev/null || { echo "make-corpus.sh: $tool is missing (make deps)" >&2; exit 1; }
done
mkdir -p "$out/amd" "$out/early"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

SOX="sox -R -q"

# speak VOICE SPEED TEXT OUT: espeak-ng speech resampled to 8 kHz, -20 dBFS-ish.
speak() {
    espeak-ng -v "$1" -s "$2" -w "$tmp/raw.wav" "$3"
    # espeak pads its output with silence; trim it so that the pauses
    # written below are the pauses heard.
    $SOX "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$4" norm -6 highpass 200 lowpass 3400 \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
}
# silence SECONDS OUT
silence() { $SOX -n -r 8000 -c 1 -b 16 "$2" trim 0 "$1"; }
# tone FREQ SECONDS GAIN_DB OUT
tone() { $SOX -n -r 8000 -c 1 -b 16 "$4" synth "$2" sine "$1" gain "$3"; }
# tone2 F1 F2 SECONDS OUT: two tones summed, each near -19 dBFS
tone2() { $SOX -n -r 8000 -c 1 -b 16 "$4" synth "$3" sine "$1" sine "$2" channels 1 gain -16; }
# addnoise IN NOISE_DB OUT: white line noise (filtered to the phone band) mixed in
addnoise() {
    local d
    d=$(soxi -D "$1")
    $SOX -n -r 8000 -c 1 -b 16 "$tmp/noise.wav" synth "$d" whitenoise gain "$2" lowpass 3400
    $SOX -m "$1" "$tmp/noise.wav" -b 16 "$3" gain 0
}
ms() { soxi -D "$1" | awk '{ printf "%d", $1 * 1000 + 0.5 }'; }

# ---- humans: short answers, several voices and languages, then silence ----
human_lines=(
    "en-us|Hello?" "en-us|Hello, yes?" "en-us|Yeah, hello?" "en-us|Hi, who is this?"
    "en-gb|Hello?" "en-gb|Hello, who's calling?" "en-gb|Yes?"
    "de|Hallo?" "de|Ja, bitte?" "fr|Allô?" "fr|Allô, oui?" "es|¿Diga?" "es|Hola, ¿sí?"
    "it|Pronto?" "pt|Alô?" "nl|Hallo, met wie?" "pl|Halo?" "sv|Hallå?"
)
variants=("|175|0.4|-50" "+f3|160|0.8|-45" "+m3|190|1.2|-55" "+f2|150|0.2|-42")
i=0
for line in "${human_lines[@]}"; do
    voice=${line%%|*}; text=${line#*|}
    for v in "${variants[@]}"; do
        IFS='|' read -r vv speed lead noise <<<"$v"
        i=$((i + 1))
        speak "$voice$vv" "$speed" "$text" "$tmp/s.wav"
        silence "$lead" "$tmp/lead.wav"
        silence 4 "$tmp/tail.wav"
        $SOX "$tmp/lead.wav" "$tmp/s.wav" "$tmp/tail.wav" "$tmp/h.wav"
        addnoise "$tmp/h.wav" "$noise" "$out/amd/human-$voice-$i.wav"
    done
done

# ---- machines: greetings of several lengths, beeps of several frequencies ----
greetings=(
    "en-us|Leave a message."
    "en-us|Hi, this is Mark. Leave a message after the tone."
    "en-us|You have reached the voicemail of Sarah Connor. I can't take your call right now, please leave your name and number after the beep."
    "en-gb|Hello, you're through to Tom and Emma. We're not in, so leave us a message."
    "en-gb|The person you are calling is not available. Please record your message after the tone."
    "de|Hallo, hier ist der Anrufbeantworter von Klaus Becker. Bitte sprechen Sie nach dem Signalton."
    "fr|Bonjour, vous êtes bien chez Marie. Laissez un message après le bip."
    "es|Hola, soy Carlos. Ahora no puedo atender, deja tu mensaje después de la señal."
    "it|Ciao, sono Giulia. Lascia un messaggio dopo il segnale acustico."
    "nl|Hallo, dit is de voicemail van Jan. Spreek een bericht in na de piep."
)
beeps=("1000|0.5" "440|0.8" "850|0.3" "1400|0.6" "1800|1.0" "none|0" "620|0.4" "2000|0.25")
mvariants=("|170|0.3|-50" "+f3|180|0.6|-46" "+m2|160|0.1|-54")
i=0
for line in "${greetings[@]}"; do
    voice=${line%%|*}; text=${line#*|}
    for v in "${mvariants[@]}"; do
        IFS='|' read -r vv speed lead noise <<<"$v"
        b=${beeps[$((i % ${#beeps[@]}))]}
        i=$((i + 1))
        freq=${b%%|*}; blen=${b#*|}
        speak "$voice$vv" "$speed" "$text" "$tmp/s.wav"
        silence "$lead" "$tmp/lead.wav"
        gap=$(awk -v i="$i" 'BEGIN { printf "%.2f", 0.15 + (i % 4) * 0.12 }')
        silence "$gap" "$tmp/gap.wav"
        silence 3 "$tmp/tail.wav"
        if [ "$freq" = none ]; then
            $SOX "$tmp/lead.wav" "$tmp/s.wav" "$tmp/m.wav"
            end=$(ms "$tmp/m.wav")
            $SOX "$tmp/m.wav" "$tmp/tail.wav" "$tmp/m2.wav"
            addnoise "$tmp/m2.wav" "$noise" "$out/amd/machine-$voice-nobeep-end$end-$i.wav"
        else
            tone "$freq" "$blen" -10 "$tmp/beep.wav"
            $SOX "$tmp/lead.wav" "$tmp/s.wav" "$tmp/gap.wav" "$tmp/beep.wav" "$tmp/m.wav"
            end=$(ms "$tmp/m.wav")
            $SOX "$tmp/m.wav" "$tmp/tail.wav" "$tmp/m2.wav"
            addnoise "$tmp/m2.wav" "$noise" "$out/amd/machine-$voice-beep$freq-end$end-$i.wav"
        fi
    done
done

# ---- dead air and music on hold ----
for n in -60 -50 -45 -40; do
    silence 6 "$tmp/z.wav"
    addnoise "$tmp/z.wav" "$n" "$out/amd/silence-noise${n#-}.wav"
done
notes=("C4 E4 G4" "A3 C4 E4" "F3 A3 C4" "G3 B3 D4")
for k in 1 2 3 4; do
    parts=()
    for j in 0 1 2 3 4 5 6 7 8 9 10 11; do
        chord=${notes[$(((j + k) % 4))]}
        set -- $chord
        $SOX -n -r 8000 -c 1 -b 16 "$tmp/n$j.wav" synth 0.$((3 + k)) pluck "$1" pluck "$2" pluck "$3" channels 1 gain -14
        parts+=("$tmp/n$j.wav")
    done
    $SOX "${parts[@]}" "$tmp/mus.wav"
    addnoise "$tmp/mus.wav" -55 "$out/amd/music-$k.wav"
done
for k in 5 6; do
    $SOX -n -r 8000 -c 1 -b 16 "$tmp/mus.wav" synth 6 sine 330 sine 415 sine 494 channels 1 tremolo 3 60 gain -14
    addnoise "$tmp/mus.wav" -5$k "$out/amd/music-$k.wav"
done

# ---- early media: SIT (Telcordia codes, with tolerances) then an announcement ----
# seg freq: L1 913.8 H1 985.2 L2 1370.6 H2 1428.5; S 274 ms, L 380 ms; third 1776.7 Hz, 380 ms.
sit_codes=("ic|913.8|0.274|1370.6|0.274" "vc|985.2|0.380|1370.6|0.274"
           "ro|913.8|0.274|1428.5|0.380" "nc|985.2|0.380|1428.5|0.380"
           "ro|985.2|0.274|1370.6|0.380" "nc|913.8|0.380|1370.6|0.380"
           "io|913.8|0.380|1370.6|0.274")
# frequency scale, duration scale, gap between segments (s), level step (dB)
tolerances=("1.0|1.0|0|0" "1.015|0.95|0.004|1.5" "0.985|1.05|0.030|-1.5" "1.0|1.05|0.010|0")
announcements=("en-us|We're sorry, the number you have dialed is not in service. Please check the number and try again."
               "en-gb|The number you have called has not been recognised."
               "de|Kein Anschluss unter dieser Nummer.")
i=0
for c in "${sit_codes[@]}"; do
    IFS='|' read -r code f1 d1 f2 d2 <<<"$c"
    for t in "${tolerances[@]}"; do
        IFS='|' read -r fs ds gap step <<<"$t"
        i=$((i + 1))
        a=${announcements[$((i % ${#announcements[@]}))]}
        tone "$(awk -v f="$f1" -v s="$fs" 'BEGIN{print f*s}')" "$(awk -v d="$d1" -v s="$ds" 'BEGIN{print d*s}')" -14 "$tmp/t1.wav"
        tone "$(awk -v f="$f2" -v s="$fs" 'BEGIN{print f*s}')" "$(awk -v d="$d2" -v s="$ds" 'BEGIN{print d*s}')" "$(awk -v g="$step" 'BEGIN{print -14+g}')" "$tmp/t2.wav"
        tone "$(awk -v s="$fs" 'BEGIN{print 1776.7*s}')" "$(awk -v s="$ds" 'BEGIN{print 0.380*s}')" -14 "$tmp/t3.wav"
        silence "$gap" "$tmp/g.wav" 2>/dev/null || silence 0.001 "$tmp/g.wav"
        silence 0.2 "$tmp/lead.wav"
        silence 0.25 "$tmp/pause.wav"
        speak "${a%%|*}" 170 "${a#*|}" "$tmp/s.wav"
        if [ "$gap" = 0 ]; then
            $SOX "$tmp/lead.wav" "$tmp/t1.wav" "$tmp/t2.wav" "$tmp/t3.wav" "$tmp/pause.wav" "$tmp/s.wav" "$tmp/x.wav"
        else
            $SOX "$tmp/lead.wav" "$tmp/t1.wav" "$tmp/g.wav" "$tmp/t2.wav" "$tmp/g.wav" "$tmp/t3.wav" "$tmp/pause.wav" "$tmp/s.wav" "$tmp/x.wav"
        fi
        addnoise "$tmp/x.wav" -50 "$out/early/sit-$code-$i.wav"
    done
done
i=0
for line in "en-us|The wireless customer you are calling is not available. Please try your call again later." \
            "en-gb+f3|The person you are calling is unavailable." \
            "de|Der gewünschte Gesprächspartner ist zurzeit nicht erreichbar." \
            "fr|Votre correspondant n'est pas joignable pour le moment." \
            "es|El teléfono móvil al que llama está apagado o fuera de cobertura." \
            "it|Il cliente da lei chiamato non è al momento raggiungibile." \
            "en-us+m3|All circuits are busy now. Please try your call again later." \
            "pt|O número que você ligou não existe."; do
    i=$((i + 1))
    speak "${line%%|*}" 165 "${line#*|}" "$tmp/s.wav"
    silence 0.$((i % 5 + 1)) "$tmp/lead.wav"
    silence 1 "$tmp/tail.wav"
    $SOX "$tmp/lead.wav" "$tmp/s.wav" "$tmp/tail.wav" "$tmp/x.wav"
    addnoise "$tmp/x.wav" -5$((i % 3)) "$out/early/announce-$i.wav"
done

# cadence NAME F1 F2 ON OFF [ON2 OFF2]: 6 s of a ringback or busy cadence
cadence() {
    local name=$1 f1=$2 f2=$3 parts=() k=0
    shift 3
    while [ "$k" -lt 40 ]; do
        for d in "$@"; do
            k=$((k + 1))
            if [ $((k % 2)) = 1 ]; then
                tone2 "$f1" "$f2" "$d" "$tmp/c$k.wav"
            else
                silence "$d" "$tmp/c$k.wav"
            fi
            parts+=("$tmp/c$k.wav")
        done
    done
    $SOX "${parts[@]}" "$tmp/cad.wav" trim 0 8
    addnoise "$tmp/cad.wav" -52 "$out/early/$name.wav"
}
cadence ringback-us 440 480 2 4
cadence ringback-eu 425 425 1 4
cadence ringback-uk 400 450 0.4 0.2 0.4 2
cadence ringback-fr 440 440 1.5 3.5
cadence busy-us 480 620 0.5 0.5
cadence busy-eu 425 425 0.5 0.5
cadence busy-uk 400 400 0.375 0.375
cadence busy-reorder-us 480 620 0.25 0.25
echo "corpus: $(ls "$out/amd" | wc -l) amd files, $(ls "$out/early" | wc -l) early-media files in $out"
