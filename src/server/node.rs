//! This `rivr serve` as a node of the database it shares with others
//! (docs/scaling.md, "Several nodes"): its id held by a lock for as long
//! as it runs, its row in `nodes`, and the lease it renews every second in
//! a task of its own (so a slow store call of the dialer never lets it
//! lapse), reporting its calls up per trunk. A renewal refused (another
//! node took it over) loses the lease for good: the dialer then claims
//! nothing more. The rules are `crate::cluster`'s; the dialer
//! (`server::campaigns`) reads the table and takes over dead nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::cluster::ClusterConfig;
use crate::store::{NodeLock, Store, StoreError};

/// How often the lease is renewed.
pub const RENEW: Duration = Duration::from_secs(1);

/// This process's node.
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub incarnation: String,
    pub lease: Duration,
    store: Store,
    channels: watch::Sender<BTreeMap<String, u32>>,
    lost: watch::Receiver<bool>,
    renewals: tokio::task::JoinHandle<()>,
    _lock: NodeLock,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Node {
    /// Takes node id `cfg.node_id` (refused while another live process
    /// holds it), writes its row and starts renewing its lease.
    pub async fn join(store: &Store, cfg: &ClusterConfig) -> Result<Node, StoreError> {
        let lock = store.lock_node(&cfg.node_id).await?;
        let incarnation = format!("{:016x}", rand::random::<u64>());
        let lease_ms = ms(cfg.lease);
        store
            .join_node(&cfg.node_id, &incarnation, crate::store::now_ms(), lease_ms)
            .await?;
        let (channels, seen) = watch::channel(BTreeMap::new());
        let (lost_tx, lost) = watch::channel(false);
        let renewals = tokio::spawn(renew(
            store.clone(),
            cfg.node_id.clone(),
            incarnation.clone(),
            lease_ms,
            seen,
            lost_tx,
        ));
        tracing::info!(node = %cfg.node_id, lease_s = cfg.lease.as_secs(), "cluster: joined");
        Ok(Node {
            id: cfg.node_id.clone(),
            incarnation,
            lease: cfg.lease,
            store: store.clone(),
            channels,
            lost,
            renewals,
            _lock: lock,
        })
    }

    /// The calls this node has up per trunk, for its next renewal.
    pub fn report(&self, channels: BTreeMap<String, u32>) {
        self.channels.send_if_modified(|c| {
            let changed = *c != channels;
            *c = channels;
            changed
        });
    }

    /// Another node took this one over: it must claim nothing more.
    pub fn lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// A clean stop: no more renewals, and the row goes if nothing of
    /// this node is in flight (else the lease runs out and another node
    /// takes it over).
    pub async fn leave(self) {
        self.renewals.abort();
        match self.store.leave_node(&self.id, &self.incarnation).await {
            Ok(true) => tracing::info!(node = %self.id, "cluster: left"),
            Ok(false) => tracing::warn!(node = %self.id,
                "cluster: attempts still in flight; another node takes them over when the lease runs out"),
            Err(e) => tracing::warn!(node = %self.id, error = %e, "cluster: row not removed"),
        }
    }
}

async fn renew(
    store: Store,
    id: String,
    incarnation: String,
    lease_ms: i64,
    mut channels: watch::Receiver<BTreeMap<String, u32>>,
    lost: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::store::now_ms();
        let report = channels.borrow_and_update().clone();
        match store
            .renew_node(&id, &incarnation, now, lease_ms, &report)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(node = %id,
                    "cluster: lease lost (another node took this one over); no more campaign calls from this process — restart it");
                let _ = lost.send(true);
                return;
            }
            Err(e) => tracing::warn!(node = %id, error = %e, "cluster: lease not renewed"),
        }
    }
}
