//! `opt_out()` from a script thread (a call's or an SMS's): the number in
//! E.164, added to the do-not-contact list campaigns check, blocking on
//! the runtime the store runs on.

use crate::campaign::contacts::Country;
use crate::store::Store;

/// What a script needs to write the do-not-contact list.
#[derive(Clone, Debug)]
pub struct DncWriter {
    pub store: Store,
    pub runtime: tokio::runtime::Handle,
    /// `[sms] country`: for numbers written nationally.
    pub country: Country,
}

impl DncWriter {
    /// Adds `raw` (a number or a `sip:`/`tel:` URI); true when it was not
    /// listed yet. Must not be called on a runtime thread.
    pub fn add_blocking(&self, raw: &str, source: &str) -> Result<bool, String> {
        let phone = super::number::e164(raw, self.country)
            .ok_or_else(|| format!("opt_out: {raw:?} is not a phone number"))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("opt_out: called on a runtime thread".into());
        }
        let store = self.store.clone();
        self.runtime
            .block_on(async move { store.dnc_add(&[phone], source).await })
            .map(|n| n > 0)
            .map_err(|e| format!("opt_out: {e}"))
    }
}
