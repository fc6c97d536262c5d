//! Speech from espeak-ng, converted to 8 kHz mono 16-bit by sox: the
//! talk-off corpus (passages in 10 languages, two voices each, varied pitch
//! and rate), scanned by `codecs-bench/tests/dtmf_talkoff.rs` and by the
//! `report` binary, and the speech signal the throughput report runs on.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why speech could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// espeak-ng or sox is missing or failed.
    #[error("{tool} failed: {detail} (`make deps` installs espeak-ng and sox)")]
    Tool {
        /// The program that failed.
        tool: &'static str,
        /// What it said, or why it could not start.
        detail: String,
    },
    /// sox wrote something that is not 8 kHz mono 16-bit WAV.
    #[error("reading {path}: {detail}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The scratch directory could not be made.
    #[error("scratch directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Passages in several languages, each spoken by two voice variants.
pub const PASSAGES: &[(&str, &[&str], &str)] = &[
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

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory under the system temp dir, named for `what`.
    pub fn new(what: &str) -> Result<Self, SpeechError> {
        let dir = std::env::temp_dir().join(format!("codecs-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether espeak-ng and sox both run, so that speech can be made at all.
pub fn tools_available() -> bool {
    ["espeak-ng", "sox"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn run(tool: &'static str, cmd: &mut Command) -> Result<(), SpeechError> {
    let out = cmd.output().map_err(|e| SpeechError::Tool {
        tool,
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SpeechError::Tool {
            tool,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Reads a 16-bit mono WAV, returning its samples and rate.
pub fn read_wav(path: &Path) -> Result<(Vec<i16>, u32), SpeechError> {
    let bad = |detail: String| SpeechError::Wav {
        path: path.to_owned(),
        detail,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(bad(format!("want mono 16-bit PCM, got {spec:?}")));
    }
    let pcm = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    Ok((pcm, spec.sample_rate))
}

/// Speaks `text` with espeak-ng into `wav` as 8 kHz mono 16-bit, peak at
/// −1 dBFS.
pub fn speak_to(
    scratch: &Scratch,
    wav: &Path,
    voice: &str,
    pitch: u32,
    speed: u32,
    text: &str,
) -> Result<(), SpeechError> {
    let raw = scratch.path().join("espeak-raw.wav");
    run(
        "espeak-ng",
        Command::new("espeak-ng")
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
            .arg(text),
    )?;
    run(
        "sox",
        Command::new("sox")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(wav)
            .args(["norm", "-1"]),
    )
}

/// Speaks `text` and returns the 8 kHz samples.
pub fn speak(
    scratch: &Scratch,
    voice: &str,
    pitch: u32,
    speed: u32,
    text: &str,
) -> Result<Vec<i16>, SpeechError> {
    let wav = scratch.path().join("speech-8k.wav");
    speak_to(scratch, &wav, voice, pitch, speed, text)?;
    match read_wav(&wav)? {
        (pcm, 8000) => Ok(pcm),
        (_, rate) => Err(SpeechError::Wav {
            path: wav,
            detail: format!("sox wrote {rate} Hz, not 8000"),
        }),
    }
}

/// One talk-off recording: a label and its 8 kHz samples.
pub struct Voice {
    /// `language+variant pPITCH sSPEED`.
    pub label: String,
    /// 8 kHz samples.
    pub pcm: Vec<i16>,
}

/// Every passage in both of its voices, pitch and rate varied across them
/// (a higher pitch spaces the harmonics wider, which is what makes speech
/// talk-off prone).
pub fn talkoff_corpus() -> Result<Vec<Voice>, SpeechError> {
    let scratch = Scratch::new("talkoff")?;
    let mut voices = Vec::new();
    for (i, &(language, variants, text)) in PASSAGES.iter().enumerate() {
        for (j, variant) in variants.iter().enumerate() {
            let voice = format!("{language}+{variant}");
            let pitch = [35, 50, 65, 80][(i + 2 * j) % 4];
            let speed = [140, 160, 175, 190][(i + j) % 4];
            let pcm = speak(&scratch, &voice, pitch, speed, text)?;
            voices.push(Voice {
                label: format!("{voice} p{pitch} s{speed}"),
                pcm,
            });
        }
    }
    Ok(voices)
}

/// About `seconds` of English speech in alternating voices, for throughput
/// runs.
pub fn bench_speech(seconds: f64) -> Result<Vec<i16>, SpeechError> {
    let scratch = Scratch::new("speech")?;
    let mut pcm = Vec::new();
    let mut turn = 0;
    while (pcm.len() as f64) < seconds * 8000.0 && turn < 8 {
        let (language, variants, text) = PASSAGES[turn % 2];
        let voice = format!("{language}+{}", variants[turn / 2 % variants.len()]);
        pcm.extend(speak(&scratch, &voice, 50, 160, text)?);
        turn += 1;
    }
    pcm.truncate((seconds * 8000.0) as usize);
    Ok(pcm)
}
