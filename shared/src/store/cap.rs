//! `SESSION_MAX_PER_PRINCIPAL` in DynamoDB. The index is eventually consistent, so it
//! cannot count concurrent logins; each principal has a registry item instead: the keys
//! of the sessions the API gave it, rewritten only over the version read. A login reads
//! it, keeps the members still live and the principal's, adds its own session, and
//! writes the list back in one transaction with the removal of the excess: of two
//! logins counting at once, the second's condition fails and it counts again, so once
//! all have answered no more than the cap are left.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::SessionStore;
use super::dynamo::DynamoStore;
use super::transact::{cancelled, delete, put_under, update};
use crate::error::StoreError;
use crate::item::{Removal, View};
use crate::key::SessionKey;
use crate::principal::Principal;

/// Time the count leaves before the deadline for taking the principal back when it fails.
const UNDO_TIME: Duration = Duration::from_millis(300);

impl DynamoStore {
    /// Counts `key`'s session, which a write has just given `principal` at `since_ms`,
    /// against the cap (see `within_cap`). When the count fails (out of time or tries,
    /// DynamoDB unavailable), the session is removed, with time kept for it: no session
    /// outlives the cap uncounted, and none keeps the login's data without its
    /// principal (with the django codec, `_auth_user_id`, which a Django site trusts).
    /// The caller gets the count's error. Nothing without a cap.
    pub(super) async fn counted(
        &self,
        principal: &Principal,
        key: &SessionKey,
        since_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        if self.rules.config.max_per_principal.is_none() {
            return Ok(());
        }
        let hurried = match self.deadline {
            Some(d) => self.until(d.checked_sub(UNDO_TIME).unwrap_or(d)),
            None => self.clone(),
        };
        let Err(failed) = hurried.within_cap(principal, key).await else {
            return Ok(());
        };
        // Removed only while it has the principal from then on or before; a later
        // write that gave it the principal again counted itself.
        self.remove_owned(key, principal, since_ms).await?;
        Err(failed)
    }

    /// Counts `key`'s session, which has just got `principal` (or kept it through a
    /// cycle), against the cap, and removes the sessions that have had the principal
    /// longest beyond it. Nothing without a cap.
    async fn within_cap(&self, principal: &Principal, key: &SessionKey) -> Result<(), StoreError> {
        let Some(cap) = self.rules.config.max_per_principal else {
            return Ok(());
        };
        let layout = &self.rules.layout;
        for attempt in 0..self.rules.config.update_attempts {
            self.pause(attempt).await?;
            let registry = self.get_raw(&layout.registry_key(principal), true).await?;
            let read = registry
                .as_ref()
                .map(|r| View(r).version())
                .unwrap_or_default();
            let mut keys: Vec<SessionKey> = registry
                .as_ref()
                .and_then(|r| View(r).members())
                .unwrap_or_default()
                .iter()
                .filter_map(|k| SessionKey::parse(k).ok())
                .filter(|k| k != key)
                .collect();
            keys.push(key.clone());
            // Live sessions of the principal, the API's only (the Django backend's are
            // not bound) and this region's (on a global table): this one last, whatever its age (it was just written), the
            // others those that have had it longest first.
            let mut live: Vec<(bool, i64, SessionKey)> = self
                .live_of(principal, &keys)
                .await?
                .into_iter()
                .filter(|(_, item)| {
                    !View(item).is_backend_owned() && layout.elsewhere(item).is_none()
                })
                .map(|(k, item)| (&k == key, View(&item).principal_since().unwrap_or(0), k))
                .collect();
            live.sort_by(|a, b| (a.0, a.1, a.2.as_str()).cmp(&(b.0, b.1, b.2.as_str())));
            let excess = live.len().saturating_sub(cap);
            let (evicted, kept) = live.split_at(excess);
            let members: Vec<&str> = kept.iter().map(|(_, _, k)| k.as_str()).collect();
            let (item, guard) = layout.registry(principal, read, &members);
            if evicted.is_empty() {
                match self.put_guarded(item, guard).await {
                    Ok(()) => return Ok(()),
                    Err(StoreError::VersionConflict) => continue,
                    Err(e) => return Err(e),
                }
            }
            let mut request = self.client.transact_write_items().transact_items(
                TransactWriteItem::builder()
                    .put(put_under(self, item, guard)?)
                    .build(),
            );
            let now = self.rules.now();
            for (_, _, k) in evicted {
                let action = if layout.has_tombstones() {
                    let t = self.rules.tombstone(now)?;
                    let write = layout.tombstone(&t, Removal::Owned(principal, None));
                    TransactWriteItem::builder()
                        .update(update(self, k, write)?)
                        .build()
                } else {
                    let write = layout.revocation(now, principal, None);
                    TransactWriteItem::builder()
                        .delete(delete(self, k, write)?)
                        .build()
                };
                request = request.transact_items(action);
            }
            match self.call(request.send()).await? {
                Ok(_) => return Ok(()),
                // The registry or a session changed since it was read: count again.
                Err(e) => cancelled(e)?,
            }
        }
        Err(StoreError::Contention)
    }
}
