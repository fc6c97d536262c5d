//! Talk-off: the in-band DTMF detector must report no key for speech or
//! music. Speech is synthesised at test time by espeak-ng (several
//! languages and voices) and resampled to 8 kHz by sox; music-like signals
//! (chords of 3–4 notes, tone sweeps, sustained notes with harmonics) are
//! generated here from a fixed seed. Every signal is scanned loud (peak at
//! −1 dBFS) and 20 dB quieter, as decoded G.711 would deliver it.

use std::path::{Path, PathBuf};
use std::process::Command;

use rivr::media::dtmf_detect::DtmfDetector;

const RATE: f64 = 8000.0;

/// Passages in several languages, each spoken by two voices.
const SPEECH: &[(&str, &[&str], &str)] = &[
    ("en-us", &["m3", "f2"], "Thank you for calling the customer service line. Please listen carefully, \
        as our menu options have recently changed. For billing questions, press one. To report an outage, \
        press two. If you would like to speak with a representative, stay on the line and someone will be \
        with you shortly. Your call may be recorded for quality and training purposes. We appreciate your \
        patience. The estimated waiting time is four minutes. Did you know that you can pay your bill \
        online at any time of the day or night, seven days a week, using your account number and the \
        six digit code printed at the top of your statement?"),
    ("en-gb", &["m1", "f4"], "Good morning. I was ringing about the parcel that was meant to arrive on \
        Tuesday, but nobody turned up, and the tracking page still says it is out for delivery. I have \
        been waiting in all week. Could you possibly check whether the driver has the right address? It \
        is flat nine, forty three Station Road, and the postcode is written clearly on the label. If it \
        cannot be delivered tomorrow, I would rather collect it from the depot myself on Saturday morning, \
        provided somebody there can confirm that it has actually arrived."),
    ("de", &["m2", "f1"], "Guten Tag, hier spricht der automatische Kundendienst. Bitte halten Sie Ihre \
        Kundennummer bereit. Wenn Sie Fragen zu Ihrer Rechnung haben, sagen Sie bitte Rechnung. Für \
        technische Störungen wählen Sie die Zwei. Unsere Mitarbeiterinnen und Mitarbeiter sind montags \
        bis freitags von acht bis achtzehn Uhr für Sie erreichbar. Außerhalb dieser Zeiten können Sie uns \
        gerne eine Nachricht hinterlassen. Wir rufen Sie so schnell wie möglich zurück. Vielen Dank für \
        Ihre Geduld und auf Wiederhören."),
    ("fr-fr", &["m4", "f3"], "Bonjour et bienvenue. Votre appel est important pour nous. Toutes nos \
        lignes sont actuellement occupées, merci de patienter quelques instants. Pour connaître le solde \
        de votre compte, tapez un. Pour modifier vos coordonnées, tapez deux. Vous pouvez également \
        consulter notre site internet, où vous trouverez les réponses aux questions les plus fréquentes. \
        Nous vous rappelons que nos bureaux sont fermés le dimanche et les jours fériés. Merci de votre \
        compréhension et à bientôt."),
    ("es", &["m5", "f5"], "Buenas tardes, le habla el sistema de atención telefónica. Si desea \
        información sobre su pedido, diga pedido o marque uno. Para hablar con un agente, permanezca en \
        la línea. Le recordamos que puede consultar el estado de su envío en cualquier momento desde \
        nuestra aplicación. El tiempo de espera aproximado es de tres minutos. Gracias por su paciencia; \
        su llamada será atendida por orden de llegada. Que tenga un buen día."),
    ("it", &["m6", "f2"], "Buongiorno, grazie per aver chiamato. Le ricordiamo che questa chiamata \
        potrebbe essere registrata. Per informazioni sugli orari di apertura dei nostri negozi, prema \
        uno. Per parlare con un operatore, resti in linea. Il nostro servizio clienti è disponibile dal \
        lunedì al sabato, dalle nove alle diciannove. Può anche scriverci una email: risponderemo entro \
        ventiquattro ore lavorative. Arrivederci e buona giornata."),
    ("pt-br", &["m7", "f1"], "Olá, obrigado por ligar. Sua ligação é muito importante para nós. Para \
        segunda via da conta, digite um. Para falar sobre problemas técnicos, digite dois. Se preferir, \
        aguarde na linha e um de nossos atendentes irá atendê-lo em breve. Lembramos que o pagamento \
        pode ser feito em qualquer agência bancária ou pelo aplicativo, de forma rápida e segura. Tenha \
        um ótimo dia."),
    ("nl", &["m3", "f4"], "Goedemiddag, u spreekt met de klantenservice. Wij zijn momenteel erg druk, \
        maar u wordt zo snel mogelijk geholpen. Heeft u een vraag over uw abonnement, kies dan één. \
        Voor storingen kiest u twee. U kunt ook onze website bezoeken voor veelgestelde vragen en \
        handige tips. Onze openingstijden zijn van maandag tot en met vrijdag, van negen tot vijf. \
        Bedankt voor uw geduld."),
    ("ru", &["m1", "f3"], "Здравствуйте! Вы позвонили в службу поддержки клиентов. Пожалуйста, \
        оставайтесь на линии, и первый освободившийся оператор ответит на ваш звонок. Если вы хотите \
        узнать баланс своего счёта, нажмите один. Если у вас технический вопрос, нажмите два. Напоминаем, \
        что наша служба работает круглосуточно и без выходных. Спасибо, что выбрали нашу компанию."),
    ("cmn", &["m2", "f5"], "您好，欢迎致电客户服务中心。我们的所有座席目前都很忙，请您耐心等待。\
        查询账户余额请按一，办理业务请按二，人工服务请按零。您也可以登录我们的网站或者使用手机应用程序，\
        随时随地查询账单和办理各项业务。感谢您的来电，祝您生活愉快，再见。"),
];

struct Scan {
    seconds: f64,
    false_keys: Vec<String>,
}

impl Scan {
    fn new() -> Self {
        Self {
            seconds: 0.0,
            false_keys: Vec::new(),
        }
    }

    /// Runs the detector over `pcm` at full level and 20 dB down.
    fn run(&mut self, name: &str, pcm: &[i16]) {
        for gain_db in [0.0, -20.0] {
            let gain = 10f64.powf(gain_db / 20.0);
            let scaled: Vec<i16> = pcm
                .iter()
                .map(|&s| (f64::from(s) * gain).round() as i16)
                .collect();
            let mut detector = DtmfDetector::new();
            for frame in scaled.chunks(160) {
                let mut next = detector.process(frame);
                while let Some(d) = next {
                    self.false_keys.push(format!(
                        "{name} ({gain_db} dB): '{}' at {:.3} s",
                        d.digit,
                        d.start_seconds()
                    ));
                    next = detector.poll();
                }
            }
        }
        self.seconds += pcm.len() as f64 / RATE;
    }
}

/// Peak-normalised to −1 dBFS.
fn normalise(x: &[f64]) -> Vec<i16> {
    let peak = x.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    let gain = 32767.0 * 10f64.powf(-1.0 / 20.0) / peak;
    x.iter().map(|v| (v * gain).round() as i16).collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[((self.next() * items.len() as f64) as usize).min(items.len() - 1)]
    }
}

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// Attack–sustain–release envelope over `len` samples.
fn envelope(n: usize, len: usize) -> f64 {
    let attack = 0.02 * RATE;
    let release = 0.08 * RATE;
    let (n, len) = (n as f64, len as f64);
    (n / attack).min(1.0).min((len - n) / release).max(0.0)
}

/// Adds a note with the given partial amplitudes (index 0 = fundamental).
fn add_note(out: &mut [f64], freq: f64, partials: &[f64], vibrato: f64, rng: &mut Rng) {
    let len = out.len();
    let phase0: Vec<f64> = partials
        .iter()
        .map(|_| rng.range(0.0, std::f64::consts::TAU))
        .collect();
    let mut phase = 0.0;
    for (n, v) in out.iter_mut().enumerate() {
        let t = n as f64 / RATE;
        let f = freq * (1.0 + vibrato * (2.0 * std::f64::consts::PI * 5.5 * t).sin());
        phase += 2.0 * std::f64::consts::PI * f / RATE;
        let mut s = 0.0;
        for (k, (&a, &p0)) in partials.iter().zip(&phase0).enumerate() {
            let fk = f * (k + 1) as f64;
            if fk < 3800.0 {
                s += a * ((k + 1) as f64 * phase + p0).sin();
            }
        }
        *v += s * envelope(n, len);
    }
}

/// Chords of 3–4 equally loud notes in common voicings, sine or rich timbre.
fn chords(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    const SHAPES: &[&[f64]] = &[
        &[0.0, 4.0, 7.0],
        &[0.0, 3.0, 7.0],
        &[0.0, 3.0, 6.0],
        &[0.0, 4.0, 8.0],
        &[0.0, 5.0, 7.0],
        &[0.0, 4.0, 7.0, 10.0],
        &[0.0, 4.0, 7.0, 11.0],
        &[0.0, 3.0, 7.0, 10.0],
        &[0.0, 4.0, 7.0, 12.0],
        &[0.0, 7.0, 16.0],
        &[0.0, 7.0, 12.0, 16.0],
    ];
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let len = (rng.range(0.4, 2.0) * RATE) as usize;
        let mut buf = vec![0.0; len];
        let root = rng.range(48.0, 84.0).round();
        let shape = rng.pick(SHAPES);
        let rich = rng.next() < 0.5;
        for (i, &interval) in shape.iter().enumerate() {
            // Inversions: move some notes up an octave.
            let octave = if i > 0 && rng.next() < 0.3 { 12.0 } else { 0.0 };
            let partials: &[f64] = if rich {
                &[1.0, 0.5, 0.33, 0.25, 0.2, 0.16]
            } else {
                &[1.0]
            };
            add_note(
                &mut buf,
                midi_hz(root + interval + octave),
                partials,
                0.0,
                rng,
            );
        }
        out.extend(normalise(&buf));
    }
    out
}

/// Sweeps of a sine or a harmonic tone, up and down, linear or exponential.
fn sweeps(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let len = (rng.range(0.5, 4.0) * RATE) as usize;
        let (lo, hi) = (rng.range(150.0, 800.0), rng.range(1000.0, 3600.0));
        let (from, to) = if rng.next() < 0.5 { (lo, hi) } else { (hi, lo) };
        let exponential = rng.next() < 0.5;
        let harmonics = rng.next() < 0.4;
        let mut phase = 0.0;
        let mut buf = vec![0.0; len];
        for (n, v) in buf.iter_mut().enumerate() {
            let x = n as f64 / len as f64;
            let f = if exponential {
                from * (to / from).powf(x)
            } else {
                from + (to - from) * x
            };
            phase += 2.0 * std::f64::consts::PI * f / RATE;
            let mut s = phase.sin();
            if harmonics {
                for k in 2..6 {
                    if f * k as f64 <= 3800.0 {
                        s += (k as f64 * phase).sin() / k as f64;
                    }
                }
            }
            *v = s * envelope(n, len);
        }
        out.extend(normalise(&buf));
    }
    out
}

/// Sustained notes with harmonics of random strength and some vibrato.
fn sustained(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let len = (rng.range(0.5, 3.0) * RATE) as usize;
        let mut buf = vec![0.0; len];
        let f0 = rng.range(90.0, 1000.0);
        let count = 3 + (rng.next() * 8.0) as usize;
        let partials: Vec<f64> = (0..count)
            .map(|k| rng.range(0.2, 1.0) / (k as f64 + 1.0).powf(rng.range(0.3, 1.2)))
            .collect();
        let vibrato = if rng.next() < 0.5 {
            rng.range(0.002, 0.01)
        } else {
            0.0
        };
        add_note(&mut buf, f0, &partials, vibrato, rng);
        out.extend(normalise(&buf));
    }
    out
}

#[test]
fn music_like_signals_give_no_key() {
    let mut scan = Scan::new();
    let mut rng = Rng(0x7a1c_0ff5);
    scan.run("chords", &chords(&mut rng, 120.0));
    scan.run("sweeps", &sweeps(&mut rng, 90.0));
    scan.run("sustained notes", &sustained(&mut rng, 90.0));
    println!(
        "music-like talk-off: {:.1} minutes, {} false keys",
        scan.seconds / 60.0,
        scan.false_keys.len()
    );
    assert!(scan.seconds >= 300.0);
    assert!(scan.false_keys.is_empty(), "{:#?}", scan.false_keys);
}

fn tool_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("sox wrote a WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// Speaks `text` with espeak-ng and converts it to 8 kHz mono 16-bit.
fn speak(dir: &Path, voice: &str, pitch: u32, speed: u32, text: &str) -> Vec<i16> {
    let raw = dir.join("raw.wav");
    let narrow = dir.join("8k.wav");
    let status = Command::new("espeak-ng")
        .args([
            "-v",
            voice,
            "-p",
            &pitch.to_string(),
            "-s",
            &speed.to_string(),
            "-w",
        ])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(status.success(), "espeak-ng -v {voice} failed");
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&narrow)
        .args(["norm", "-1"])
        .status()
        .expect("run sox");
    assert!(status.success(), "sox failed on {voice}");
    read_wav(&narrow)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn speech_in_several_voices_and_languages_gives_no_key() {
    if !tool_available("espeak-ng") || !tool_available("sox") {
        eprintln!(
            "\n*** SKIPPED speech talk-off: espeak-ng and sox are required \
             (`make deps` installs them) ***\n"
        );
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("rivr-talkoff-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let mut scan = Scan::new();
    let mut voices = 0;
    for (i, &(language, variants, text)) in SPEECH.iter().enumerate() {
        for (j, variant) in variants.iter().enumerate() {
            let voice = format!("{language}+{variant}");
            // Vary pitch and rate too: a higher pitch spaces the harmonics
            // wider, which is what makes speech talk-off prone.
            let pitch = [35, 50, 65, 80][(i + 2 * j) % 4];
            let speed = [140, 160, 175, 190][(i + j) % 4];
            let pcm = speak(&dir.0, &voice, pitch, speed, text);
            scan.run(&format!("{voice} p{pitch} s{speed}"), &pcm);
            voices += 1;
        }
    }
    println!(
        "speech talk-off: {:.1} minutes, {} voice/language combinations, {} false keys",
        scan.seconds / 60.0,
        voices,
        scan.false_keys.len()
    );
    assert!(
        scan.seconds >= 300.0,
        "only {:.0} s of speech",
        scan.seconds
    );
    assert!(scan.false_keys.is_empty(), "{:#?}", scan.false_keys);
}

#[test]
fn scan_reports_a_real_key_hidden_in_music() {
    // Control: the same scan over the same kind of material does report a
    // key when one is there, so "zero false keys" above means something.
    let mut rng = Rng(42);
    let mut pcm = chords(&mut rng, 3.0);
    let mut generator = rivr::media::tone::ToneGenerator::dtmf('7', 60, 0, -6.0).expect("key");
    let mut key = vec![0i16; 480];
    generator.fill(&mut key);
    let at = 2 * 8000;
    pcm.splice(at..at, key);
    let mut scan = Scan::new();
    scan.run("chords with a key", &pcm);
    assert!(
        !scan.false_keys.is_empty() && scan.false_keys.iter().all(|k| k.contains("'7'")),
        "{:?}",
        scan.false_keys
    );
}
