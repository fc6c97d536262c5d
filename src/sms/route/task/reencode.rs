//! Moving a message to a route of another kind (SMPP parts vs an HTTP
//! provider's whole text): its text encoded again, its parts replaced and
//! claimed for the new route in one store transaction, whole or not at all.

use super::{Router, StoredPart};
use crate::sms::driver::DriverCmd;
use crate::sms::route::spawn::Kind;
use crate::store::Sending;

impl Router {
    /// Encodes the messages of `parts` again for route `name` (of `kind`) and
    /// claims them for it, whole; returns their new parts. A message one
    /// of whose parts was written (or ended) stays where it is: back to its
    /// route's driver.
    pub(super) async fn reencode(
        &mut self,
        name: &str,
        kind: &Kind,
        parts: Vec<StoredPart>,
    ) -> Vec<StoredPart> {
        let mut groups: Vec<Vec<StoredPart>> = Vec::new();
        for p in parts {
            match groups.last_mut() {
                Some(g) if g.first().is_some_and(|f| f.message_id == p.message_id) => g.push(p),
                _ => groups.push(vec![p]),
            }
        }
        let mut go = Vec::new();
        for g in groups {
            let Some(first) = g.first().cloned() else {
                continue;
            };
            let id = first.message_id.as_str();
            let body = match self.store.message_body(id).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("sms: read {id} to move it to route {name}: {e}");
                    self.back(g);
                    continue;
                }
            };
            let new = match crate::sms::service::encode_parts(kind, &body, rand::random()) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(&first, &format!("cannot be sent by route {name}: {e}"))
                        .await;
                    continue;
                }
            };
            let from = first.route.as_deref();
            match self.store.reclaim_encoded(id, from, name, &new).await {
                Ok(true) => {
                    tracing::info!(
                        "sms: {id} encoded again for route {name} ({} parts)",
                        new.len()
                    );
                    go.extend(new.into_iter().enumerate().map(|(i, p)| {
                        let part = u8::try_from(i + 1).unwrap_or(u8::MAX);
                        StoredPart {
                            message_id: first.message_id.clone(),
                            part,
                            idempotency_key: format!("{}.{part}", first.message_id),
                            source: first.source.clone(),
                            destination: first.destination.clone(),
                            esm_class: p.esm_class,
                            data_coding: p.data_coding,
                            payload: p.payload,
                            short_message: p.short_message,
                            sending: Sending {
                                encoded_for: Some(name.to_string()),
                                ..first.sending.clone()
                            },
                            route: Some(name.to_string()),
                        }
                    }));
                }
                Ok(false) => {
                    tracing::info!("sms: {id} stays on its route: a part of it was written");
                    self.back(g);
                }
                Err(e) => {
                    tracing::error!("sms: move {id} to route {name}: {e}");
                    self.back(g);
                }
            }
        }
        go
    }

    /// Parts that stay with the route they are claimed for.
    fn back(&self, parts: Vec<StoredPart>) {
        let Some(from) = parts.first().and_then(|p| p.route.clone()) else {
            return;
        };
        let i = self.lock().index(&from);
        if let Some(d) = i.and_then(|i| self.drivers.get(i)) {
            let _ = d.cmds.send(DriverCmd::Submit(parts));
        }
    }
}
