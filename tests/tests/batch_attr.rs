//! Issue 24: `#[cached(batch)]`, a function that loads many keys at once: its body runs once
//! with exactly the keys that missed, and the others come from its cache; on the build's
//! default backend (memory, or Redis with the `redis` feature).

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

static ASKED: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());

/// The users that exist (even ids), loaded many at once.
#[cached(batch, ttl = 60, name = "batch-attr-users")]
fn users(ids: &[u64]) -> HashMap<u64, String> {
    let mut asked = ids.to_vec();
    asked.sort_unstable();
    ASKED.lock().unwrap().push(asked);
    ids.iter()
        .filter(|&&id| id % 2 == 0)
        .map(|&id| (id, format!("user {id}")))
        .collect()
}

#[test]
fn the_body_runs_once_with_the_keys_that_missed() {
    if !common::backend_ready() {
        return;
    }
    let first = users(&[1, 2, 4]);
    assert_eq!(first.len(), 2, "1 does not exist");
    let again = users(&[2, 4, 6]);
    assert_eq!(again[&6], "user 6");
    assert_eq!(
        *ASKED.lock().unwrap(),
        vec![vec![1, 2, 4], vec![6]],
        "2 and 4 were cached"
    );
    assert!(users_invalidate(&2).is_done());
    users(&[2, 4]);
    assert_eq!(ASKED.lock().unwrap().last(), Some(&vec![2]));
    assert_eq!(users_cache().stats().loads, 5);
    assert_eq!(users_uncached(&[8]).len(), 1);
}

static FALLIBLE_LOADS: AtomicU32 = AtomicU32::new(0);

/// A fallible batch: an error is returned and nothing is stored.
#[cached(batch, ttl = 60, name = "batch-attr-prices")]
async fn prices(ids: &[u32]) -> Result<HashMap<u32, u64>, String> {
    FALLIBLE_LOADS.fetch_add(1, SeqCst);
    if ids.contains(&0) {
        return Err("no price for 0".into());
    }
    Ok(ids.iter().map(|&id| (id, u64::from(id) * 100)).collect())
}

#[test]
fn an_async_fallible_batch_stores_only_its_values() {
    if !common::backend_ready() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(prices(&[0, 1]).await, Err("no price for 0".to_owned()));
        let found = prices(&[1, 2]).await.unwrap();
        assert_eq!(found, HashMap::from([(1, 100), (2, 200)]));
        prices(&[1, 2]).await.unwrap();
        assert_eq!(
            FALLIBLE_LOADS.load(SeqCst),
            2,
            "the second batch was all hits"
        );
        assert!(prices_invalidate(&1).await.is_done());
    });
}

static FOUND_LOADS: AtomicU32 = AtomicU32::new(0);

/// `Option` values: a `None` is a null (cached for `null_ttl`, default `min(ttl, 300 s)`),
/// absent from the answer, and not loaded again.
#[cached(batch, ttl = 60, name = "batch-attr-found")]
fn found(ids: &[u64]) -> HashMap<u64, Option<u64>> {
    FOUND_LOADS.fetch_add(1, SeqCst);
    ids.iter().map(|&id| (id, (id > 0).then_some(id))).collect()
}

#[test]
fn a_batch_of_option_values_caches_none_as_a_null() {
    if !common::backend_ready() {
        return;
    }
    let first = found(&[0, 1]);
    assert_eq!(first.get(&1), Some(&Some(1)));
    assert_eq!(first.get(&0), None, "a null is absent from the answer");
    found(&[0, 1]);
    assert_eq!(FOUND_LOADS.load(SeqCst), 1, "the null was not cached");
    assert_eq!(found_cache().stats().null_hits, 1);
}
