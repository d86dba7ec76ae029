//! Revoking every session of one principal: 1,000 sessions made through the store, as
//! the API's `POST /sessions` with a principal makes them, then one `revoke_all`, timed
//! against the emulator, with its DynamoDB requests counted by operation and the read
//! and write units they consume by DynamoDB's billing rules, from the sizes of the items
//! and index entries the run wrote (the emulator reports no consumed capacity).

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use session_store::item::{Item, PRINCIPAL, PRINCIPAL_POSITION};
use session_store::{DynamoStore, Expiry, Principal, Principals, SessionStore, StoreConfig};
use testkit::RequestCounter;

use crate::figures::{Error, Stats};
use crate::fixture::Bench;

pub const SESSIONS: usize = 1_000;
/// Sessions of the revocation that runs to completion through 202s.
pub const MANY: usize = 5_000;
/// What each call of it may spend: the API function's timeout (10 s) less the margin the
/// API keeps for its answer (0.5 s).
const CALL_BUDGET: std::time::Duration = std::time::Duration::from_millis(9_500);
/// Creates in flight at once while the sessions are made (not measured).
const CONCURRENCY: usize = 16;

/// DynamoDB's size of an attribute value in bytes: strings by their UTF-8 length,
/// numbers at one byte per two significant digits plus one, booleans one byte.
fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + value_bytes(i)).sum::<usize>(),
        _ => 0,
    }
}

/// An item's size as DynamoDB bills it: every attribute's name and value.
pub fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_bytes(v))
        .sum()
}

/// One index entry of a keys-only index: the table's key and the index's keys.
fn entry_bytes(item: &Item, key_attribute: &str) -> usize {
    item.iter()
        .filter(|(name, _)| [key_attribute, PRINCIPAL, PRINCIPAL_POSITION].contains(&name.as_str()))
        .map(|(name, v)| name.len() + value_bytes(v))
        .sum()
}

/// Units one revocation consumed: `requests` by operation, every session removed.
/// Reads: the watermark's consistent GetItem (1 unit per 4 KB, at least 1); each Query
/// page half a unit per 4 KB of the entries it returns, at least half a unit; each
/// session its consistent BatchGetItem reads, 1 unit per 4 KB of the item. Writes: the
/// watermark's PutItems and each removal at 1 unit per KB of the item, and each removal
/// one more for the index entry it deletes (an entry under 1 KB).
fn units(requests: &BTreeMap<String, u64>, item: usize, entry: usize, removed: u64) -> (f64, f64) {
    let get = requests.get("GetItem").copied().unwrap_or(0) as f64;
    let batch_reads = if requests.contains_key("BatchGetItem") {
        removed as f64 * item.div_ceil(4096).max(1) as f64
    } else {
        0.0
    };
    let queries = requests.get("Query").copied().unwrap_or(0);
    let puts = requests.get("PutItem").copied().unwrap_or(0) as f64;
    let removals = (requests.get("DeleteItem").copied().unwrap_or(0)
        + requests.get("UpdateItem").copied().unwrap_or(0)) as f64;
    let mut entries_left = removed as usize;
    let mut query_units = 0.0;
    for _ in 0..queries {
        let page = entries_left.min(100);
        entries_left -= page;
        query_units += ((page * entry).div_ceil(4096)).max(1) as f64 * 0.5;
    }
    let reads = get * 1.0 + query_units + batch_reads;
    let per_item = item.div_ceil(1024).max(1) as f64;
    let writes = puts + removals * per_item + removed as f64;
    (reads, writes)
}

/// `count` sessions of `principal`, made through the store as the API makes them.
async fn owned_sessions(
    store: &DynamoStore,
    principal: &Principal,
    count: usize,
) -> Result<Vec<session_store::Session>, Error> {
    let data = serde_json::Map::from_iter([("cart".to_owned(), json!(["book"]))]);
    Ok(futures::stream::iter(0..count)
        .map(|_| store.create_owned(data.clone(), Expiry::Default, Some(principal.clone())))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?)
}

/// [`MANY`] sessions revoked by calls that each stop at the API's deadline and answer
/// 202, as a client that calls again after each 202 sees it: the calls, what each
/// removed, the requests, and the time from the first call to the last answer.
async fn through_202s() -> Result<Value, Error> {
    let counter = RequestCounter::default();
    let (client, table) = Bench::table_alone("revoke-many", &counter).await?;
    let config = StoreConfig {
        table_name: table.clone(),
        ..StoreConfig::default()
    };
    let store = DynamoStore::new(client.clone(), config)?;
    let principal = Principal::parse("bench-user").map_err(|e| e.to_string())?;
    owned_sessions(&store, &principal, MANY).await?;
    counter.reset();
    let started = Instant::now();
    let mut per_call = Vec::new();
    loop {
        let call = store.until(Instant::now() + CALL_BUDGET);
        let done = call.revoke_all(&principal, None).await?;
        per_call.push(done.revoked);
        if done.complete {
            break;
        }
        if per_call.len() > 20 {
            return Err("the revocation did not complete in 20 calls".into());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = counter.snapshot();
    if per_call.iter().sum::<u64>() != MANY as u64
        || testkit::item_count(&client, &table).await? != 1
    {
        return Err("sessions left after the revocation".into());
    }
    Ok(json!({
        "sessions": MANY,
        "calls": per_call.len(),
        "revoked_per_call": per_call,
        "seconds": seconds,
        "requests": requests,
        "total_requests": requests.values().sum::<u64>(),
    }))
}

pub async fn revoke_all(b: &Bench) -> Result<Value, Error> {
    let counter = RequestCounter::default();
    let mut seconds = Vec::new();
    let mut last = None;
    for _ in 0..b.runs {
        let (client, table) = Bench::table_alone("revoke", &counter).await?;
        let config = StoreConfig {
            table_name: table.clone(),
            ..StoreConfig::default()
        };
        let key_attribute = config.key_attribute.clone();
        let store = DynamoStore::new(client.clone(), config)?;
        let principal = Principal::parse("bench-user").map_err(|e| e.to_string())?;
        let created = owned_sessions(&store, &principal, SESSIONS).await?;
        let sample = testkit::raw_item(&client, &table, created[0].key.as_str())
            .await
            .ok_or("a created session is missing")?;
        counter.reset();
        let started = Instant::now();
        let done = store.revoke_all(&principal, None).await?;
        seconds.push(started.elapsed().as_secs_f64());
        if done.revoked != SESSIONS as u64 || !done.complete {
            return Err(format!("revoked {} of {SESSIONS}", done.revoked).into());
        }
        let requests = counter.snapshot();
        if testkit::item_count(&client, &table).await? != 1 {
            return Err("sessions left after the revocation (or no watermark)".into());
        }
        let (item, entry) = (item_bytes(&sample), entry_bytes(&sample, &key_attribute));
        let (reads, writes) = units(&requests, item, entry, done.revoked);
        last = Some(json!({
            "requests": requests,
            "total_requests": requests.values().sum::<u64>(),
            "read_units": reads,
            "write_units": writes,
            "item_bytes": item,
            "index_entry_bytes": entry,
        }));
    }
    let mut out = last.ok_or("no run")?;
    out["sessions"] = json!(SESSIONS);
    out["seconds"] = Stats::of(seconds).json();
    out["through_202s"] = through_202s().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(value_bytes(&AttributeValue::S("abc".into())), 3);
        // 1,796,000,000: four significant digits, two bytes, plus one.
        assert_eq!(value_bytes(&AttributeValue::N("1796000000".into())), 3);
        assert_eq!(value_bytes(&AttributeValue::N("7".into())), 2);
    }

    #[test]
    fn a_thousand_sessions_cost_two_write_units_each_and_a_few_read_units() {
        let requests = BTreeMap::from([
            ("GetItem".to_owned(), 1),
            ("PutItem".to_owned(), 2),
            ("Query".to_owned(), 11),
            ("DeleteItem".to_owned(), 1000),
        ]);
        let (reads, writes) = units(&requests, 200, 100, 1000);
        // 10 pages of 100 entries (10,000 bytes: 3 blocks of 4 KB, 1.5 units), one
        // empty page (0.5), the watermark (1).
        assert_eq!(reads, 1.0 + 10.0 * 1.5 + 0.5);
        let mut batched = requests.clone();
        batched.insert("BatchGetItem".to_owned(), 10);
        let (reads, _) = units(&batched, 200, 100, 1000);
        assert_eq!(
            reads,
            1.0 + 10.0 * 1.5 + 0.5 + 1000.0,
            "each session read once"
        );
        assert_eq!(writes, 2.0 + 1000.0 + 1000.0);
    }
}
