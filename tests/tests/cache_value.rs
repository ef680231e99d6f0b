//! Issue 24: `Cache<K, V>`, the cache as a value, on every backend (memory always; Redis and
//! tiered with the `redis` feature and a server): the same semantics as `#[cached]`:
//! single-flight under 64 threads and 64 tasks, fencing of a load by an invalidation, errors
//! never cached, nulls, write-through, reads without a load, tags, `entry_or_load`, the Redis
//! layout, and the builder's errors.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cache_runtime::{Backend, BuildError, Cache, CacheStatus, Invalidation, invalidate_tag};
use common::{Gate, wait_until, within};

/// A cache of this test and backend alone.
fn cache<V: cache_runtime::CacheValue>(test: &str, backend: Backend, ttl_s: u64) -> Cache<u64, V> {
    Cache::builder(format!("cv-{test}-{backend:?}"))
        .ttl(Duration::from_secs(ttl_s))
        .backend(backend)
        .build()
        .expect("valid settings")
}

#[test]
fn a_value_is_loaded_once_then_hit() {
    for backend in common::cache_backends() {
        let users: Cache<u64, String> = cache("once", backend, 60);
        let loads = AtomicU32::new(0);
        let load = |id: u64| {
            loads.fetch_add(1, SeqCst);
            format!("user {id}")
        };
        assert_eq!(users.get_or_load(7, || load(7)), "user 7");
        assert_eq!(users.get_or_load(7, || load(7)), "user 7");
        assert_eq!(users.get_or_load(8, || load(8)), "user 8");
        assert_eq!(loads.load(SeqCst), 2, "{backend:?}");
        let s = users.stats();
        assert_eq!((s.hits, s.misses, s.loads), (1, 2, 2), "{backend:?}");
        assert_eq!(users.handle().backend(), expected_name(backend));
        assert!(
            cache_runtime::caches()
                .iter()
                .any(|c| c.name() == format!("cv-once-{backend:?}")),
            "registered"
        );
    }
}

fn expected_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Memory => "memory",
        #[cfg(feature = "redis")]
        Backend::Redis => "redis",
        #[cfg(feature = "redis")]
        Backend::Tiered => "tiered",
        _ => "other",
    }
}

#[test]
fn sixty_four_threads_on_a_cold_key_cause_one_load() {
    for backend in common::cache_backends() {
        let cache: &'static Cache<u64, u64> = Box::leak(Box::new(cache("threads", backend, 60)));
        let loads: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let barrier = Arc::new(Barrier::new(64));
        let results = within(move || {
            let threads: Vec<_> = (0..64)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        cache.get_or_load(5, || {
                            loads.fetch_add(1, SeqCst);
                            // Hold the load until every caller has missed or waits.
                            wait_until("64 callers arrived", || {
                                let s = cache.stats();
                                s.misses + s.hits >= 64
                            });
                            50
                        })
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(results.iter().all(|&r| r == 50), "{backend:?}");
        assert_eq!(
            loads.load(SeqCst),
            1,
            "{backend:?}: one load for 64 callers"
        );
    }
}

#[test]
fn sixty_four_tasks_on_a_cold_key_cause_one_load() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for backend in common::cache_backends() {
        let cache: &'static Cache<u64, u64> = Box::leak(Box::new(cache("tasks", backend, 60)));
        let loads: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let results = rt.block_on(async move {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    tokio::spawn(async move {
                        cache
                            .get_or_load_async(9, || async move {
                                loads.fetch_add(1, SeqCst);
                                common::wait_until_async("64 callers arrived", || {
                                    let s = cache.stats();
                                    s.misses + s.hits >= 64
                                })
                                .await;
                                90
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
        assert!(results.iter().all(|&r| r == 90), "{backend:?}");
        assert_eq!(loads.load(SeqCst), 1, "{backend:?}: one load for 64 tasks");
    }
}

#[test]
fn an_invalidation_during_a_load_fences_it() {
    for backend in common::cache_backends() {
        let cache: &'static Cache<u64, u32> = Box::leak(Box::new(cache("fence", backend, 60)));
        let gate: &'static Gate = Box::leak(Box::new(Gate::new()));
        let version: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(1)));
        let slow = std::thread::spawn(move || {
            cache.get_or_load(1, || {
                let seen = version.load(SeqCst);
                gate.arrive_and_wait();
                seen
            })
        });
        gate.wait_for_arrival();
        version.store(2, SeqCst);
        assert!(cache.invalidate(&1).is_done());
        gate.open();
        assert_eq!(slow.join().unwrap(), 1, "the slow caller gets its own load");
        // The load that read version 1 started before the invalidation: never stored.
        assert_eq!(
            cache.get_or_load(1, || version.load(SeqCst)),
            2,
            "{backend:?}: a fenced load was kept"
        );
    }
}

#[test]
fn errors_are_returned_and_never_cached() {
    for backend in common::cache_backends() {
        let cache: Cache<u64, u32> = cache("errors", backend, 60);
        let loads = AtomicU32::new(0);
        let failing = || {
            loads.fetch_add(1, SeqCst);
            Err::<u32, String>("db down".into())
        };
        assert_eq!(cache.try_get_or_load(3, failing), Err("db down".to_owned()));
        assert_eq!(cache.try_get_or_load(3, failing), Err("db down".to_owned()));
        assert_eq!(loads.load(SeqCst), 2, "{backend:?}: an error was cached");
        assert_eq!(cache.try_get_or_load(3, || Ok::<_, String>(30)), Ok(30));
        assert_eq!(
            cache.try_get_or_load(3, || Err::<u32, _>("not called")),
            Ok(30)
        );
        assert_eq!(cache.get(&3), Some(30));
        assert_eq!(cache.stats().load_errors, 2, "{backend:?}");
    }
}

#[test]
fn async_errors_are_returned_and_never_cached() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in common::cache_backends() {
        let cache: Cache<u64, u32> = cache("async-errors", backend, 60);
        rt.block_on(async {
            let failed = cache
                .try_get_or_load_async(4, || async { Err::<u32, _>(404_u16) })
                .await;
            assert_eq!(failed, Err(404));
            let loaded = cache
                .try_get_or_load_async(4, || async { Ok::<_, u16>(40) })
                .await;
            assert_eq!(loaded, Ok(40));
            assert_eq!(cache.get_async(&4).await, Some(40));
        });
    }
}

#[test]
fn none_is_a_null_with_null_ttl_and_a_value_without() {
    for backend in common::cache_backends() {
        let nulls: Cache<u64, Option<u32>> = Cache::builder(format!("cv-nulls-{backend:?}"))
            .ttl(Duration::from_secs(60))
            .null_ttl(Duration::from_secs(30))
            .backend(backend)
            .build()
            .unwrap();
        let loads = AtomicU32::new(0);
        let find = |id: u64| {
            loads.fetch_add(1, SeqCst);
            (id > 0).then_some(id as u32)
        };
        assert_eq!(nulls.get_or_load(0, || find(0)), None);
        assert_eq!(nulls.get_or_load(0, || find(0)), None);
        assert_eq!(nulls.get_or_load(1, || find(1)), Some(1));
        assert_eq!(
            loads.load(SeqCst),
            2,
            "{backend:?}: the null was not cached"
        );
        let s = nulls.stats();
        assert_eq!((s.null_hits, s.hits), (1, 0), "{backend:?}");
        let entry = nulls.entry_or_load(0, || find(0));
        assert_eq!(entry.status(), CacheStatus::NullHit, "{backend:?}");
        assert!(
            entry.lifetime() <= Duration::from_secs(30),
            "{backend:?}: null_ttl"
        );

        let plain: Cache<u64, Option<u32>> = cache("plain-option", backend, 60);
        assert_eq!(plain.get_or_load(0, || None), None);
        assert_eq!(
            plain.get_or_load(0, || Some(5)),
            None,
            "a None value is a hit"
        );
        assert_eq!(plain.stats().hits, 1, "{backend:?}");
    }
}

#[test]
fn insert_writes_through_and_get_never_loads() {
    for backend in common::cache_backends() {
        let cache: Cache<u64, String> = cache("insert", backend, 60);
        assert_eq!(cache.get(&1), None);
        cache.insert(1, "one".into());
        assert_eq!(cache.get(&1).as_deref(), Some("one"));
        assert_eq!(cache.get_or_load(1, || "loaded".into()), "one");
        cache.insert(1, "uno".into());
        assert_eq!(cache.get_or_load(1, || "loaded".into()), "uno");
        assert!(cache.invalidate(&1).is_done());
        assert_eq!(cache.get(&1), None, "{backend:?}");
        assert_eq!(cache.stats().loads, 2, "{backend:?}: two inserts, no load");
    }
}

#[test]
fn entry_or_load_says_how_it_answered() {
    for backend in common::cache_backends() {
        let cache: Cache<u64, u32> = cache("entry", backend, 60);
        let first = cache.entry_or_load(2, || 20);
        assert_eq!((first.status(), *first.value()), (CacheStatus::Miss, 20));
        let again = cache.entry_or_load(2, || 0);
        assert_eq!((again.status(), again.into_inner()), (CacheStatus::Hit, 20));
        assert!(first.lifetime() <= Duration::from_secs(60));
        assert!(first.lifetime() >= Duration::from_secs(50), "jitter ≤ 10%");
    }
}

#[test]
fn tags_rendered_from_the_key_drop_entries() {
    for backend in common::cache_backends() {
        let tag = format!("cv-tag-{backend:?}");
        let products: Cache<u64, u64> = Cache::builder(format!("cv-tags-{backend:?}"))
            .ttl(Duration::from_secs(60))
            .tags(|id| vec![format!("cv-product:{id}")])
            .backend(backend)
            .build()
            .unwrap();
        let _ = tag;
        let loads = AtomicU32::new(0);
        let load = |id: u64| {
            loads.fetch_add(1, SeqCst);
            id * 10
        };
        products.get_or_load(1, || load(1));
        products.get_or_load(2, || load(2));
        assert!(invalidate_tag("cv-product:1").is_done());
        products.get_or_load(1, || load(1));
        products.get_or_load(2, || load(2));
        assert_eq!(
            loads.load(SeqCst),
            3,
            "{backend:?}: tag dropped product 1 only"
        );
        assert_eq!(products.get(&2), Some(20));
    }
}

#[test]
fn ttl_fn_chooses_each_entrys_lifetime() {
    for backend in common::cache_backends() {
        let tokens: Cache<u64, (String, u64)> = Cache::builder(format!("cv-ttl-fn-{backend:?}"))
            .ttl(Duration::from_secs(3600))
            .jitter(0.0)
            .ttl_fn(|token: &(String, u64)| Duration::from_secs(token.1))
            .backend(backend)
            .build()
            .unwrap();
        let short = tokens.entry_or_load(1, || ("a".into(), 30));
        assert_eq!(short.lifetime(), Duration::from_secs(30), "{backend:?}");
        let long = tokens.entry_or_load(2, || ("b".into(), 600));
        assert_eq!(long.lifetime(), Duration::from_secs(600), "{backend:?}");
        // Zero: handed to the caller, not stored.
        assert_eq!(tokens.get_or_load(3, || ("c".into(), 0)).0, "c");
        assert_eq!(
            tokens.get(&3),
            None,
            "{backend:?}: a zero lifetime was stored"
        );
        assert_eq!(tokens.get(&1).map(|t| t.1), Some(30));
    }
}

#[test]
fn an_insert_that_is_not_stored_drops_the_old_value() {
    for backend in common::cache_backends() {
        let tokens: Cache<u64, (String, u64)> = Cache::builder(format!("cv-unstored-{backend:?}"))
            .ttl(Duration::from_secs(3600))
            .ttl_fn(|token: &(String, u64)| Duration::from_secs(token.1))
            .backend(backend)
            .build()
            .unwrap();
        tokens.insert(1, ("old".into(), 600));
        assert_eq!(tokens.get(&1).map(|t| t.0), Some("old".to_owned()));
        // A lifetime of zero: not stored, and the old value must not outlive it.
        tokens.insert(1, ("new".into(), 0));
        assert_eq!(
            tokens.get(&1),
            None,
            "{backend:?}: the replaced value is still served"
        );
        let loaded = tokens.get_or_load(1, || ("loaded".into(), 600));
        assert_eq!(loaded.0, "loaded", "{backend:?}");
    }
}

/// The other member of the kind: a null while null caching is off is not stored either, and
/// the value it replaces must go.
#[test]
fn an_insert_of_an_uncached_null_drops_the_old_value() {
    for backend in common::cache_backends() {
        let found: Cache<u64, Option<u32>> =
            Cache::builder(format!("cv-uncached-null-{backend:?}"))
                .ttl(Duration::from_secs(3600))
                .null_ttl(Duration::ZERO)
                .backend(backend)
                .build()
                .unwrap();
        found.insert(1, Some(5));
        assert_eq!(found.get(&1), Some(Some(5)));
        found.insert(1, None);
        assert_eq!(
            found.get(&1),
            None,
            "{backend:?}: the replaced value is still served"
        );
    }
}

#[test]
fn the_builder_refuses_what_the_attribute_refuses() {
    let err = |b: cache_runtime::CacheBuilder<u64, u64>| b.build().unwrap_err();
    let base = || Cache::<u64, u64>::builder("cv-refused").backend(Backend::Memory);
    assert_eq!(err(base().jitter(1.5)), BuildError::Jitter);
    assert_eq!(err(base().jitter(f64::NAN)), BuildError::Jitter);
    assert_eq!(err(base().max_entries(0)), BuildError::MaxEntries);
    assert_eq!(err(base().early_refresh(-1.0)), BuildError::EarlyRefresh);
    assert_eq!(
        err(base().stale(Duration::from_secs(5))),
        BuildError::PhaseWithoutTtl("stale")
    );
    assert_eq!(
        err(base()
            .ttl(Duration::from_secs(5))
            .load_timeout(Duration::from_millis(5))),
        BuildError::LoadTimeoutWithoutKept
    );
    assert_eq!(
        err(base().l1_ttl(Duration::from_secs(5))),
        BuildError::L1TtlWithoutTiered
    );
    assert_eq!(
        err(base().lock(cache_runtime::Lock::Distributed)),
        BuildError::RedisSettingOnMemory("Lock::Distributed")
    );
    let message = BuildError::PhaseWithoutTtl("stale").to_string();
    assert!(message.contains("set `ttl`"), "{message}");
    // With an expiry chosen per value, phases have an expiry to act around.
    assert!(
        base()
            .stale(Duration::from_secs(5))
            .ttl_fn(|_| Duration::from_secs(1))
            .build()
            .is_ok()
    );
}

#[test]
fn a_cache_lives_in_a_static_and_is_shared_by_threads() {
    static SHARED: std::sync::LazyLock<Cache<String, usize>> = std::sync::LazyLock::new(|| {
        Cache::builder("cv-static")
            .backend(Backend::Memory)
            .build()
            .unwrap()
    });
    let seen: HashSet<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| SHARED.get_or_load("k".to_owned(), || 8)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(seen, HashSet::from([8]));
    let _ = Invalidation::Done;
}

/// On Redis a `Cache`'s key is the one a `#[cached]` function of one parameter of the key's
/// type writes, and the key's `PX` follows `ttl_fn`.
#[cfg(feature = "redis")]
mod on_redis {
    use super::*;
    use redis::Commands;

    #[cache_runtime::cached(name = "cv-layout-attr", ttl = 60)]
    fn by_attribute(id: u64) -> u64 {
        id
    }

    #[test]
    fn the_key_is_the_attributes_and_px_follows_ttl_fn() {
        if !common::backend_ready() {
            return;
        }
        let prefix = format!("t{}:", std::process::id());
        let url = tests::redis_server::url().expect("ready");
        let mut raw = tests::redis_server::raw(url);
        let tokens: Cache<u64, (String, u64)> = Cache::builder("cv-layout")
            .ttl(Duration::from_secs(3600))
            .jitter(0.0)
            .ttl_fn(|token: &(String, u64)| Duration::from_secs(token.1))
            .backend(Backend::Redis)
            .build()
            .unwrap();
        tokens.get_or_load(7, || ("seven".into(), 30));
        by_attribute(7);
        let ours: i64 = raw.pttl(format!("{prefix}cv-layout:[7]")).unwrap();
        assert!((29_000..=30_000).contains(&ours), "PTTL {ours}");
        let theirs: i64 = raw.pttl(format!("{prefix}cv-layout-attr:[7]")).unwrap();
        assert!((50_000..=60_000).contains(&theirs), "PTTL {theirs}");
        tokens.get_or_load(8, || ("eight".into(), 0));
        let stored: bool = raw.exists(format!("{prefix}cv-layout:[8]")).unwrap();
        assert!(!stored, "a zero lifetime was written to Redis");
    }
}
