//! Starts the drivers of the configured routes (an SMPP session, two with
//! `transmitter+receiver`, or the HTTP sender) and says how to reach them.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::task::{Report, RouteDriver};
use super::{Family, HealthConfig, RouteSpec};
use crate::sms::config::{BindConfig, HttpSmsConfig, Provider, ScheduleMode, SmppConfig};
use crate::sms::driver::{self, RouteCtx};
use crate::sms::{http, Notice};
use crate::store::Store;

/// How a route's messages are encoded: SMPP parts, or whole text for HTTP.
/// Parts move between two routes as stored only when their kinds are
/// equal; otherwise the message is encoded again (`task`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Smpp {
        use_message_payload: bool,
    },
    /// `preset`: a provider (Infobip, Vonage) that splits the text itself;
    /// rivr counts its parts. Otherwise the template: one part.
    Http {
        preset: bool,
    },
}

pub(crate) struct RouteInfo {
    pub name: String,
    pub kind: Kind,
    /// The route's default sender ID.
    pub from: String,
    pub status: tokio::sync::watch::Receiver<crate::sms::LinkStatus>,
}

/// One route as configured.
pub(crate) enum RouteConf {
    Smpp(SmppConfig),
    Http(HttpSmsConfig),
}

impl RouteConf {
    pub fn name(&self) -> String {
        match self {
            RouteConf::Smpp(c) if c.name.is_empty() => "smpp".into(),
            RouteConf::Smpp(c) => c.name.clone(),
            RouteConf::Http(_) => "http".into(),
        }
    }
}

/// What [`spawn`] started: the chooser's specs, what the service needs of
/// each route, and the router's handles, all in route order.
pub(crate) struct Spawned {
    pub specs: Vec<RouteSpec>,
    pub infos: Vec<RouteInfo>,
    pub drivers: Vec<RouteDriver>,
}

/// Runs `driver` once this process sends SMS (`owner` turns true); never
/// if it stops first (a standby node shut down).
async fn when_owner(mut owner: watch::Receiver<bool>, driver: impl Future<Output = ()>) {
    let sends = owner.wait_for(|o| *o).await.is_ok();
    if sends {
        driver.await;
    }
}

/// Spawns every route's driver(s) on the current runtime; each binds or
/// sends only once `owner` turns true (docs/scaling.md, "SMS across
/// nodes").
pub(crate) fn spawn(
    routes: Vec<RouteConf>,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    reports: &mpsc::UnboundedSender<Report>,
    owner: &watch::Receiver<bool>,
) -> Spawned {
    let sole = routes.len() == 1;
    let mut specs = Vec::new();
    let mut infos = Vec::new();
    let mut drivers = Vec::new();
    for (index, rc) in routes.into_iter().enumerate() {
        let name = rc.name();
        let (dcmds, drx) = mpsc::unbounded_channel();
        let (status_tx, status) = tokio::sync::watch::channel(crate::sms::LinkStatus {
            transport: match rc {
                RouteConf::Smpp(_) => "smpp",
                RouteConf::Http(_) => "http",
            },
            bound: matches!(rc, RouteConf::Http(_)),
            ..crate::sms::LinkStatus::default()
        });
        let (s, n) = (store.clone(), notices.clone());
        match rc {
            RouteConf::Smpp(c) => {
                specs.push(RouteSpec {
                    name: name.clone(),
                    prefixes: c.prefixes.clone(),
                    health: HealthConfig {
                        failover_after: Duration::from_millis(c.failover_after_ms),
                        throttle_failover: c.throttle_failover,
                        throttle_hold: Duration::from_secs(c.throttle_hold_secs),
                        ..HealthConfig::default()
                    },
                    family: Family::Smpp,
                });
                infos.push(RouteInfo {
                    name,
                    kind: Kind::Smpp {
                        use_message_payload: c.use_message_payload,
                    },
                    from: c.source_addr.clone(),
                    status,
                });
                let (release, release_rx) = mpsc::unbounded_channel();
                let ctx = RouteCtx {
                    index,
                    reports: reports.clone(),
                    release: release_rx,
                    sole,
                };
                let receiver = c.bind.separate_receiver().then(|| {
                    let mut rc = c.clone();
                    rc.bind = BindConfig::Receiver;
                    let (rcmds, rrx) = mpsc::unbounded_channel();
                    // Its health does not decide where messages go.
                    let (rreports, _) = mpsc::unbounded_channel();
                    let (_, rrel) = mpsc::unbounded_channel();
                    let (rstatus, _) =
                        tokio::sync::watch::channel(crate::sms::LinkStatus::default());
                    let rctx = RouteCtx {
                        index,
                        reports: rreports,
                        release: rrel,
                        sole: false,
                    };
                    tokio::spawn(when_owner(
                        owner.clone(),
                        driver::run(rc, s.clone(), Vec::new(), rrx, n.clone(), rstatus, rctx),
                    ));
                    rcmds
                });
                drivers.push(RouteDriver {
                    kind: Kind::Smpp {
                        use_message_payload: c.use_message_payload,
                    },
                    schedule: c.schedule,
                    cmds: dcmds,
                    release: Some(release),
                    receiver,
                });
                tokio::spawn(when_owner(
                    owner.clone(),
                    driver::run(c, s, Vec::new(), drx, n, status_tx, ctx),
                ));
            }
            RouteConf::Http(c) => {
                specs.push(RouteSpec {
                    name: name.clone(),
                    prefixes: c.prefixes.clone(),
                    health: HealthConfig::default(),
                    family: Family::Http,
                });
                infos.push(RouteInfo {
                    name,
                    kind: Kind::Http {
                        preset: c.provider != Provider::Template,
                    },
                    from: c.from.clone(),
                    status,
                });
                drivers.push(RouteDriver {
                    kind: Kind::Http {
                        preset: c.provider != Provider::Template,
                    },
                    schedule: ScheduleMode::Local,
                    cmds: dcmds,
                    release: None,
                    receiver: None,
                });
                // HTTP has no session to report; its status stays as set here.
                drop(status_tx);
                tokio::spawn(when_owner(
                    owner.clone(),
                    http::run(c, s, Vec::new(), drx, n),
                ));
            }
        }
    }
    Spawned {
        specs,
        infos,
        drivers,
    }
}
