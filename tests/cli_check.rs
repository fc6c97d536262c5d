//! `rivr check`: every shipped script compiles; a broken one is reported as
//! file:line:col with a non-zero exit. `rivr serve` with a broken config
//! names the key and the line.

use std::path::PathBuf;
use std::process::Command;

fn rivr() -> Command {
    let bin = std::env::var("RIVR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rivr").to_string());
    Command::new(bin)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rivr-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn shipped_scripts_compile() {
    let out = rivr()
        .arg("check")
        .arg(repo().join("scripts/main_menu.rhai"))
        .arg(repo().join("scripts/survey.rhai"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(": ok").count(), 2, "{stdout}");
}

#[test]
fn a_syntax_error_is_reported_with_file_line_and_column() {
    let d = temp_dir("check");
    let bad = d.join("bad.rhai");
    std::fs::write(
        &bad,
        "answer();\nlet x = gather(#{ max_digits: 1 );\nhangup();\n",
    )
    .unwrap();
    let good = d.join("good.rhai");
    std::fs::write(&good, "answer();\n").unwrap();
    let out = rivr().arg("check").arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:2:", bad.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    let col: usize = stderr[prefix.len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(col > 0, "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.rhai: ok"));
}

#[test]
fn a_missing_script_is_an_error() {
    let out = rivr()
        .arg("check")
        .arg("/nonexistent/x.rhai")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.rhai: cannot read"));
}

#[test]
fn serve_rejects_a_bad_config_naming_key_and_line() {
    let d = temp_dir("config");
    let cfg = d.join("rivr.toml");
    std::fs::write(
        &cfg,
        "[sip]\nlisten = \"127.0.0.1:0\"\n\n[rtp]\nports = \"40001-40000\"\n",
    )
    .unwrap();
    let out = rivr()
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5: rtp.ports", cfg.display())),
        "{stderr}"
    );
    // a route whose script does not compile stops the server at start
    std::fs::write(d.join("broken.rhai"), "let = ;").unwrap();
    std::fs::write(
        &cfg,
        "[sip]\nlisten = \"127.0.0.1:0\"\n[[route]]\nnumber = \"1\"\nscript = \"broken.rhai\"\n",
    )
    .unwrap();
    let out = rivr()
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.rhai:1:"), "{stderr}");
}

/// `rivr check --config` checks the spans and PRI trunks and lists them;
/// `rivr serve` with a DAHDI span whose device is not there starts, says
/// so, and keeps trying (a carrier's line may come up later).
#[test]
fn check_config_lists_spans_and_pri_trunks_and_serve_waits_for_a_missing_dahdi_device() {
    let d = temp_dir("pri");
    let cfg = d.join("rivr.toml");
    std::fs::write(
        &cfg,
        "[sip]\nlisten = \"127.0.0.1:0\"\n\
         [[trunk]]\nname = \"e1\"\nkind = \"pri\"\nspans = [\"e1a\", \"e1b\"]\nhunt = \"lowest\"\n\
         [[span]]\nname = \"e1a\"\nvariant = \"etsi\"\ndchannel = \"/run/pri/e1a/d\"\nbchannels = \"/run/pri/e1a/b{n}\"\n\
         [[span]]\nname = \"e1b\"\nvariant = \"etsi\"\ndchannel = \"pri/e1b/d\"\nbchannels = \"pri/e1b/b{n}\"\nchannels = \"1-10\"\n",
    )
    .unwrap();
    let out = rivr()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{}: ok", cfg.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("span e1a: etsi alaw user socket, dchannel /run/pri/e1a/d, bchannels /run/pri/e1a/b{n}, channels 1-15,17-31 (30)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "bchannels {}/pri/e1b/b{{n}}, channels 1-10 (10)",
            d.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("trunk e1: pri spans e1a,e1b, hunt lowest, max_channels 40"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "name = \"e1b\"\n",
            "name = \"e1b\"\ntransport = \"dahdi\"\n",
        ),
    )
    .unwrap();
    let out = rivr()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "span e1b: etsi alaw user dahdi, dchannel {}/pri/e1b/d,",
            d.display()
        )),
        "{stdout}"
    );
    let mut serve = rivr()
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .env("RIVR_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the first open and a retry a second later.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let running = serve.try_wait().unwrap().is_none();
    let _ = serve.kill();
    let out = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(running, "serve kept running: {stderr}");
    assert!(
        stderr.contains("pri: cannot open the DAHDI D-channel; retrying each second")
            && stderr.contains(&format!("{}/pri/e1b/d", d.display())),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot open the DAHDI D-channel").count(),
        1,
        "logged once as an error, then retried quietly: {stderr}"
    );
    // a channel 16 on an E1 span names the key and the line
    let text = text.replace("1-10", "10-16");
    std::fs::write(&cfg, text).unwrap();
    let out = rivr()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:18: span.channels: 16 is not an E1",
            cfg.display()
        )),
        "{stderr}"
    );
}
