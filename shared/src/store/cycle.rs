//! Cycling a session's key in DynamoDB: one GetItem and one TransactWriteItems that puts
//! the new key and deletes the old one only if it is still alive and unchanged.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::dynamo::DynamoStore;
use super::transact::{cancelled, delete, put_under, update};
use super::{missing_is_unmet, new_key};
use crate::error::StoreError;
use crate::item::Removal;
use crate::key::SessionKey;
use crate::session::{Expected, Session};

impl DynamoStore {
    pub(super) async fn move_to_new_key(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let gone = || missing_is_unmet(StoreError::NotFound, expected);
        for attempt in 0..self.rules.config.update_attempts {
            self.pause(attempt).await?;
            let old = self.get_item(key, true).await?.ok_or_else(gone)?;
            let data = self.rules.decode(key, &old);
            let old_meta = self.rules.meta_of(&old, data.as_ref().ok());
            let now = self.rules.now();
            self.rules.writable_here(&old, &old_meta, expected, now)?;
            let data = data?;
            let meta = self.rules.cycled(&old_meta, now);
            let new = new_key()?;
            let layout = &self.rules.layout;
            let put = put(self, layout.moved(&old, &new, &meta))?;
            // The old key goes only if it is as read; with the Django codec it stays as a
            // tombstone, and "as read" includes its data, which the backend may change.
            let known = self.rules.known(&old, old_meta);
            let old_key = if layout.has_tombstones() {
                let t = self.rules.tombstone(now)?;
                let removal = Removal::Live {
                    version: Some(old_meta.version),
                    data: known.data.as_deref(),
                };
                TransactWriteItem::builder()
                    .update(update(self, key, layout.tombstone(&t, removal))?)
                    .build()
            } else {
                let delete = delete(self, key, layout.unchanged(now, old_meta.version))?;
                TransactWriteItem::builder().delete(delete).build()
            };
            let request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(old_key);
            match self.call(request.send()).await? {
                // The new key keeps the principal and the time it got it: a revocation
                // of the principal, checked after the move, covers it as it did the old.
                Ok(_) if self.revoked(&old).await? => return Err(gone()),
                Ok(_) => {
                    let view = crate::item::View(&old);
                    let principal = view.principal();
                    if let Some(p) = &principal {
                        self.counted(p, &new, view.principal_since()).await?;
                    }
                    return Ok(Session {
                        key: new,
                        data,
                        meta,
                        principal,
                    });
                }
                // A new key collision, or the old session changed or died meanwhile:
                // read again and retry; the read says "not found" if it is gone.
                Err(e) => cancelled(e)?,
            }
        }
        Err(StoreError::Contention)
    }
}

/// The transaction's put of the new key, which must be free.
fn put(store: &DynamoStore, item: crate::item::Item) -> Result<Put, StoreError> {
    put_under(store, item, store.rules.layout.absent())
}
