//! `rivr smsc-sim`: the simulator core behind a TCP listener. One task owns
//! the core; per-connection tasks only read and write bytes. Accepted
//! messages are appended to a log file, one line each, for tests to judge.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{ConnId, SimConfig, SimOutput, Smsc};

/// Options of `rivr smsc-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:2775")]
    pub listen: String,
    #[arg(long, default_value = "rivrsim")]
    pub system_id: String,
    /// Required password (empty accepts any).
    #[arg(long, default_value = "")]
    pub password: String,
    /// Delay before each submit_sm_resp, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Percent of submits answered ESME_RTHROTTLED.
    #[arg(long, default_value_t = 0)]
    pub throttle_pct: u8,
    /// Percent of submits answered ESME_RMSGQFUL.
    #[arg(long, default_value_t = 0)]
    pub queue_full_pct: u8,
    /// Drop the connection after every N submits received.
    #[arg(long)]
    pub drop_every: Option<u32>,
    /// Stop dropping after this many drops.
    #[arg(long, default_value_t = u32::MAX)]
    pub max_drops: u32,
    /// Delay of delivery receipts in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub receipt_delay_ms: u64,
    /// Send no receipts at all.
    #[arg(long)]
    pub no_receipts: bool,
    /// Percent of receipts never sent.
    #[arg(long, default_value_t = 0)]
    pub receipt_missing_pct: u8,
    /// Send each receipt before the submit_sm_resp.
    #[arg(long)]
    pub receipt_before_resp: bool,
    /// Never answer enquire_link.
    #[arg(long)]
    pub mute_enquire_link: bool,
    /// Ids in hex in submit_sm_resp and in decimal in receipts.
    #[arg(long)]
    pub hex_ids: bool,
    #[arg(long, default_value = "DELIVRD")]
    pub receipt_stat: String,
    /// Append one line per accepted message (and stats) to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Send one inbound (mobile-originated) SMS to the first bound receiver.
    #[arg(long)]
    pub mo_text: Option<String>,
}

impl SimArgs {
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            system_id: self.system_id.clone(),
            password: self.password.clone(),
            ack_latency: Duration::from_millis(self.latency_ms),
            throttle_pct: self.throttle_pct.min(100),
            queue_full_pct: self.queue_full_pct.min(100),
            drop_every: self.drop_every,
            max_drops: self.max_drops,
            receipt_delay: (!self.no_receipts)
                .then(|| Duration::from_millis(self.receipt_delay_ms)),
            receipt_missing_pct: self.receipt_missing_pct.min(100),
            receipt_before_resp: self.receipt_before_resp,
            mute_enquire_link: self.mute_enquire_link,
            hex_resp_decimal_receipt: self.hex_ids,
            receipt_stat: self.receipt_stat.clone(),
            seed: rand::random(),
        }
    }
}

/// Runs `rivr smsc-sim` until killed.
pub fn run(args: SimArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rivr smsc-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivr smsc-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Input {
    Open(ConnId, mpsc::UnboundedSender<Option<Vec<u8>>>),
    Bytes(ConnId, Vec<u8>),
    Closed(ConnId),
}

async fn serve(args: SimArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    serve_on(listener, args).await
}

/// Runs the simulator on a listener bound by the caller (`rivr demo` runs
/// one in-process on a free port); ends only on a listener error.
pub async fn serve_on(listener: TcpListener, args: SimArgs) -> std::io::Result<()> {
    let mut log = match &args.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let mut smsc = Smsc::new(args.sim_config());
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut writers: HashMap<ConnId, mpsc::UnboundedSender<Option<Vec<u8>>>> = HashMap::new();
    let mut next_conn: ConnId = 1;
    let mut logged = 0usize;
    let mut max_out = 0usize;
    let mut last = super::SimStats::default();
    let mut mo = args.mo_text.clone();
    loop {
        let wake = smsc.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            acc = listener.accept() => {
                let (sock, _) = acc?;
                let _ = sock.set_nodelay(true);
                let id = next_conn;
                next_conn += 1;
                spawn_conn(id, sock, tx.clone());
            }
            Some(input) = rx.recv() => match input {
                Input::Open(id, w) => {
                    writers.insert(id, w);
                    smsc.handle_connect(id);
                }
                Input::Bytes(id, b) => smsc.handle_bytes(id, &b, Instant::now()),
                Input::Closed(id) => {
                    writers.remove(&id);
                    smsc.handle_close(id);
                }
            },
            _ = async { match wake { Some(w) => tokio::time::sleep_until(w).await, None => std::future::pending().await } } => {
                smsc.handle_timeout(Instant::now());
            }
        }
        if smsc.stats().binds > 0 {
            if let Some(text) = mo.take() {
                smsc.inject_mo("15550009999", "rivr", &text, Instant::now());
            }
        }
        while let Some(o) = smsc.poll_output() {
            match o {
                SimOutput::Send { conn, bytes } => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.send(Some(bytes));
                    }
                }
                SimOutput::Close { conn } => {
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.send(None);
                    }
                }
            }
        }
        if let Some(f) = log.as_mut() {
            for m in smsc.accepted().get(logged..).unwrap_or(&[]) {
                let _ = writeln!(
                    f,
                    "accepted id={} key={} dest={} dc={} esm={} sm={}",
                    m.smsc_id,
                    m.key.as_deref().unwrap_or("-"),
                    m.destination,
                    m.data_coding,
                    m.esm_class,
                    hex(m.payload.as_deref().unwrap_or(&m.short_message)),
                );
            }
            logged = smsc.accepted().len();
            let st = smsc.stats().clone();
            if st.max_outstanding > max_out {
                max_out = st.max_outstanding;
                let _ = writeln!(f, "max_outstanding {max_out}");
            }
            if st != last {
                let _ = writeln!(
                    f,
                    "binds {}\ndrops {}\nthrottled {}\nqueue_full {}\nreceipts_acked {}",
                    st.binds, st.drops, st.throttled, st.queue_full, st.receipts_acked
                );
                last = st;
            }
            let _ = f.flush();
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn spawn_conn(id: ConnId, sock: tokio::net::TcpStream, tx: mpsc::UnboundedSender<Input>) {
    let (mut rd, mut wr) = sock.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    let _ = tx.send(Input::Open(id, wtx));
    tokio::spawn(async move {
        while let Some(Some(b)) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Input::Bytes(id, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Input::Closed(id));
    });
}
