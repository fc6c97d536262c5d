#!/bin/sh
# Generates the example prompts in prompts/ with espeak-ng and sox: English
# at the top level, and the main menu's prompts and the digits in French
# under fr/ (routed with `lang = "fr"`: docs/scripts.md, "Several languages").
#
# Prompts are kept at espeak-ng's native 22050 Hz mono, 16-bit, so that the
# server's resampler (22.05 kHz -> 8 kHz) is exercised on every play; each is
# trimmed of surrounding silence and normalised to -3 dBFS peak. `beep` is a 400 ms 1 kHz tone at 8 kHz.
#
# Needs: apt-get install -y espeak-ng sox
# Usage: scripts/make-prompts.sh [OUT_DIR]    (default: prompts/)
set -eu

out=${1:-"$(dirname "$0")/../prompts"}
voice=${ESPEAK_VOICE:-en-us}
speed=${ESPEAK_SPEED:-150}   # words per minute; a little slower than default for phone lines
mkdir -p "$out/digits"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# say NAME TEXT: speak TEXT into $out/NAME.wav, in $voice
say() {
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" "$2"
    # -D: no dither, so regenerating gives identical files. The silence
    # espeak-ng leaves at both ends is trimmed to 50 ms before and 100 ms
    # after: leading silence is dead air for the caller.
    sox -D "$tmp/raw.wav" -r 22050 -c 1 -b 16 "$out/$1.wav" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        pad 0.05 0.1 gain -n -3
}

# "rivr" is spelled "river" for the synthesiser, which cannot guess it.
say main_menu "Welcome to river. For opening hours, press 1. For information services, press 2. To take a short survey, press 3. To hear this menu again, press 9."
say opening_hours "We are open Monday to Friday, from 8 in the morning until 6 in the evening."
say info_menu "Information services. For health information, press 1. For water and sanitation, press 2. To go back to the main menu, press star."
say health_info "Clinics offer free vaccinations every Tuesday. Bring your health card."
say water_info "Boil drinking water for at least one minute. Report broken pumps to your local office."
say survey_intro "Thank you for taking our survey. There are two questions."
say survey_q1 "How satisfied are you with our service? Press a number from 1 to 5, then press the hash key."
say survey_q2 "Would you recommend us to a friend? Press 1 for yes, or 2 for no."
say survey_thanks "Thank you. Your answers have been recorded."
say invalid "Sorry, that is not a valid choice."
say no_input "We did not receive your input."
say goodbye "Goodbye."
say opt_out "To stop receiving these calls, press 9."

n=0
for word in zero one two three four five six seven eight nine; do
    say "digits/$n" "$word"
    n=$((n + 1))
done

# The main menu in French: `[[route]] lang = "fr"` plays these instead of
# the English ones; prompts missing here (the survey) fall back to English.
voice=${ESPEAK_VOICE_FR:-fr-fr}
mkdir -p "$out/fr/digits"
say fr/main_menu "Bienvenue chez river. Pour les heures d'ouverture, tapez 1. Pour les services d'information, tapez 2. Pour répondre à un court sondage, tapez 3. Pour réécouter ce menu, tapez 9."
say fr/opening_hours "Nous sommes ouverts du lundi au vendredi, de 8 heures à 18 heures."
say fr/info_menu "Services d'information. Pour les informations de santé, tapez 1. Pour l'eau et l'assainissement, tapez 2. Pour revenir au menu principal, tapez étoile."
say fr/health_info "Les centres de santé vaccinent gratuitement tous les mardis. Apportez votre carnet de santé."
say fr/water_info "Faites bouillir l'eau de boisson pendant au moins une minute. Signalez les pompes en panne à votre bureau local."
say fr/invalid "Désolé, ce choix n'est pas valide."
say fr/no_input "Nous n'avons reçu aucune réponse."
say fr/goodbye "Au revoir."
n=0
for word in zéro un deux trois quatre cinq six sept huit neuf; do
    say "fr/digits/$n" "$word"
    n=$((n + 1))
done

# 400 ms of 1 kHz at 8 kHz, 5 ms fades so it starts and stops without a click.
sox -D -n -r 8000 -c 1 -b 16 "$out/beep.wav" synth 0.4 sine 1000 fade q 0.005 0.4 0.005 gain -n -3

du -ch "$out"/*.wav "$out"/digits/*.wav "$out"/fr/*.wav "$out"/fr/digits/*.wav | tail -1
