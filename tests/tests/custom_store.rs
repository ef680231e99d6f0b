//! Bring your own store (issue 23): [`MapStore`], written here against the public
//! `cache_runtime::store::Store` trait, plays a store shared by processes (a `HashMap` behind a
//! mutex, with leases, a change feed and a switch that makes it fail). Named in the attribute
//! (`store = crate::MapStore`, and `backend = "tiered"` for the engine's L1 in front of it), it
//! serves calls with single-flight, fencing, tags, freshness phases, the L1 and the outage
//! fallback, none of which it implements: the engine does.
//!
//! Two "processes" are two caches of one space: a cache named `space@a` and one named
//! `space@b` share the entries and leases of `space`, and each is told of the other's changes
//! (never of its own, as Redis's tracking does not report a process's own writes).

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cache_runtime::store::{
    Change, Function, Health, Leased, Op, Published, Read, Setup, Slot, Start, Store, StoreError,
    Tags, Tier, Times, changed, done,
};
use cache_runtime::{cached, clock, invalidate_tag};

/// The entries and leases of one space (every cache named `space@…`).
#[derive(Default)]
struct Space {
    /// Each entry with the tags of the load that wrote it (their versions when it started).
    values: HashMap<String, (Box<dyn Any + Send + Sync>, Times, Tags)>,
    leases: HashMap<String, u64>,
    /// The caches of the space, to tell each of the others' changes.
    caches: Vec<String>,
    down: bool,
    recoveries: u64,
    reads: u64,
}

static SPACES: LazyLock<Mutex<HashMap<String, Space>>> = LazyLock::new(Default::default);
static TOKENS: AtomicU64 = AtomicU64::new(1);

fn space_of(name: &str) -> String {
    name.split('@').next().unwrap_or(name).to_owned()
}

fn spaces() -> MutexGuard<'static, HashMap<String, Space>> {
    SPACES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes every operation on `space` fail (`true`), or answer again (a recovery).
fn fail(space: &str, down: bool) {
    let mut all = spaces();
    let space = all.entry(space.to_owned()).or_default();
    if space.down && !down {
        space.recoveries += 1;
    }
    space.down = down;
}

/// How many reads `space` answered.
fn reads(space: &str) -> u64 {
    spaces().get(space).map_or(0, |s| s.reads)
}

/// The store's key of a call: its name in the space, and the call's tags.
#[derive(Clone, Debug)]
pub struct MapKey {
    name: String,
    tags: Tags,
}

/// A store shared by the caches of one space.
#[derive(Debug)]
pub struct MapStore {
    name: String,
    space: String,
    lock_timeout: Duration,
}

/// A lease: released if dropped before its publish.
pub struct MapLease {
    space: String,
    key: String,
    token: u64,
    done: bool,
}

impl Drop for MapLease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut all = spaces();
        if let Some(space) = all.get_mut(&self.space)
            && space.leases.get(&self.key) == Some(&self.token)
        {
            space.leases.remove(&self.key);
        }
    }
}

impl MapStore {
    /// Runs `f` on this store's space, or fails while it is down.
    fn with<T>(&self, f: impl FnOnce(&mut Space) -> T) -> Result<T, StoreError> {
        let mut all = spaces();
        let space = all.entry(self.space.clone()).or_default();
        if space.down {
            return Err(StoreError::Failed(format!("{} is down", self.space)));
        }
        Ok(f(space))
    }

    /// Tells the other caches of the space that `key` changed (after the lock is released).
    fn tell(&self, change: Change<'_>) {
        let others: Vec<String> = spaces()
            .get(&self.space)
            .map(|s| {
                s.caches
                    .iter()
                    .filter(|c| **c != self.name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for other in others {
            changed("map", Some(&other), change);
        }
    }

    fn lease_now(&self, space: &mut Space, key: &str) -> MapLease {
        let token = TOKENS.fetch_add(1, SeqCst);
        space.leases.insert(key.to_owned(), token);
        MapLease {
            space: self.space.clone(),
            key: key.to_owned(),
            token,
            done: false,
        }
    }

    /// The entry of `key`, unless a tag it was loaded with was invalidated since: this store
    /// keeps no tag versions of its own (Redis does), so it keeps the call's and asks them.
    fn found<V: Clone + 'static>(space: &Space, key: &str) -> Option<(Slot<V>, Times)> {
        let (value, times, tags) = space.values.get(key)?;
        if !tags.current() {
            return None;
        }
        Some((value.downcast_ref::<Slot<V>>()?.clone(), *times))
    }

    /// One attempt at a lease: `None` to wait and try again (`Start::Wait` only).
    fn try_lease<V: Clone + 'static>(
        &self,
        space: &mut Space,
        key: &str,
        start: Start,
        waited_out: bool,
    ) -> Option<Leased<MapLease, V>> {
        let found = Self::found::<V>(space, key);
        let held = space.leases.contains_key(key);
        Some(match start {
            Start::Take => Leased::Lease(self.lease_now(space, key)),
            Start::ReadOrTake | Start::Wait if found.is_some() => {
                let (slot, times) = found?;
                Leased::Found(slot, times)
            }
            Start::Wait if held && !waited_out => return None,
            Start::ReadOrTake | Start::Wait => Leased::Lease(self.lease_now(space, key)),
            Start::Refresh(seen) => match found {
                Some((_, times)) if !held && times.fresh_until_ms == seen => {
                    Leased::Lease(self.lease_now(space, key))
                }
                _ => Leased::Busy,
            },
        })
    }
}

impl<F: Function> Store<F> for MapStore {
    const NAME: &'static str = "map";
    const TIER: Tier = Tier::Shared;
    type Key = MapKey;
    type Lease = MapLease;

    fn open(setup: Setup<'_>) -> Self {
        let space = space_of(setup.name);
        let mut all = spaces();
        let caches = &mut all.entry(space.clone()).or_default().caches;
        caches.push(setup.name.to_owned());
        MapStore {
            name: setup.name.to_owned(),
            space,
            lock_timeout: setup.policy.lock_timeout,
        }
    }

    fn key(&self, lookup: &F::Lookup<'_>, tags: &Tags) -> Result<MapKey, StoreError> {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        Ok(MapKey {
            name: format!("{:016x}", hasher.hash_one(F::to_key(lookup))),
            tags: tags.clone(),
        })
    }

    fn read(&'static self, key: &MapKey) -> Op<Read<F::Value>> {
        let key = &key.name;
        done(self.with(|space| {
            space.reads += 1;
            match Self::found::<F::Value>(space, key) {
                Some((slot, times)) => Read::Hit(slot, times),
                None => Read::Miss,
            }
        }))
    }

    fn lease(&'static self, key: &MapKey, start: Start) -> Op<Leased<MapLease, F::Value>> {
        // The wait for another process's lease is in the operation, not in building it (a
        // test store: it waits by sleeping on the thread that polls it).
        let (key, until) = (key.name.clone(), Instant::now() + self.lock_timeout);
        Box::pin(async move {
            loop {
                let waited_out = Instant::now() >= until;
                match self.with(|space| self.try_lease::<F::Value>(space, &key, start, waited_out))
                {
                    Ok(Some(leased)) => return Ok(leased),
                    Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn publish(
        &'static self,
        key: &MapKey,
        mut lease: MapLease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Op<Published> {
        let (key, tags) = (&key.name, &key.tags);
        lease.done = true;
        let version = TOKENS.fetch_add(1, SeqCst);
        let published = self.with(|space| {
            if space.leases.get(key) != Some(&lease.token) {
                // Revoked by an invalidation: nothing is written.
                return Published {
                    valid: false,
                    version: None,
                };
            }
            space.leases.remove(key);
            let Some((slot, times)) = stored else {
                return Published::VALID;
            };
            let times = Times { version, ..times };
            let entry = (Box::new(slot.cloned()) as Box<_>, times, tags.clone());
            space.values.insert(key.clone(), entry);
            Published {
                valid: true,
                version: Some(version),
            }
        });
        if let Ok(Published {
            valid: true,
            version: Some(version),
        }) = published
        {
            self.tell(Change::Written(key, version));
        }
        done(published)
    }

    fn keep(
        &'static self,
        key: &MapKey,
        lease: &MapLease,
        (slot, times): (Slot<&F::Value>, Times),
    ) -> Op<bool> {
        done(self.with(|space| {
            let valid = space.leases.get(&key.name) == Some(&lease.token);
            if valid {
                let entry = (Box::new(slot.cloned()) as Box<_>, times, key.tags.clone());
                space.values.insert(key.name.clone(), entry);
            }
            valid
        }))
    }

    fn invalidate(&'static self, key: &MapKey) -> Op<()> {
        let key = &key.name;
        let done_now = self.with(|space| {
            space.values.remove(key);
            space.leases.remove(key);
        });
        if done_now.is_ok() {
            self.tell(Change::Key(key));
        }
        done(done_now)
    }

    fn clear(&'static self) -> Op<()> {
        let done_now = self.with(|space| {
            space.values.clear();
            space.leases.clear();
        });
        if done_now.is_ok() {
            self.tell(Change::All);
        }
        done(done_now)
    }

    fn feed_key(key: &MapKey) -> Option<&str> {
        Some(&key.name)
    }

    fn health(&self) -> Option<Health> {
        let all = spaces();
        let space = all.get(&self.space);
        Some(Health {
            open: space.is_some_and(|s| s.down),
            recoveries: space.map_or(0, |s| s.recoveries),
            outage: false,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Single-flight and fencing.

static SLOW_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(store = crate::MapStore, name = "flight@a", ttl = 3600)]
fn slow(id: u32) -> u64 {
    SLOW_LOADS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    u64::from(id) * 10
}

#[test]
fn concurrent_misses_load_once() {
    let start = Arc::new(Barrier::new(8));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                slow(1)
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.join().expect("no caller panics"), 10);
    }
    assert_eq!(
        SLOW_LOADS.load(SeqCst),
        1,
        "one load for 8 concurrent misses"
    );
    assert_eq!(slow(1), 10);
    assert_eq!(SLOW_LOADS.load(SeqCst), 1, "the entry lives in the store");
    assert_eq!(slow_cache().backend(), "map");
}

static FENCED_LOADS: AtomicUsize = AtomicUsize::new(0);
static FENCED_VALUE: AtomicU64 = AtomicU64::new(1);
static IN_LOAD: LazyLock<(Barrier, Barrier)> = LazyLock::new(|| (Barrier::new(2), Barrier::new(2)));

#[cached(store = crate::MapStore, name = "fence@a", ttl = 3600)]
fn fenced(id: u32) -> u64 {
    let n = FENCED_LOADS.fetch_add(1, SeqCst);
    let value = FENCED_VALUE.load(SeqCst);
    if n == 0 {
        // The first load reads its source, then waits while the test invalidates.
        IN_LOAD.0.wait();
        IN_LOAD.1.wait();
    }
    value + u64::from(id)
}

#[test]
fn an_invalidation_during_a_load_wins() {
    let load = std::thread::spawn(|| fenced(0));
    IN_LOAD.0.wait();
    // The source changes, then the key is invalidated, while the load that read the old
    // source still runs.
    FENCED_VALUE.store(2, SeqCst);
    assert!(fenced_invalidate(0).is_done());
    IN_LOAD.1.wait();
    assert_eq!(
        load.join().expect("the load returns"),
        1,
        "its caller gets its own result"
    );
    assert_eq!(fenced(0), 2, "the load's stale result was never stored");
    assert_eq!(FENCED_LOADS.load(SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// Tags and freshness phases.

static TAGGED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(store = crate::MapStore, name = "tags@a", ttl = 3600, tags = ["map-product:{id}"])]
fn tagged(id: u32) -> u32 {
    TAGGED_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_tag_invalidation_makes_a_miss() {
    tagged(1);
    tagged(2);
    tagged(1);
    assert_eq!(TAGGED_LOADS.load(SeqCst), 2);
    let _ = invalidate_tag("map-product:1");
    tagged(1);
    tagged(2);
    assert_eq!(
        TAGGED_LOADS.load(SeqCst),
        3,
        "only the tagged entry loads again"
    );
}

static STALE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(store = crate::MapStore, name = "phases@a", ttl = 10, stale = 3600)]
fn revalidated(id: u32) -> usize {
    STALE_LOADS.fetch_add(1, SeqCst) + usize::try_from(id).unwrap_or(0)
}

#[test]
fn a_stale_entry_answers_while_it_is_revalidated() {
    assert_eq!(revalidated(0), 0);
    // Every other test's entries live an hour: moving the clock 11 s ends only this one's.
    clock::advance(Duration::from_secs(11));
    assert_eq!(revalidated(0), 0, "the stale entry answers at once");
    let deadline = Instant::now() + Duration::from_secs(10);
    while revalidated_cache().stats().refreshes == 0 || revalidated(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the revalidation stores its result"
        );
        std::thread::yield_now();
    }
    assert_eq!(revalidated(0), 1, "the revalidated value");
    assert_eq!(STALE_LOADS.load(SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// The L1 in front of the store, fed by its change feed.

static L1_LOADS: AtomicUsize = AtomicUsize::new(0);
static L1_SOURCE: AtomicU64 = AtomicU64::new(100);

#[cached(store = crate::MapStore, backend = "tiered", name = "l1@a", ttl = 3600)]
fn near_a(id: u32) -> u64 {
    L1_LOADS.fetch_add(1, SeqCst);
    L1_SOURCE.load(SeqCst) + u64::from(id)
}

#[cached(store = crate::MapStore, backend = "tiered", name = "l1@b", ttl = 3600)]
fn near_b(id: u32) -> u64 {
    L1_LOADS.fetch_add(1, SeqCst);
    L1_SOURCE.load(SeqCst) + u64::from(id)
}

#[test]
fn the_l1_answers_until_another_process_changes_the_key() {
    // Each process made its cache (and listens) before the changes below.
    let _ = (near_a_cache(), near_b_cache());
    assert_eq!(near_a(1), 101);
    let read = reads("l1");
    assert_eq!(near_a(1), 101);
    assert_eq!(
        reads("l1"),
        read,
        "the second call is the L1's: no read of the store"
    );
    assert_eq!(near_a_cache().stats().l1_hits, 1);
    assert_eq!(
        near_b(1),
        101,
        "the other process finds the entry in the store"
    );
    assert_eq!(L1_LOADS.load(SeqCst), 1);

    L1_SOURCE.store(200, SeqCst);
    assert!(near_b_invalidate(1).is_done());
    assert_eq!(
        near_a(1),
        201,
        "the change feed dropped this process's copy"
    );
    assert_eq!(near_a_cache().stats().invalidations_received, 1);
    assert_eq!(L1_LOADS.load(SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// The outage fallback.

static DOWN_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(store = crate::MapStore, name = "down@a", ttl = 3600)]
fn guarded(id: u32) -> u32 {
    DOWN_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_failing_store_is_answered_by_the_fallback() {
    assert_eq!(guarded(1), 1);
    assert_eq!(DOWN_LOADS.load(SeqCst), 1);
    fail("down", true);
    assert_eq!(
        guarded(1),
        1,
        "the fallback's copy of what this process read answers"
    );
    assert_eq!(DOWN_LOADS.load(SeqCst), 1);
    assert_eq!(guarded(2), 2, "a key it never had loads in process");
    assert_eq!(guarded(2), 2);
    assert_eq!(DOWN_LOADS.load(SeqCst), 2, "once: the fallback keeps it");
    let stats = guarded_cache().stats();
    assert!(
        stats.store_errors >= 2,
        "each failed read is counted: {stats:?}"
    );
    assert_eq!(
        guarded_cache().breaker(),
        Some(cache_runtime::BreakerState::Open)
    );

    fail("down", false);
    assert_eq!(guarded(2), 2);
    assert_eq!(
        DOWN_LOADS.load(SeqCst),
        3,
        "after the recovery the store has no entry: a load"
    );
    assert_eq!(guarded(2), 2);
    assert_eq!(DOWN_LOADS.load(SeqCst), 3, "and then it has");

    // A copy the fallback made in one outage never answers the next one: the store's health
    // says it recovered in between, and the fallback starts empty.
    fail("down", true);
    assert_eq!(guarded(3), 3);
    assert_eq!(guarded(3), 3);
    assert_eq!(
        DOWN_LOADS.load(SeqCst),
        4,
        "the fallback keeps what it loaded in the outage"
    );
    fail("down", false);
    fail("down", true);
    assert_eq!(guarded(3), 3);
    assert_eq!(
        DOWN_LOADS.load(SeqCst),
        5,
        "the next outage does not serve the earlier copy"
    );
    fail("down", false);
}

// ---------------------------------------------------------------------------------------------
// Single-flight across processes: the store's lease.

static ACROSS_LOADS: AtomicUsize = AtomicUsize::new(0);
static ACROSS_START: LazyLock<Barrier> = LazyLock::new(|| Barrier::new(2));

#[cached(store = crate::MapStore, name = "across@a", ttl = 3600)]
fn across_a(id: u32) -> u32 {
    ACROSS_LOADS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    id
}

#[cached(store = crate::MapStore, name = "across@b", ttl = 3600)]
fn across_b(id: u32) -> u32 {
    ACROSS_LOADS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    id
}

#[test]
fn two_processes_missing_one_key_load_it_once() {
    let a = std::thread::spawn(|| {
        ACROSS_START.wait();
        across_a(7)
    });
    let b = std::thread::spawn(|| {
        ACROSS_START.wait();
        across_b(7)
    });
    assert_eq!(a.join().expect("a answers"), 7);
    assert_eq!(b.join().expect("b answers"), 7);
    assert_eq!(
        ACROSS_LOADS.load(SeqCst),
        1,
        "the second process waited for the first one's lease and took its value"
    );
    // The other process waited for the lease and took the value (a wait), or, had it come
    // after the first one's load ended, found it in the store (a hit).
    let (a, b) = (across_a_cache().stats(), across_b_cache().stats());
    assert_eq!(a.waits + b.waits + a.hits + b.hits, 1, "{a:?} {b:?}");
}

// ---------------------------------------------------------------------------------------------
// Async callers: the same steps, awaited.

static ASYNC_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(store = crate::MapStore, name = "async@a", ttl = 3600)]
async fn fetched(id: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    id
}

#[test]
fn async_calls_hit_invalidate_and_clear_through_the_store() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        assert_eq!(fetched(1).await, 1);
        assert_eq!(fetched(1).await, 1);
        assert_eq!(
            ASYNC_LOADS.load(SeqCst),
            1,
            "the second call is the store's hit"
        );
        assert!(fetched_invalidate(1).await.is_done());
        assert_eq!(fetched(1).await, 1);
        assert_eq!(
            ASYNC_LOADS.load(SeqCst),
            2,
            "the invalidation reached the store"
        );
        assert!(fetched_cache().clear_async().await.is_done());
        assert_eq!(fetched(1).await, 1);
        assert_eq!(ASYNC_LOADS.load(SeqCst), 3, "so did the clear");
    });
}
