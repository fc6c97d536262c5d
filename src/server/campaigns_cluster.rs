//! The dialer as one node of several (docs/scaling.md, "Several nodes"):
//! at each poll it reports its calls up, reads the `nodes` table, applies
//! this node's share of the trunks' caps to its pacer (`cluster::share`),
//! and takes over any node whose lease ran out: that node's attempts in
//! flight end by the crash rule (never dialed again: a retry is a new
//! attempt), and its share stays reserved until its calls can no longer
//! be up at the carrier.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{crash_rule, wall_ms, Control, Runner};
use crate::call::registry::PaceGroup;
use crate::campaign::pace::CampaignPace;
use crate::cluster::share::{Caps, WINDOW_MS};
use crate::server::node::Node;
use crate::store::{AttemptInfo, Recovery, StoreError};

/// 64·T1: how long a carrier retransmits a 2xx nobody ACKs before it
/// gives the call up (RFC 3261, T1 = 500 ms).
pub const SIXTY_FOUR_T1: Duration = Duration::from_secs(32);

/// How often rows of dead nodes whose reservation ended are removed.
const FORGET_EVERY_MS: i64 = 60_000;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Until when a dead node's share stays reserved: 64·T1 after its last
/// renewal at least (a call it placed and never ACKed), and for each of
/// its attempts in flight, from its INVITE: the ring timeout and 64·T1
/// when unanswered (answered at the carrier after the node died, the
/// carrier gives up retransmitting its 2xx), the ring timeout and the
/// session interval (or an hour) when its answer was stored.
pub fn reservation(
    heartbeat_at: i64,
    attempts: &[(AttemptInfo, Recovery)],
    unanswered: Duration,
    answered: Duration,
) -> i64 {
    attempts
        .iter()
        .filter_map(|(a, _)| {
            let hold = if a.answered_at.is_some() {
                answered
            } else {
                unanswered
            };
            a.dialed_at.map(|d| d.saturating_add(ms(hold)))
        })
        .fold(heartbeat_at.saturating_add(ms(SIXTY_FOUR_T1)), i64::max)
}

impl Runner {
    /// Runs the dialer as node `node` of a shared database.
    pub fn with_node(mut self, node: Node) -> Runner {
        self.caps = Some(Caps::new(&node.id, self.cfg.trunks.clone()));
        self.node = Some(node);
        self
    }

    /// Reports the calls up, applies this node's share of the caps, and
    /// takes over dead nodes. Nothing without a node.
    pub(super) async fn poll_cluster(&mut self) -> Result<(), StoreError> {
        let Some(node) = &self.node else {
            return Ok(());
        };
        let me = node.id.clone();
        let at = Instant::now();
        let used: BTreeMap<String, u32> = self
            .cfg
            .trunks
            .iter()
            .map(|t| (t.name.clone(), self.pacer.trunk_in_use(&t.name, at)))
            .collect();
        node.report(used);
        let now = wall_ms();
        let rows = self.store.nodes().await?;
        if let Some(caps) = self.caps.as_mut() {
            if let Some(limits) = caps.update(now, &rows) {
                tracing::info!(node = %me, ?limits, "cluster: this node's share of the trunks");
                for l in limits {
                    let _ = self.control.send(Control::TrunkCaps {
                        name: l.name.clone(),
                        max_channels: l.max_channels,
                        cps: l.cps,
                    });
                    self.pacer.set_trunk(l);
                }
            }
        }
        self.apply_campaign_shares(now);
        if let Some(hold) = self.caps.as_ref().map(|c| c.hold_until()) {
            self.quiet_until = self.quiet_until.max(self.instant_of(hold));
        }
        for dead in rows
            .iter()
            .filter(|r| r.id != me && r.lease_until < now && r.reserved_until.is_none())
        {
            let ghost_ms = ms(self.cfg.ghost_hold);
            let campaigns = &self.campaigns;
            let (unanswered, answered) = (self.cfg.unanswered_hold, self.cfg.ghost_hold);
            let taken = self
                .store
                .take_over_node(
                    &dead.id,
                    now,
                    |a| crash_rule(campaigns, now, ghost_ms, a),
                    |beat, attempts| reservation(beat, attempts, unanswered, answered),
                )
                .await?;
            if let Some(t) = taken {
                tracing::warn!(node = %t.node, by = %me, attempts = t.attempts.len(),
                    last_heartbeat_ms = t.heartbeat_at, reserved_until_ms = t.reserved_until,
                    "cluster: took over a node whose lease ran out");
                for (a, r) in &t.attempts {
                    tracing::warn!(attempt = %a.id, campaign = %a.campaign_id, phone = %a.phone,
                        node = %t.node, outcome = %r.outcome, then = ?r.then,
                        "campaigns: attempt of a dead node ended by the crash rule");
                    if let (crate::store::Then::Retry { next_at }, Some(c)) =
                        (r.then, self.campaigns.get_mut(&a.campaign_id))
                    {
                        c.next_due = Some(c.next_due.map_or(next_at, |d| d.min(next_at)));
                    }
                }
            }
        }
        if now >= self.forget_at {
            self.forget_at = now.saturating_add(FORGET_EVERY_MS);
            self.store.forget_nodes(now).await?;
        }
        Ok(())
    }

    /// This node's share of a campaign's cps and channels (the whole of
    /// them without a node, or alone).
    pub(super) fn campaign_share(&self, cps: u32, channels: u32) -> (u32, u32) {
        match &self.caps {
            Some(c) => {
                let now = wall_ms();
                (c.share_of(cps, now), c.share_of(channels, now))
            }
            None => (cps, channels),
        }
    }

    /// Gives each campaign in the pacer its share as the member set now
    /// makes it; a changed cps holds starts for a window, as a trunk's.
    fn apply_campaign_shares(&mut self, now: i64) {
        let Some(caps) = &self.caps else {
            return;
        };
        let mut hold = false;
        for a in self.campaigns.values_mut().filter(|a| a.in_pacer) {
            let cps = super::cps_of(&a.campaign);
            let share = (
                caps.share_of(cps, now),
                caps.share_of(a.campaign.settings.max_channels, now),
            );
            if share == a.share {
                continue;
            }
            hold |= share.0 != a.share.0;
            a.share = share;
            let spec = CampaignPace {
                id: a.num,
                priority: a.campaign.settings.priority,
                cps: share.0.max(1),
                max_channels: share.1.max(1),
                trunks: a.campaign.settings.trunks.clone(),
            };
            tracing::info!(campaign = %a.campaign.id, cps = share.0, max_channels = share.1,
                "cluster: this node's share of the campaign");
            if let Err(e) = self.pacer.update(spec) {
                tracing::error!(campaign = %a.campaign.id, error = %e, "campaigns: share not applied");
            }
        }
        if hold {
            let until = self.instant_of(now.saturating_add(WINDOW_MS));
            self.quiet_until = self.quiet_until.max(until);
        }
    }

    /// This node lost its lease: it places no campaign call any more.
    pub(super) fn lease_lost(&self) -> bool {
        self.node.as_ref().is_some_and(Node::lost)
    }

    /// The rate the call layer checks again at the wire for a campaign
    /// call on `trunk`: the campaign's own, or this node's share of the
    /// trunk's cps when that is the tighter (several nodes: the cluster's
    /// cap is the sum of the shares, so each must hold at the wire).
    pub(super) fn wire_pace(&self, campaign: &str, cps: u32, trunk: &str) -> PaceGroup {
        let share = self
            .caps
            .as_ref()
            .and_then(|c| c.limits().iter().find(|t| t.name == trunk))
            .map(|t| t.cps);
        match share {
            Some(s) if s < cps => PaceGroup {
                name: format!("node share of trunk {trunk}"),
                cps: s,
            },
            _ => PaceGroup {
                name: format!("campaign {campaign}"),
                cps,
            },
        }
    }

    /// The calls up per trunk, at the end of the run: the row goes.
    pub(super) async fn leave(&mut self) {
        if let Some(n) = self.node.take() {
            n.leave().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::AttemptOutcome;
    use crate::store::{AttemptState, Dialog, Then};

    fn attempt(dialed_at: Option<i64>, answered_at: Option<i64>) -> (AttemptInfo, Recovery) {
        let a = AttemptInfo {
            id: "a".into(),
            campaign_id: "c".into(),
            contact_id: 1,
            phone: "+254712000001".into(),
            n: 1,
            state: AttemptState::Dialing,
            outcome: None,
            trunk: Some("carrier".into()),
            claimed_at: 0,
            dialed_at,
            answered_at,
            ended_at: None,
            dialog: Dialog::default(),
            ghost_until: None,
        };
        let r = Recovery {
            outcome: AttemptOutcome::Unknown,
            then: Then::Final,
            ghost_until: None,
        };
        (a, r)
    }

    #[test]
    fn a_dead_nodes_share_is_held_until_its_longest_call_can_be_over() {
        let ring_64t1 = Duration::from_secs(45) + SIXTY_FOUR_T1;
        let session = Duration::from_secs(45 + 1800);
        // Nothing in flight: 64·T1 after the last heartbeat.
        assert_eq!(reservation(100_000, &[], ring_64t1, session), 132_000);
        // Ringing: its ring timeout and 64·T1 from its INVITE.
        let ringing = [attempt(Some(98_000), None)];
        assert_eq!(reservation(100_000, &ringing, ring_64t1, session), 175_000);
        // Answered: the session interval; claimed only: nothing more.
        let mixed = [
            attempt(Some(98_000), None),
            attempt(Some(90_000), Some(91_000)),
            attempt(None, None),
        ];
        assert_eq!(
            reservation(100_000, &mixed, ring_64t1, session),
            90_000 + 1_845_000
        );
    }
}
