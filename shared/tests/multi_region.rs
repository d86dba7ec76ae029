//! Two regions of a global table in multi-Region eventual consistency (MREC), simulated
//! deterministically: each region is the store on a table of its own in Dynoxide (the
//! tests' DynamoDB, in process), on its own clock, and a replicator carries every item
//! a region writes to the other one, late and in any order, where it is applied if its
//! write time is later than that of the item there: last writer wins, as DynamoDB
//! resolves conflicts. Conditions are checked only in the region that receives a write.
//!
//! docs/multi-region.md says what holds and what weakens. Property tests run random
//! interleavings of the API's operations and of replication, then let replication
//! finish, and check the claims that hold: with every write of a session made in its
//! home region, the regions converge on exactly what the home region holds, nothing
//! deleted or revoked is served again, and no update is lost. The tests after them show
//! by example each guarantee the document says weakens, and where.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use serde_json::json;
use session_store::item::{Item, View};
use session_store::{
    Clock, DynamoStore, EntityTag, Expected, Expiry, ManualClock, Principal, Principals,
    SessionData, SessionKey, SessionStore, StoreConfig, StoreError, Timestamp,
};
use testkit::{START, data};

/// The two regions, by index.
const REGIONS: usize = 2;

/// When a write happened, for last-writer-wins: the writing region's clock in
/// milliseconds (made strictly increasing per region), then the region to break ties.
type Stamp = (i64, usize);

/// One item on its way to the other region: its state after a write (`None`: deleted).
#[derive(Debug, Clone)]
struct Replicated {
    key: String,
    item: Option<Stored>,
    stamp: Stamp,
}

/// An item as the emulator stores it: what replication reads and writes, below the API.
type Stored = dynoxide::Item;

struct Region {
    store: DynamoStore,
    /// The region's table, reached through the emulator's library: what replication
    /// reads and writes.
    db: dynoxide::Database,
    /// The same table through the SDK, to read an item as the store does.
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: ManualClock,
    /// The write time of each key's item as this region holds it, kept after a delete
    /// too, as DynamoDB keeps a deleted item's time to resolve a late write against it.
    stamps: HashMap<String, Stamp>,
    last_ms: i64,
}

/// Two regions and the replication between them.
struct World {
    regions: Vec<Region>,
    /// Items on their way to each region, in the order written; delivered in any order.
    inbound: Vec<Vec<Replicated>>,
}

/// The emulator every history runs on: a Dynoxide of this test binary's own, in
/// process, whatever `AWS_ENDPOINT_URL_DYNAMODB` names, since replication reaches its
/// tables through its library.
fn emulator() -> &'static testkit::emulator::Server {
    static SERVER: std::sync::OnceLock<testkit::emulator::Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| testkit::emulator::serve_memory().expect("an in-process Dynoxide"))
}

fn session_key(key: &str) -> HashMap<String, dynoxide::AttributeValue> {
    HashMap::from([(
        "session_key".to_owned(),
        dynoxide::AttributeValue::S(key.to_owned()),
    )])
}

impl Region {
    /// A region on a fresh table made from template.yaml.
    fn new(name: String, config: StoreConfig, clock: ManualClock) -> Self {
        let server = emulator();
        let client = testkit::client_at(&server.url, &testkit::RequestCounter::default());
        run(testkit::TableSpec::of_workspace()
            .expect("template.yaml defines the table")
            .create(&client, &name))
        .expect("a table");
        let config = StoreConfig {
            table_name: name.clone(),
            ..config
        };
        let store = DynamoStore::new(client.clone(), config)
            .expect("default settings")
            .with_clock(Arc::new(clock.clone()));
        Self {
            store,
            db: server.db.clone(),
            client,
            table: name,
            clock,
            stamps: HashMap::new(),
            last_ms: 0,
        }
    }

    /// Every item of the region's table, by key.
    fn snapshot(&self) -> BTreeMap<String, Stored> {
        let mut items = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .db
                .scan(dynoxide::actions::scan::ScanRequest {
                    table_name: self.table.clone(),
                    consistent_read: Some(true),
                    exclusive_start_key: start,
                    ..Default::default()
                })
                .expect("a Scan");
            for item in page.items.unwrap_or_default() {
                if let Some(dynoxide::AttributeValue::S(k)) = item.get("session_key") {
                    items.insert(k.clone(), item);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// The item under `key`, read as the store reads it.
    fn item(&self, key: &str) -> Option<Item> {
        run(testkit::raw_item(&self.client, &self.table, key))
    }

    /// Replication's write: the item as the other region holds it, or its deletion.
    fn replicate(&self, key: &str, item: Option<Stored>) {
        match item {
            Some(item) => {
                self.db
                    .put_item(dynoxide::actions::put_item::PutItemRequest {
                        table_name: self.table.clone(),
                        item,
                        ..Default::default()
                    })
                    .expect("a replicated PutItem");
            }
            None => {
                self.db
                    .delete_item(dynoxide::actions::delete_item::DeleteItemRequest {
                        table_name: self.table.clone(),
                        key: session_key(key),
                        ..Default::default()
                    })
                    .expect("a replicated DeleteItem");
            }
        }
    }
}

/// Histories are many: each region's table goes with its history.
impl Drop for Region {
    fn drop(&mut self) {
        let _ = self
            .db
            .delete_table(dynoxide::actions::delete_table::DeleteTableRequest {
                table_name: self.table.clone(),
            });
    }
}

impl World {
    /// Two regions whose clocks read `skew_ms` apart, recording no home region.
    fn new(skew_ms: i64) -> Self {
        Self::with_homes(skew_ms, false)
    }

    /// Two regions whose clocks read `skew_ms` apart; with `homes`, each store has its
    /// region (`SESSION_REGION`), records it on the sessions it makes, and refuses to
    /// write another region's.
    fn with_homes(skew_ms: i64, homes: bool) -> Self {
        Self::configured(skew_ms, homes, |_| {})
    }

    /// [`World::with_homes`], each store's settings changed by `configure`.
    fn configured(skew_ms: i64, homes: bool, configure: impl Fn(&mut StoreConfig)) -> Self {
        let regions = (0..REGIONS)
            .map(|r| {
                let clock = ManualClock::at(Timestamp::from_epoch_seconds(START));
                if r == 1 && skew_ms > 0 {
                    clock.advance(Duration::from_millis(skew_ms.unsigned_abs()));
                }
                let mut config = StoreConfig {
                    region: homes.then(|| format!("region-{r}")),
                    ..StoreConfig::default()
                };
                configure(&mut config);
                Region::new(
                    testkit::unique_table_name(&format!("region-{r}")),
                    config,
                    clock,
                )
            })
            .collect();
        Self {
            regions,
            inbound: vec![Vec::new(); REGIONS],
        }
    }

    fn store(&self, r: usize) -> &DynamoStore {
        &self.regions[r].store
    }

    /// Runs `op` against region `r`'s store and sends every item it changed to the
    /// other region, stamped with `r`'s clock.
    fn local<T>(&mut self, r: usize, op: impl FnOnce(&DynamoStore) -> T) -> T {
        let before = self.regions[r].snapshot();
        let out = op(&self.regions[r].store);
        let after = self.regions[r].snapshot();
        let region = &mut self.regions[r];
        let changed: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for key in changed {
            // A write is stamped later than the item it overwrites, whatever the clock
            // says, or a region could keep a write that every other region discards,
            // and the replicas would never converge, as DynamoDB's do.
            let held = region.stamps.get(&key).map_or(0, |s| s.0 + 1);
            region.last_ms = region.clock.now_millis().max(region.last_ms + 1).max(held);
            let stamp = (region.last_ms, r);
            region.stamps.insert(key.clone(), stamp);
            for (other, queue) in self.inbound.iter_mut().enumerate() {
                if other != r {
                    queue.push(Replicated {
                        key: key.clone(),
                        item: after.get(&key).cloned(),
                        stamp,
                    });
                }
            }
        }
        out
    }

    /// Applies the `pick`-th item on its way to region `r` (modulo how many there are),
    /// if it was written later than what `r` holds.
    fn deliver(&mut self, r: usize, pick: usize) {
        let queue = &mut self.inbound[r];
        if queue.is_empty() {
            return;
        }
        let incoming = queue.remove(pick % queue.len());
        let region = &mut self.regions[r];
        if region
            .stamps
            .get(&incoming.key)
            .is_some_and(|held| *held >= incoming.stamp)
        {
            return;
        }
        region.stamps.insert(incoming.key.clone(), incoming.stamp);
        region.replicate(&incoming.key, incoming.item);
    }

    /// Replication catches up: everything on its way arrives.
    fn converge(&mut self) {
        for r in 0..REGIONS {
            while !self.inbound[r].is_empty() {
                self.deliver(r, 0);
            }
        }
    }

    fn tick(&self, seconds: u64) {
        for region in &self.regions {
            region.clock.advance(Duration::from_secs(seconds));
        }
    }
}

/// Runs `f` on the one runtime of this test binary, so that the clients' pooled
/// connections outlive each call.
fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime")
        })
        .block_on(f)
}

/// The home region of `alice`, her sessions and her revocations.
const ALICE_HOME: usize = 0;

fn alice() -> Principal {
    Principal::parse("alice").expect("a principal")
}

/// One step of a history.
#[derive(Debug, Clone)]
enum Step {
    /// A new session in region `region`, `alice`'s or nobody's.
    Create {
        region: usize,
        owned: bool,
    },
    /// A read of the `pick`-th session made so far, in either region.
    Read {
        region: usize,
        pick: usize,
    },
    /// A replace with `If-Match` of the version last read in the writing region.
    Replace {
        region: usize,
        pick: usize,
        n: u8,
    },
    Delete {
        region: usize,
        pick: usize,
    },
    Cycle {
        region: usize,
        pick: usize,
    },
    /// Logging `alice` out everywhere.
    RevokeAll {
        region: usize,
    },
    /// The `pick`-th item on its way to `region` arrives.
    Deliver {
        region: usize,
        pick: usize,
    },
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    let region = 0..REGIONS;
    let pick = 0..16usize;
    prop_oneof![
        3 => (region.clone(), any::<bool>()).prop_map(|(region, owned)| Step::Create { region, owned }),
        2 => (region.clone(), pick.clone()).prop_map(|(region, pick)| Step::Read { region, pick }),
        3 => (region.clone(), pick.clone(), any::<u8>())
            .prop_map(|(region, pick, n)| Step::Replace { region, pick, n }),
        1 => (region.clone(), pick.clone()).prop_map(|(region, pick)| Step::Delete { region, pick }),
        1 => (region.clone(), pick.clone()).prop_map(|(region, pick)| Step::Cycle { region, pick }),
        1 => region.clone().prop_map(|region| Step::RevokeAll { region }),
        6 => (region, pick).prop_map(|(region, pick)| Step::Deliver { region, pick }),
        1 => Just(Step::Tick),
    ]
}

/// What the history did, as the home regions saw it.
#[derive(Default)]
struct Record {
    /// Every session made, in order, with its home region.
    sessions: Vec<(SessionKey, usize)>,
    /// Sessions removed by a delete, a cycle (the old key) or a revocation.
    removed: HashSet<SessionKey>,
    /// The data of each session's last successful write in its home region.
    last_write: HashMap<SessionKey, SessionData>,
    /// The latest revocation of `alice`'s sessions, in its region's milliseconds.
    revoked_at: Option<i64>,
}

/// Where a step's write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// To the session's home region (the region that created it; for `alice`'s
    /// sessions and revocations, her home region), whatever region the step names.
    Home,
    /// To the region the step names.
    Anywhere,
}

/// Runs `steps` with writes routed by `routing`; reads go where the step says.
fn play(mut w: World, steps: &[Step], routing: Routing) -> (World, Record) {
    let mut rec = Record::default();
    let mut read_tags: HashMap<(usize, SessionKey), EntityTag> = HashMap::new();
    for step in steps {
        let pick = |p: usize, rec: &Record| {
            (!rec.sessions.is_empty()).then(|| rec.sessions[p % rec.sessions.len()].clone())
        };
        match step.clone() {
            Step::Create { region, owned } => {
                // A user's sessions live in the user's home region, where the user's
                // revocations run too; an anonymous session's home is where it began.
                let region = if owned && routing == Routing::Home {
                    ALICE_HOME
                } else {
                    region
                };
                let principal = owned.then(alice);
                let s = w
                    .local(region, |st| {
                        run(st.create_owned(data(json!({"n": 0})), Expiry::Default, principal))
                    })
                    .expect("a create");
                rec.last_write.insert(s.key.clone(), s.data.clone());
                rec.sessions.push((s.key, region));
            }
            Step::Read { region, pick: p } => {
                if let Some((key, _)) = pick(p, &rec)
                    && let Ok(s) = run(w.store(region).load(&key))
                {
                    read_tags.insert((region, key), s.meta.tag());
                }
            }
            Step::Replace { region, pick: p, n } => {
                let Some((key, home)) = pick(p, &rec) else {
                    continue;
                };
                let home = route(routing, home, region);
                let expected = read_tags
                    .get(&(home, key.clone()))
                    .cloned()
                    .map(Expected::Tag);
                let new = data(json!({ "n": n }));
                let written = w.local(home, |st| {
                    run(st.replace(&key, new.clone(), Expiry::Default, expected))
                });
                if let Ok(s) = written {
                    rec.last_write.insert(key.clone(), new);
                    read_tags.insert((home, key), s.meta.tag());
                }
            }
            Step::Delete { region, pick: p } => {
                let Some((key, home)) = pick(p, &rec) else {
                    continue;
                };
                let home = route(routing, home, region);
                // A delete where the session has not arrived finds nothing to remove, and
                // answers as deletes of a missing key do (see the example below).
                let held = w.regions[home].item(key.as_str()).is_some();
                if w.local(home, |st| run(st.delete(&key, None))).is_ok() && held {
                    rec.removed.insert(key);
                }
            }
            Step::Cycle { region, pick: p } => {
                let Some((key, home)) = pick(p, &rec) else {
                    continue;
                };
                let home = route(routing, home, region);
                if let Ok(s) = w.local(home, |st| run(st.cycle(&key, None))) {
                    rec.removed.insert(key.clone());
                    if let Some(d) = rec.last_write.get(&key).cloned() {
                        rec.last_write.insert(s.key.clone(), d);
                    }
                    rec.sessions.push((s.key, home));
                }
            }
            Step::RevokeAll { region } => {
                let home = route(routing, ALICE_HOME, region);
                let at = w.regions[home].clock.now_millis();
                w.local(home, |st| run(st.revoke_all(&alice(), None)))
                    .expect("a revocation");
                rec.revoked_at = Some(at);
            }
            Step::Deliver { region, pick } => w.deliver(region, pick),
            Step::Tick => w.tick(1),
        }
    }
    (w, rec)
}

/// The region a write goes to: the home, or the one the step names.
fn route(routing: Routing, home: usize, named: usize) -> usize {
    match routing {
        Routing::Home => home,
        Routing::Anywhere => named,
    }
}

/// Histories per property: 20 keep the simulation under 10 s on two cores (each step
/// is a real request to the emulator); `SIMULATION_CASES` asks for more.
fn config() -> Config {
    let cases = std::env::var("SIMULATION_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    Config {
        cases,
        // The same histories on every run: a failure is reproduced by running again.
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x5e55_1075),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// With every write in its session's home region, the regions converge on what
    /// each home region holds, item for item.
    #[test]
    fn home_routed_regions_converge_on_what_each_home_holds(
        steps in prop::collection::vec(step(), 1..60),
        skew_ms in 0i64..2_000,
    ) {
        let (mut w, rec) = play(World::new(skew_ms), &steps, Routing::Home);
        let homes: HashMap<&SessionKey, usize> =
            rec.sessions.iter().map(|(k, r)| (k, *r)).collect();
        let before: Vec<BTreeMap<String, Stored>> =
            (0..REGIONS).map(|r| w.regions[r].snapshot()).collect();
        w.converge();
        let after: Vec<BTreeMap<String, Stored>> =
            (0..REGIONS).map(|r| w.regions[r].snapshot()).collect();
        prop_assert_eq!(&after[0], &after[1]);
        for (key, home) in &homes {
            prop_assert_eq!(after[0].get(key.as_str()), before[*home].get(key.as_str()));
        }
    }

    /// Writing anywhere, the regions still converge: on the last writer of each item.
    #[test]
    fn regions_written_anywhere_converge_on_the_last_writer_of_each_item(
        steps in prop::collection::vec(step(), 1..60),
        skew_ms in 0i64..2_000,
    ) {
        let (mut w, _) = play(World::new(skew_ms), &steps, Routing::Anywhere);
        w.converge();
        prop_assert_eq!(w.regions[0].snapshot(), w.regions[1].snapshot());
    }

    /// Once replication has caught up, in either region: a removed session is never
    /// served, each session serves its home region's last write (no update lost), no
    /// session of `alice` that had her by her last revocation is served, and a key
    /// never made is unknown.
    #[test]
    fn home_routed_guarantees_hold_in_every_region_once_replication_catches_up(
        steps in prop::collection::vec(step(), 1..60),
        skew_ms in 0i64..2_000,
    ) {
        let (mut w, rec) = play(World::new(skew_ms), &steps, Routing::Home);
        w.converge();
        guarantees_hold(&w, &rec)?;
    }

    /// With each store recording its region and refusing another's sessions, writes
    /// sent to either region keep every guarantee: a write outside a session's home is
    /// refused, so only the home writes it.
    #[test]
    fn with_homes_recorded_writes_sent_anywhere_keep_the_guarantees(
        steps in prop::collection::vec(step(), 1..60),
        skew_ms in 0i64..2_000,
    ) {
        let (mut w, rec) = play(World::with_homes(skew_ms, true), &steps, Routing::Anywhere);
        w.converge();
        guarantees_hold(&w, &rec)?;
    }
}

/// Once replication has caught up, in either region: a removed session is never served,
/// each session serves its last write (no update lost), no session of `alice` that had
/// her by her last revocation is served, and a key never made is unknown to reads and
/// writes.
fn guarantees_hold(w: &World, rec: &Record) -> Result<(), TestCaseError> {
    for r in 0..REGIONS {
        let store = w.store(r);
        for (key, _) in &rec.sessions {
            let served = run(store.load(key));
            if rec.removed.contains(key) {
                prop_assert!(
                    matches!(served, Err(StoreError::NotFound)),
                    "{key:?} came back"
                );
                continue;
            }
            let Ok(s) = served else { continue };
            prop_assert_eq!(Some(&s.data), rec.last_write.get(key));
            if let (Some(at), Some(_)) = (rec.revoked_at, &s.principal) {
                let item = w.regions[r].item(key.as_str()).expect("a served item");
                prop_assert!(View(&item).principal_since().unwrap_or(0) > at);
            }
        }
        let unknown = SessionKey::generate().expect("a key");
        prop_assert!(matches!(
            run(store.load(&unknown)),
            Err(StoreError::NotFound)
        ));
        let write = run(store.replace(&unknown, SessionData::new(), Expiry::Default, None));
        prop_assert!(matches!(write, Err(StoreError::NotFound)));
        prop_assert!(
            w.regions[r].item(unknown.as_str()).is_none(),
            "a write adopted an unknown key"
        );
    }
    Ok(())
}

/// Region 0 and region 1 on the same clock, with one session made in region 0 and
/// replicated.
fn one_session_everywhere() -> (World, session_store::Session) {
    let mut w = World::new(0);
    let s = w
        .local(0, |st| {
            run(st.create(data(json!({"n": 0})), Expiry::Default))
        })
        .expect("a create");
    w.converge();
    (w, s)
}

/// The data each region serves for `key`.
fn served(w: &World, key: &SessionKey) -> Vec<SessionData> {
    (0..REGIONS)
        .map(|r| run(w.store(r).load(key)).expect("served").data)
        .collect()
}

#[test]
fn writing_anywhere_loses_an_update_that_if_match_would_have_refused() {
    let (mut w, s) = one_session_everywhere();
    let tag = |w: &World, r| run(w.store(r).load(&s.key)).unwrap().meta.tag();
    let (in_0, in_1) = (tag(&w, 0), tag(&w, 1));
    assert_eq!(in_0, in_1, "both regions read the same version");
    // Each region checks If-Match against its own copy, and both pass.
    let put = |n: i64, t: EntityTag| {
        let key = &s.key;
        move |st: &DynamoStore| {
            run(st.replace(
                key,
                data(json!({"n": n})),
                Expiry::Default,
                Some(Expected::Tag(t)),
            ))
        }
    };
    w.local(0, put(1, in_0)).unwrap();
    w.tick(1);
    w.local(1, put(2, in_1)).unwrap();
    w.converge();
    assert_eq!(
        served(&w, &s.key),
        [data(json!({"n": 2})), data(json!({"n": 2}))],
        "the later write wins everywhere; the first one's update is lost"
    );
}

#[test]
fn writing_anywhere_can_bring_back_a_deleted_session() {
    let (mut w, s) = one_session_everywhere();
    w.local(0, |st| run(st.delete(&s.key, None))).unwrap();
    w.tick(1);
    // Region 1 has not seen the delete: its write is later, and wins.
    w.local(1, |st| {
        run(st.replace(&s.key, data(json!({"n": 9})), Expiry::Default, None))
    })
    .unwrap();
    w.converge();
    assert_eq!(
        served(&w, &s.key),
        [data(json!({"n": 9})), data(json!({"n": 9}))],
        "resurrected in both regions"
    );
}

#[test]
fn a_cycle_reaches_the_other_region_one_item_at_a_time() {
    let (mut w, s) = one_session_everywhere();
    let moved = w.local(0, |st| run(st.cycle(&s.key, None))).unwrap();
    let serves = |w: &World, k: &SessionKey| run(w.store(1).load(k)).is_ok();
    // The two writes of the transaction travel separately: here the new key first.
    let new_first = w.inbound[1]
        .iter()
        .position(|x| x.key == moved.key.as_str())
        .unwrap();
    w.deliver(1, new_first);
    assert!(
        serves(&w, &s.key) && serves(&w, &moved.key),
        "for a moment region 1 serves both keys"
    );
    w.converge();
    assert!(!serves(&w, &s.key) && serves(&w, &moved.key));
}

#[test]
fn another_region_serves_a_revoked_session_until_the_watermark_arrives() {
    let mut w = World::new(0);
    let s = w
        .local(0, |st| {
            run(st.create_owned(SessionData::new(), Expiry::Default, Some(alice())))
        })
        .unwrap();
    w.converge();
    w.tick(1);
    w.local(0, |st| run(st.revoke_all(&alice(), None))).unwrap();
    assert!(run(w.store(0).load(&s.key)).is_err());
    assert!(
        run(w.store(1).load(&s.key)).is_ok(),
        "region 1 has neither the removal nor the watermark yet"
    );
    // The watermark alone is enough: it covers the session before its removal arrives.
    let mark = w.inbound[1]
        .iter()
        .position(|x| x.key.starts_with(session_store::item::WATERMARK_PREFIX))
        .unwrap();
    w.deliver(1, mark);
    assert!(run(w.store(1).load(&s.key)).is_err());
    w.converge();
    assert!(run(w.store(1).load(&s.key)).is_err());
}

#[test]
fn a_later_clock_wins_a_conflict_whatever_happened_first() {
    // Region 1's clock runs 5 s ahead: its write wins over one that region 0 makes after
    // it, before replication, since region 0's clock stamps that one earlier.
    let mut w = World::new(5_000);
    let s = w
        .local(0, |st| {
            run(st.create(data(json!({"n": 0})), Expiry::Default))
        })
        .unwrap();
    w.converge();
    w.local(1, |st| {
        run(st.replace(&s.key, data(json!({"n": 1})), Expiry::Default, None))
    })
    .unwrap();
    w.local(0, |st| {
        run(st.replace(
            &s.key,
            data(json!({"n": 0, "later": true})),
            Expiry::Default,
            None,
        ))
    })
    .unwrap();
    w.converge();
    assert_eq!(
        run(w.store(0).load(&s.key)).unwrap().data,
        data(json!({"n": 1}))
    );
}

#[test]
fn a_region_whose_clock_runs_ahead_keeps_a_login_that_a_revocation_should_have_covered() {
    let revoke_after_login = |skew_ms| {
        let mut w = World::new(skew_ms);
        let s = w
            .local(1, |st| {
                run(st.create_owned(SessionData::new(), Expiry::Default, Some(alice())))
            })
            .unwrap();
        w.tick(1);
        w.local(0, |st| run(st.revoke_all(&alice(), None))).unwrap();
        w.converge();
        (0..REGIONS)
            .map(|r| run(w.store(r).load(&s.key)).is_ok())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        revoke_after_login(0),
        [false, false],
        "same clocks: revoked"
    );
    assert_eq!(
        revoke_after_login(2_000),
        [true, true],
        "region 1 two seconds ahead: its login reads as later than the revocation"
    );
}

#[test]
fn a_session_expires_in_every_region_at_once_whatever_has_replicated() {
    let mut w = World::new(0);
    let s = w
        .local(0, |st| {
            run(st.create(SessionData::new(), Expiry::IdleFor(Duration::from_secs(60))))
        })
        .unwrap();
    w.converge();
    // A touch in region 0 that region 1 has not seen yet moves the expiry there only.
    w.tick(30);
    w.local(0, |st| run(st.touch(&s.key, None))).unwrap();
    w.tick(31);
    assert!(
        run(w.store(0).load(&s.key)).is_ok(),
        "refreshed in region 0"
    );
    assert!(
        run(w.store(1).load(&s.key)).is_err(),
        "expired in region 1, by its own copy's expiry, before any TTL delete"
    );
    w.converge();
    assert!(run(w.store(1).load(&s.key)).is_ok(), "the refresh arrived");
    w.tick(61);
    for r in 0..REGIONS {
        assert!(
            run(w.store(r).load(&s.key)).is_err(),
            "expired in region {r}"
        );
    }
}

#[test]
fn a_delete_sent_where_the_session_has_not_arrived_yet_removes_nothing() {
    let mut w = World::with_homes(0, true);
    let s = w
        .local(0, |st| {
            run(st.create(data(json!({"n": 0})), Expiry::Default))
        })
        .unwrap();
    // Region 1 has not received the session: it cannot know its home, and a delete
    // without If-Match of a key it does not hold succeeds, as such deletes do.
    assert!(w.local(1, |st| run(st.delete(&s.key, None))).is_ok());
    assert!(matches!(
        w.local(1, |st| run(st.delete(&s.key, Some(Expected::Exists)))),
        Err(StoreError::NotFound | StoreError::VersionConflict)
    ));
    w.converge();
    assert_eq!(
        served(&w, &s.key),
        [data(json!({"n": 0})), data(json!({"n": 0}))]
    );
    // Once it has arrived, region 1 refuses the delete and names the home.
    assert!(matches!(
        w.local(1, |st| run(st.delete(&s.key, None))),
        Err(StoreError::Misdirected { home }) if home == "region-0"
    ));
}

#[test]
fn with_a_cap_each_region_counts_its_own_sessions_and_keeps_the_others_count() {
    // A cap of one session: a login in region 0, one in region 1, another in region 0.
    let mut w = World::configured(0, true, |c| c.max_per_principal = Some(1));
    let log_in = |w: &mut World, r: usize| {
        let s = w.local(r, |st| {
            run(st.create_owned(SessionData::new(), Expiry::Default, Some(alice())))
        });
        w.converge();
        w.tick(1);
        s.unwrap().key
    };
    let first = log_in(&mut w, 0);
    let elsewhere = log_in(&mut w, 1);
    let second = log_in(&mut w, 0);
    for r in 0..REGIONS {
        assert!(
            run(w.store(r).load(&first)).is_err(),
            "region {r}: the second login in region 0 evicts the first"
        );
        assert!(run(w.store(r).load(&second)).is_ok(), "region {r}");
        assert!(
            run(w.store(r).load(&elsewhere)).is_ok(),
            "region {r}: region 1's own session, within its count"
        );
    }
    // Region 1 counts its own: its next login evicts its first.
    let again = log_in(&mut w, 1);
    for r in 0..REGIONS {
        assert!(run(w.store(r).load(&elsewhere)).is_err(), "region {r}");
        assert!(run(w.store(r).load(&again)).is_ok(), "region {r}");
        assert!(run(w.store(r).load(&second)).is_ok(), "region {r}");
    }
}

#[test]
fn a_revocation_of_or_sparing_another_regions_session_is_refused_with_its_home() {
    let mut w = World::with_homes(0, true);
    let log_in = |w: &mut World, r: usize| {
        w.local(r, |st| {
            run(st.create_owned(SessionData::new(), Expiry::Default, Some(alice())))
        })
        .unwrap()
        .key
    };
    let mine = log_in(&mut w, 1);
    let other = log_in(&mut w, 0);
    w.converge();
    w.tick(1);
    // Region 0 cannot spare region 1's session: it names region 1 and revokes nothing.
    assert!(matches!(
        w.local(0, |st| run(st.revoke_all(&alice(), Some(&mine)))),
        Err(StoreError::Misdirected { home }) if home == "region-1"
    ));
    w.converge();
    for r in 0..REGIONS {
        assert!(run(w.store(r).load(&mine)).is_ok(), "region {r}");
        assert!(run(w.store(r).load(&other)).is_ok(), "region {r}");
    }
    // Revoking one session of region 0 from region 1 is refused the same way.
    let handle = session_store::SessionHandle::of(&other);
    assert!(matches!(
        w.local(1, |st| run(st.revoke(&alice(), &handle))),
        Err(StoreError::Misdirected { home }) if home == "region-0"
    ));
    // Sent to its home, the call spares it and revokes the other everywhere.
    let done = w.local(1, |st| run(st.revoke_all(&alice(), Some(&mine))));
    assert!(done.is_ok_and(|d| d.complete));
    w.converge();
    for r in 0..REGIONS {
        assert!(run(w.store(r).load(&mine)).is_ok(), "region {r}: spared");
        assert!(run(w.store(r).load(&other)).is_err(), "region {r}: revoked");
    }
}
