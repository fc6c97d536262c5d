//! What the demo writes before it starts: its folder, the two configs
//! (rivr's and the inbound caller's), the scripts and the contact list.
//! The files are plain and kept with `--dir`, so a newcomer can read what
//! the demo ran and rerun pieces of it with `rivr serve`/`rivr campaign`.

use std::path::{Path, PathBuf};

/// The shipped menu, so the demo runs the flow the binary was built with.
const MAIN_MENU: &str = include_str!("../../scripts/main_menu.rhai");
const CAMPAIGN: &str = include_str!("campaign.rhai");
const CALLER: &str = include_str!("caller.rhai");

const NAMES: [&str; 10] = [
    "Amina", "Brian", "Chao", "Dalia", "Emeka", "Fatuma", "Goran", "Hana", "Ivan", "Jomo",
];

/// The demo's folder; a temporary one is removed on drop.
pub struct Workdir {
    pub path: PathBuf,
    temporary: bool,
}

impl Workdir {
    pub fn new(dir: Option<PathBuf>) -> Result<Workdir, String> {
        let (path, temporary) = match dir {
            Some(d) => (d, false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!("rivr-demo-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        std::fs::create_dir_all(path.join("scripts"))
            .map_err(|e| format!("--dir {}: {e}", path.display()))?;
        let path = std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Workdir { path, temporary })
    }

    pub fn temporary(&self) -> bool {
        self.temporary
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `--prompts`, else `./prompts`, else the source tree's.
pub fn find_prompts(given: Option<&Path>) -> Result<PathBuf, String> {
    let has_menu = |p: &Path| p.join("main_menu.wav").is_file();
    if let Some(p) = given {
        return if has_menu(p) {
            std::fs::canonicalize(p).map_err(|e| format!("--prompts {}: {e}", p.display()))
        } else {
            Err(format!("--prompts {}: no main_menu.wav there", p.display()))
        };
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    [PathBuf::from("prompts"), built]
        .into_iter()
        .find(|p| has_menu(p))
        .and_then(|p| std::fs::canonicalize(p).ok())
        .ok_or_else(|| {
            "no prompts found: run it from a rivr checkout or give --prompts DIR".to_string()
        })
}

/// The contact number of row `i`: Kenyan mobile numbers whose last digit
/// cycles 0-9, so every behaviour of the carrier comes up.
pub fn number(i: u32) -> String {
    format!("+254712000{:03}", 100 + i)
}

/// Addresses the configs point at.
pub struct Ports {
    pub smsc: u16,
    pub carrier: std::net::SocketAddr,
}

/// Tokens of the demo's `[http]`: fresh each run (they are secrets on a
/// shared machine too).
pub struct Tokens {
    pub read: String,
    pub admin: String,
}

impl Tokens {
    pub fn new() -> Tokens {
        let t = || format!("{:032x}", rand::random::<u128>());
        Tokens {
            read: t(),
            admin: t(),
        }
    }
}

/// Writes everything; the paths of rivr's config, the caller's config,
/// the contact list and the campaign script.
pub fn write_all(
    dir: &Path,
    prompts: &Path,
    ports: &Ports,
    tokens: &Tokens,
    contacts: u32,
) -> Result<(PathBuf, PathBuf, PathBuf, PathBuf), String> {
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    };
    write("scripts/main_menu.rhai", MAIN_MENU)?;
    let campaign = write("scripts/campaign.rhai", CAMPAIGN)?;
    write("scripts/caller.rhai", CALLER)?;
    let mut csv = String::from("phone,name\n");
    for i in 0..contacts {
        let name = NAMES
            .get(i as usize % NAMES.len())
            .copied()
            .unwrap_or("Sam");
        csv.push_str(&format!("{},{name}\n", number(i)));
    }
    let list = write("contacts.csv", &csv)?;
    let prompts = prompts.display();
    let rivr = format!(
        "# Written by `rivr demo`: rivr with a simulated carrier and SMSC.\n\
         [sip]\nlisten = \"127.0.0.1:0\"\n\
         [media]\nprompts = \"{prompts}\"\ncodecs = [\"pcmu\", \"pcma\"]\n\
         [store]\nurl = \"sqlite://{db}\"\n\
         [cdr]\npath = \"cdr.jsonl\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{read}\"\nrole = \"read\"\n\
         [[http.token]]\ntoken = \"{admin}\"\nrole = \"admin\"\n\
         [smpp]\nhost = \"127.0.0.1\"\nport = {smsc}\nsystem_id = \"rivrsim\"\npassword = \"demo\"\n\
         [[trunk]]\nname = \"carrier\"\nuri = \"sip:{carrier}\"\ncps = 10\nmax_channels = 20\n\
         ring_timeout = 3\noptions_interval = 0\n\
         [[route]]\nnumber = \"1000\"\nscript = \"scripts/main_menu.rhai\"\n",
        db = dir.join("rivr.db").display(),
        read = tokens.read,
        admin = tokens.admin,
        smsc = ports.smsc,
        carrier = ports.carrier,
    );
    let rivr = write("rivr.toml", &rivr)?;
    // The caller is a second, small rivr: no store, its CDRs in a file.
    let caller = format!(
        "# Written by `rivr demo`: the inbound caller (a second, small rivr).\n\
         [sip]\nlisten = \"127.0.0.1:0\"\n\
         [media]\nprompts = \"{prompts}\"\ncodecs = [\"pcmu\"]\n\
         [cdr]\npath = \"caller-cdr.jsonl\"\nstore = false\n"
    );
    let caller = write("caller.toml", &caller)?;
    Ok((rivr, caller, list, campaign))
}
