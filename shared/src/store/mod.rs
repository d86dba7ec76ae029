//! Sessions behind three small traits, by concern: [`SessionStore`] (a session's own
//! operations), [`Principals`] (a principal's sessions listed and revoked) and
//! [`Upkeep`] (what the cleanup function asks of the table). Each is implemented once,
//! on DynamoDB: [`DynamoStore`], which the tests run against Dynoxide. What a session is and how its
//! expiry moves is decided once, in [`Rules`]; what the item looks like is decided in
//! [`crate::item`].

mod cap;
mod cycle;
mod dynamo;
mod principals;
mod refresh;
mod requests;
mod rules;
mod transact;
mod upkeep;

use std::future::Future;
use std::time::Instant;

pub use dynamo::DynamoStore;
pub use upkeep::{BackendOutcome, BackendWrite, Candidate, Page};

use crate::clock::Timestamp;
use crate::item::{Cursor, Item, Position};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::expiry::Expiry;
use crate::key::SessionKey;
use crate::principal::{
    ListingPosition, Ownership, Principal, PrincipalPage, Revocation, SessionHandle,
};
use crate::session::{Expected, Session, SessionData};

/// What the API needs of a session store. Every write is conditional: nothing is
/// resurrected, nothing is overwritten unseen, and every write bumps the version. An
/// `expected` demand (`If-Match`) that is not met, including by a session that is
/// missing or expired, fails as [`StoreError::VersionConflict`] and writes nothing.
pub trait SessionStore: Send + Sync + Sized {
    fn config(&self) -> &StoreConfig;

    /// The same store for one invocation: operations end by `deadline`, failing as
    /// [`StoreError::Unavailable`] in time to answer.
    fn until(&self, deadline: Instant) -> Self;

    /// A new session under a fresh key.
    fn create(
        &self,
        data: SessionData,
        expiry: Expiry,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send {
        self.create_owned(data, expiry, None)
    }

    /// A new session under a fresh key that belongs to `principal`, if one is given.
    fn create_owned(
        &self,
        data: SessionData,
        expiry: Expiry,
        principal: Option<Principal>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// The live session under `key`; never writes anything.
    fn load(&self, key: &SessionKey) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// Whether a live session has this key.
    fn exists(&self, key: &SessionKey) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Loads, and refreshes the expiry only when the last refresh is older than the
    /// configured interval.
    fn load_and_touch(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// Replaces the data and the expiry rule; never creates a session.
    fn replace(
        &self,
        key: &SessionKey,
        data: SessionData,
        expiry: Expiry,
        expected: Option<Expected>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send {
        self.replace_owned(key, data, expiry, Ownership::Keep, expected)
    }

    /// Replaces the data and the expiry rule, and sets or clears the principal as
    /// `owner` says; never creates a session.
    fn replace_owned(
        &self,
        key: &SessionKey,
        data: SessionData,
        expiry: Expiry,
        owner: Ownership,
        expected: Option<Expected>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// Refreshes the expiry.
    fn touch(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;

    /// Read-modify-write of the data: `change` sees the current data, and no other
    /// write gets in between.
    fn update<F>(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        change: F,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError> + Send;

    /// Deletes the session. Deleting what is not there succeeds, unless the caller
    /// expected it to be there.
    fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the session to a fresh key, atomically: the old key is gone, nothing else
    /// changes but the expiry and the version.
    fn cycle(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> impl Future<Output = Result<Session, StoreError>> + Send;
}

/// The principal administration: a principal's sessions listed and revoked, one or all.
/// (The cap, `SESSION_MAX_PER_PRINCIPAL`, is kept by the session writes themselves.)
pub trait Principals: SessionStore {
    /// A page of `principal`'s live sessions, newest first, after `after` when given: at
    /// most `limit`, maybe fewer (entries the index still holds for sessions gone or
    /// given to another principal are skipped); `next` is `None` only at the end.
    fn list(
        &self,
        principal: &Principal,
        limit: usize,
        after: Option<ListingPosition>,
    ) -> impl Future<Output = Result<PrincipalPage, StoreError>> + Send;

    /// Removes the live session `id` of `principal` (with the django codec, leaving a
    /// tombstone); not found when the principal has no live session of that handle,
    /// misdirected when it is another region's.
    fn revoke(
        &self,
        principal: &Principal,
        id: &SessionHandle,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every session `principal` had by now, but `except` (the caller's own):
    /// once this answers, none of them is served again, even one the index does not
    /// list yet. Sessions that get the principal later are not revoked. When the
    /// deadline comes first the answer is incomplete; a later call revokes what its own
    /// time covers. `except` another region's session is misdirected: only its home
    /// spares it.
    fn revoke_all(
        &self,
        principal: &Principal,
        except: Option<&SessionKey>,
    ) -> impl Future<Output = Result<Revocation, StoreError>> + Send;
}

/// The upkeep: what the cleanup function asks of the table, the backfill Scan's pages
/// and writes, and the stream upkeep's settlement of what the Django backend wrote.
pub trait Upkeep: Send + Sync {
    /// One page of segment `segment` of `segments` of the Scan for items that are
    /// expired or have no expiry, at most `limit` items, after `cursor`.
    fn expired_page(
        &self,
        segment: u32,
        segments: u32,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// What the Scan and the stream upkeep need of an item; `None` for one that is no
    /// session.
    fn sweep_candidate(&self, item: &Item) -> Option<Candidate>;

    /// The user Django's signed data names, when the codec reads one there.
    fn user_in(&self, raw: &str) -> Option<Principal>;

    /// Deletes the session only if it is still expired.
    fn delete_expired(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stamps an expiry, and the rule it follows, on an item that still has none.
    fn stamp_expiry(
        &self,
        key: &SessionKey,
        at: Timestamp,
        rule: Expiry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a tombstone the Django backend wrote onto, while it is still one.
    fn remove_tombstone(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the Scan's lease for `holder` until `until`; `false` while another holds it.
    fn take_lease(
        &self,
        holder: &str,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease back, if `holder` still holds it.
    fn give_back_lease(&self, holder: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Where an unfinished Scan stopped: its segment count and each segment's position.
    #[allow(clippy::type_complexity)]
    fn checkpoint(
        &self,
    ) -> impl Future<Output = Result<Option<(Option<u32>, Vec<Position>)>, StoreError>> + Send;

    /// Saves where each segment stopped; when all are done, removes the checkpoint.
    fn save_checkpoint(
        &self,
        positions: &[Position],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stamps an item of the Django backend and gives it the principal its data names,
    /// as decided on one stream record (see [`BackendWrite`]).
    fn settle_backend_write(
        &self,
        key: &SessionKey,
        w: BackendWrite<'_>,
    ) -> impl Future<Output = Result<BackendOutcome, StoreError>> + Send;

    /// Walks `principal`'s sessions of this region that its watermark covers and
    /// removes them, as a revocation's walk does, without writing the watermark: what
    /// protects readers that never read the watermark (a Django site reading the table),
    /// for what the revocation's own walk could not reach (sessions of another region,
    /// one the index did not list yet). `None` when the principal has no watermark.
    fn walk_watermark(
        &self,
        principal: &Principal,
    ) -> impl Future<Output = Result<Option<WatermarkWalk>, StoreError>> + Send;
}

/// What the upkeep's walk of a watermark did (see [`Upkeep::walk_watermark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkWalk {
    /// The watermark's time, epoch milliseconds.
    pub before: i64,
    /// Sessions the walk removed.
    pub revoked: u64,
    /// `false` when the deadline cut the walk short.
    pub complete: bool,
}

/// A caller who expected the session (`If-Match`) is told its demand failed, not that
/// the session is missing: RFC 9110 answers any failed `If-Match` with 412.
fn missing_is_unmet(e: StoreError, expected: Option<Expected>) -> StoreError {
    match e {
        StoreError::NotFound if expected.is_some() => StoreError::VersionConflict,
        other => other,
    }
}

fn new_key() -> Result<SessionKey, StoreError> {
    SessionKey::generate()
        .map_err(|e| StoreError::Other(format!("no randomness for a session key: {e}")))
}
