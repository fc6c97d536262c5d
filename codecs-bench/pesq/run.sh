#!/usr/bin/env bash
# Voice quality with PESQ (ITU-T P.862 narrowband MOS-LQO): espeak-ng speech
# in several voices, each run through codec round trips and impairment
# profiles, scored against the original; the table goes to stdout and into
# docs/quality.md between the `pesq:begin` / `pesq:end` markers.
#
# Impairments come from `rivr media impair` when the rivr binary has it
# (every profile, with --conceal plc and --conceal zero, PCMU and Opus);
# loss-only rows always come from codecs-bench's `g711-impair` (rivr's PLC,
# spandsp's PLC as the reference, and zero-fill).
#
# Needs: espeak-ng, sox, python3-venv (`make pesq` installs them and the venv).
# Env: VENV (default <repo>/.venv), RIVR (a rivr binary; default: build it),
#      DOC (default <repo>/docs/quality.md; DOC= to leave it alone).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
DOC=${DOC-$ROOT/docs/quality.md}
CARGO=${CARGO:-cargo}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pesq, numpy, soundfile' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pesq numpy scipy soundfile
fi
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "pesq/run.sh: $tool is missing (make deps)" >&2; exit 1; }
done

(cd "$ROOT" && $CARGO build --release -q -p codecs-bench --bin g711-impair)
G711_IMPAIR=$ROOT/target/release/g711-impair
if [ -z "${RIVR:-}" ]; then
  (cd "$ROOT" && $CARGO build --release -q --bin rivr)
  RIVR=$ROOT/target/release/rivr
fi
HAVE_IMPAIR=0
if "$RIVR" media impair --help >/dev/null 2>&1; then HAVE_IMPAIR=1; fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MANIFEST=$WORK/manifest.tsv
: > "$MANIFEST"

# Voices: language+variant, and a short IVR-like passage (8–12 s, as P.862 wants).
VOICES=(en-us+m3 en-us+f2 en-gb+m1 en-gb+f4 de+m2 fr-fr+f3)
TEXT_EN="Thank you for calling. For billing questions, press one. To report an outage, press two. Please stay on the line and someone will be with you shortly."
TEXT_DE="Guten Tag. Bitte halten Sie Ihre Kundennummer bereit. Für technische Störungen wählen Sie die Zwei. Vielen Dank für Ihre Geduld."
TEXT_FR="Bonjour et bienvenue. Toutes nos lignes sont actuellement occupées, merci de patienter quelques instants. Pour connaître le solde de votre compte, tapez un."

# Loss-only conditions for g711-impair: label, flags.
STAGED=(
  "G.711 round trip|"
  "3 % random loss|--loss-pct 3"
  "5 % random loss|--loss-pct 5"
  "10 % random loss|--loss-pct 10"
  "5 % bursty loss (mean burst 3 frames)|--loss-pct 5 --burst 3"
)
# The issue's impairment profiles for `rivr media impair`: label, flags.
PROFILES=(
  "clean|"
  "20±10 ms jitter|--jitter-ms 20 --jitter-spread-ms 10"
  "50±30 ms jitter + 3 % loss + 2 % reorder + 1 % dup|--jitter-ms 50 --jitter-spread-ms 30 --loss-pct 3 --reorder-pct 2 --dup-pct 1"
  "5 % bursty loss|--loss-pct 5 --burst 3"
  "+0.5 % drift|--drift-ppm 5000"
  "−0.5 % drift|--drift-ppm -5000"
  "5 % random loss|--loss-pct 5"
)

i=0
n=0
for voice in "${VOICES[@]}"; do
  i=$((i + 1))
  case "$voice" in
    de*) text=$TEXT_DE ;;
    fr*) text=$TEXT_FR ;;
    *) text=$TEXT_EN ;;
  esac
  espeak-ng -v "$voice" -w "$WORK/raw.wav" "$text"
  ref=$WORK/ref-$i.wav
  # -R: repeatable dither, so the table is the same from run to run.
  sox -R "$WORK/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$ref" norm -3
  seed=$((1000 + i))
  for codec in pcmu pcma; do
    for entry in "${STAGED[@]}"; do
      label=${entry%%|*}; flags=${entry#*|}
      if [ "$label" = "G.711 round trip" ]; then
        conceals=(zero)
      else
        [ "$codec" = pcmu ] || continue
        conceals=(plc spandsp zero)
      fi
      for conceal in "${conceals[@]}"; do
        n=$((n + 1)); deg=$WORK/deg-$n.wav
        # shellcheck disable=SC2086
        "$G711_IMPAIR" --codec "$codec" --seed "$seed" --conceal "$conceal" $flags "$ref" "$deg" 2> "$WORK/impair.err"
        filled=$(sed -n 's/.* \([0-9][0-9]*\) frames lost.*/\1/p' "$WORK/impair.err")
        case "$conceal" in zero) how=zero-fill ;; plc) how="rivr PLC" ;; *) how="spandsp PLC" ;; esac
        [ "$label" = "G.711 round trip" ] && how="—"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label (g711-impair)" "$codec" "$how" "$voice" "$ref" "$deg" "${filled:-?}" >> "$MANIFEST"
      done
    done
  done
  if [ "$HAVE_IMPAIR" = 1 ]; then
    for codec in pcmu opus; do
      for entry in "${PROFILES[@]}"; do
        label=${entry%%|*}; flags=${entry#*|}
        for conceal in plc zero; do
          n=$((n + 1)); deg=$WORK/deg-$n.wav
          # shellcheck disable=SC2086
          if ! "$RIVR" media impair --codec "$codec" --seed "$seed" --conceal "$conceal" $flags "$ref" "$deg" 2> "$WORK/impair.err"; then
            echo "pesq/run.sh: skipped $label, $codec, $conceal: $(head -c 300 "$WORK/impair.err")" >&2
            continue
          fi
          # Frames filled in (lost, late, or the buffer stretching).
          filled=$(sed -n 's/.* concealed \([0-9][0-9]*\).*/\1/p' "$WORK/impair.err")
          case "$codec:$conceal" in
            *:zero) how=zero-fill ;;
            opus:*) how="libopus PLC + FEC" ;;
            *) how="rivr PLC" ;;
          esac
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$codec" "$how" "$voice" "$ref" "$deg" "${filled:-?}" >> "$MANIFEST"
        done
      done
    done
  fi
done

TABLE=$WORK/table.md
status=0
"$VENV/bin/python" "$(dirname "$0")/score.py" "$MANIFEST" > "$TABLE" || status=$?
{
  echo "PESQ P.862 narrowband MOS-LQO, $(date -u +%Y-%m-%d), espeak-ng $(espeak-ng --version | awk '{print $4; exit}'), pesq $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pesq"))')."
  if [ "$HAVE_IMPAIR" = 0 ]; then
    echo
    echo "\`rivr media impair\` is not in this build: the jitter, reorder, duplicate and drift profiles and the Opus rows are pending; the rows below are loss-only G.711 runs by \`g711-impair\`."
  fi
  echo
  cat "$TABLE"
} > "$WORK/section.md"
cat "$WORK/section.md"

if [ -n "$DOC" ] && [ -f "$DOC" ] && grep -q '<!-- pesq:begin -->' "$DOC"; then
  "$VENV/bin/python" - "$DOC" "$WORK/section.md" <<'PY'
import sys
doc, section = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
text = open(doc, encoding="utf-8").read()
head, rest = text.split("<!-- pesq:begin -->", 1)
_, tail = rest.split("<!-- pesq:end -->", 1)
open(doc, "w", encoding="utf-8").write(f"{head}<!-- pesq:begin -->\n{section}<!-- pesq:end -->{tail}")
PY
  echo "(written into $DOC)" >&2
fi
exit $status
