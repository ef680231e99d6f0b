//! Issue 24: batch loads of a `Cache` on every backend (memory always; Redis and tiered with
//! the `redis` feature and a server): one call of the loader with exactly the keys that
//! missed; a key another caller (single or batch) is loading is waited for, never loaded
//! twice; batches that share keys never wait for each other in a circle; keys left out.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::{Backend, Cache};
use common::{Gate, wait_until, within};

fn cache<V: cache_runtime::CacheValue>(test: &str, backend: Backend) -> &'static Cache<u64, V> {
    let cache = Cache::builder(format!("cb-{test}-{backend:?}"))
        .ttl(Duration::from_secs(300))
        .max_entries(100_000)
        .backend(backend)
        .build()
        .expect("valid settings");
    Box::leak(Box::new(cache))
}

/// The loader's calls: the keys of each, sorted.
#[derive(Default)]
struct Calls(Mutex<Vec<Vec<u64>>>);

impl Calls {
    fn load(&self, keys: &[u64]) -> HashMap<u64, u64> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        self.0.lock().unwrap().push(sorted);
        keys.iter().map(|&k| (k, k * 10)).collect()
    }

    fn all(&self) -> Vec<Vec<u64>> {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn a_thousand_keys_thirty_percent_missing_load_once_with_the_missing() {
    for backend in common::cache_backends() {
        let cache = cache::<u64>("thousand", backend);
        for k in 0..1000 {
            if k % 10 >= 3 {
                cache.insert(k, k * 10);
            }
        }
        let calls = Calls::default();
        let found = cache.get_many_or_load(0..1000, |keys| calls.load(keys));
        assert_eq!(found.len(), 1000, "{backend:?}");
        assert!(found.iter().all(|(k, v)| *v == k * 10), "{backend:?}");
        let expected: Vec<u64> = (0..1000).filter(|k| k % 10 < 3).collect();
        assert_eq!(
            calls.all(),
            vec![expected],
            "{backend:?}: one call, the 300"
        );
        let again = cache.get_many_or_load(0..1000, |keys| calls.load(keys));
        assert_eq!(again, found);
        assert_eq!(calls.all().len(), 1, "{backend:?}: the second batch loaded");
        assert_eq!(
            cache.get(&5),
            Some(50),
            "{backend:?}: a single read sees it"
        );
    }
}

#[test]
fn keys_left_out_are_absent_and_nulls_where_the_cache_has_them() {
    for backend in common::cache_backends() {
        let plain = cache::<u64>("left-out", backend);
        let loads = AtomicU32::new(0);
        let evens = |keys: &[u64]| {
            loads.fetch_add(1, SeqCst);
            keys.iter()
                .filter(|&&k| k % 2 == 0)
                .map(|&k| (k, k))
                .collect()
        };
        let found = plain.get_many_or_load([1, 2, 3, 4], evens);
        assert_eq!(found, HashMap::from([(2, 2), (4, 4)]));
        let found = plain.get_many_or_load([1, 2], evens);
        assert_eq!(found, HashMap::from([(2, 2)]));
        assert_eq!(
            loads.load(SeqCst),
            2,
            "{backend:?}: 1 is not cached, so loaded again"
        );

        let nullable: &'static Cache<u64, Option<u64>> = Box::leak(Box::new(
            Cache::builder(format!("cb-nulls-{backend:?}"))
                .ttl(Duration::from_secs(300))
                .null_ttl(Duration::from_secs(60))
                .backend(backend)
                .build()
                .unwrap(),
        ));
        let loads = AtomicU32::new(0);
        let evens = |keys: &[u64]| {
            loads.fetch_add(1, SeqCst);
            keys.iter()
                .filter(|&&k| k % 2 == 0)
                .map(|&k| (k, Some(k)))
                .collect()
        };
        let found = nullable.get_many_or_load([1, 2, 3, 4], evens);
        assert_eq!(found, HashMap::from([(2, Some(2)), (4, Some(4))]));
        let found = nullable.get_many_or_load([1, 2, 3], evens);
        assert_eq!(found, HashMap::from([(2, Some(2))]));
        assert_eq!(
            loads.load(SeqCst),
            1,
            "{backend:?}: the nulls were not cached"
        );
        assert_eq!(nullable.get_or_load(1, || Some(99)), None, "a null hit");
    }
}

#[test]
fn a_key_a_single_caller_is_loading_is_waited_for_not_loaded_again() {
    for backend in common::cache_backends() {
        let cache = cache::<u64>("single-racer", backend);
        let gate: &'static Gate = Box::leak(Box::new(Gate::new()));
        let single = std::thread::spawn(move || {
            cache.get_or_load(1, || {
                gate.arrive_and_wait();
                111
            })
        });
        gate.wait_for_arrival();
        let calls: &'static Calls = Box::leak(Box::default());
        let batch =
            std::thread::spawn(move || cache.get_many_or_load([1, 2], |keys| calls.load(keys)));
        // The batch reached the miss path of at least one of its keys.
        wait_until("the batch missed", || cache.stats().misses >= 2);
        gate.open();
        assert_eq!(single.join().unwrap(), 111);
        let found = within(move || batch.join().unwrap());
        assert_eq!(found, HashMap::from([(1, 111), (2, 20)]), "{backend:?}");
        assert_eq!(
            calls.all(),
            vec![vec![2]],
            "{backend:?}: key 1 loaded twice"
        );
    }
}

#[test]
fn racing_batches_over_the_same_keys_load_each_key_once() {
    for backend in common::cache_backends() {
        let cache = cache::<u64>("racing", backend);
        let calls: &'static Calls = Box::leak(Box::default());
        let found = within(move || {
            let threads: Vec<_> = (0..8_u64)
                .map(|t| {
                    std::thread::spawn(move || {
                        // Each batch names the keys in its own order.
                        let keys: Vec<u64> = (0..200).map(|i| (i * 7 + t * 31) % 200).collect();
                        cache.get_many_or_load(keys, |keys| calls.load(keys))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        for answer in &found {
            assert_eq!(answer.len(), 200, "{backend:?}");
        }
        let mut loaded: Vec<u64> = calls.all().into_iter().flatten().collect();
        loaded.sort_unstable();
        assert_eq!(
            loaded,
            (0..200).collect::<Vec<_>>(),
            "{backend:?}: every key loaded exactly once"
        );
    }
}

#[test]
fn a_failed_batch_load_stores_nothing() {
    for backend in common::cache_backends() {
        let cache = cache::<u64>("failed", backend);
        cache.insert(1, 10);
        let failed = cache.try_get_many_or_load([1, 2, 3], |_| Err::<HashMap<u64, u64>, _>("down"));
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get(&2), None, "{backend:?}");
        let calls = Calls::default();
        let found = cache.try_get_many_or_load([1, 2, 3], |keys| Ok::<_, ()>(calls.load(keys)));
        assert_eq!(found.unwrap().len(), 3);
        assert_eq!(calls.all(), vec![vec![2, 3]], "{backend:?}");
    }
}

#[test]
fn async_batches_from_many_tasks_load_each_key_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for backend in common::cache_backends() {
        let cache = cache::<u64>("async", backend);
        let calls: &'static Calls = Box::leak(Box::default());
        let answers = rt.block_on(async move {
            let tasks: Vec<_> = (0..16_u64)
                .map(|t| {
                    tokio::spawn(async move {
                        let keys: Vec<u64> = (0..100).map(|i| (i * 3 + t * 17) % 100).collect();
                        cache
                            .get_many_or_load_async(keys, |keys| async move {
                                tokio::task::yield_now().await;
                                calls.load(&keys)
                            })
                            .await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        assert!(answers.iter().all(|a| a.len() == 100), "{backend:?}");
        let loaded: usize = calls.all().iter().map(Vec::len).sum();
        assert_eq!(loaded, 100, "{backend:?}: every key loaded exactly once");
    }
}

/// A key whose Redis key cannot be written (its serde fails) has no read of its own: the
/// keys after it in the batch still get their own reads (a key never answers with another's).
#[cfg(feature = "redis")]
#[test]
fn a_key_that_does_not_render_takes_no_other_keys_read() {
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Id(u64);
    impl serde::Serialize for Id {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                13 => Err(serde::ser::Error::custom("13 has no key")),
                n => s.serialize_u64(n),
            }
        }
    }
    if !common::backend_ready() {
        return;
    }
    for backend in [Backend::Redis, Backend::Tiered] {
        let name = format!("cb-unrendered-{backend:?}");
        let cache: Cache<Id, u64> = Cache::builder(name.as_str())
            .ttl(Duration::from_secs(300))
            .backend(backend)
            .build()
            .unwrap();
        cache.insert(Id(12), 120);
        cache.insert(Id(14), 140);
        // Redis holds 140 for 14 while this process's own copies (fallback, L1) say 999: a key
        // that lost its read would answer from them, or load (`k * 10 + 1`).
        let key = format!("t{}:{name}:[14]", std::process::id());
        let url = tests::redis_server::url().expect("ready");
        let mut raw = tests::redis_server::raw(url);
        let bytes: Vec<u8> = redis::Commands::get(&mut raw, &key).unwrap();
        cache.insert(Id(14), 999);
        let () = redis::Commands::set(&mut raw, &key, bytes).unwrap();
        let found = cache.get_many_or_load([Id(12), Id(13), Id(14)], |keys| {
            keys.iter().map(|k| (k.clone(), k.0 * 10 + 1)).collect()
        });
        assert_eq!(found.get(&Id(12)), Some(&120), "{backend:?}");
        assert_eq!(
            found.get(&Id(14)),
            Some(&140),
            "{backend:?}: 14 lost its read"
        );
        assert_eq!(
            found.get(&Id(13)),
            Some(&131),
            "{backend:?}: 13 took another key's value"
        );
    }
}
