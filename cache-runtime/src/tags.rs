//! Tags (DESIGN §11): [`invalidate_tag`] makes every entry carrying a tag a miss, in O(1).
//!
//! Each tag has a *version*. In process it is a counter ([`Tag`]), found by name in a
//! registry; an entry records the versions of its tags taken when its load started (the
//! [`Tags`] of its key) and is used only while every one is unchanged. Invalidating a tag adds
//! one to its counter: no entry is visited, whatever their number. A load that started before
//! the invalidation carries the old version, so its result is never served (and is not even
//! written: [`Tags::current`] is checked before every write, and again on every read, which
//! covers a write that raced the check).
//!
//! On Redis the same idea runs on a tag key per tag (`redis/tags.rs`).
//!
//! The registry holds tags weakly: a tag that no entry and no load carries is forgotten, and
//! one made again later starts a new counter (no entry holds the old one, so no entry can
//! mistake one for the other). So the registry's size follows the live entries, not every tag
//! ever used.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use crate::invalidation::Invalidation;

/// One tag of this process: its name and its version.
pub(crate) struct Tag {
    name: Box<str>,
    version: AtomicU64,
}

impl Tag {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// The tags of one call and their versions when its load started; carried by its key and by
/// the entries the load writes. Cheap to clone; [`Tags::NONE`] for an untagged function.
#[derive(Clone, Default)]
pub struct Tags(Option<Arc<[Seen]>>);

/// A tag, and its version when a load started.
type Seen = (Arc<Tag>, u64);

impl std::fmt::Debug for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Tags {
    /// No tags.
    pub const NONE: Tags = Tags(None);

    /// The tags named `names` (rendered by the generated code), each with its version now.
    pub fn new<const N: usize>(names: [String; N]) -> Tags {
        if N == 0 {
            return Tags::NONE;
        }
        let tags: Arc<[Seen]> = names
            .into_iter()
            .map(|name| {
                let tag = REGISTRY.tag(name);
                let version = tag.version.load(Ordering::Acquire);
                (tag, version)
            })
            .collect();
        Tags(Some(tags))
    }

    /// Whether no tag was invalidated since the versions were taken.
    #[inline]
    pub(crate) fn current(&self) -> bool {
        match &self.0 {
            None => true,
            Some(tags) => tags
                .iter()
                .all(|(tag, seen)| tag.version.load(Ordering::Acquire) == *seen),
        }
    }

    /// The names, in the order of the attribute.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .flat_map(|tags| tags.iter().map(|(t, _)| t.name()))
    }
}

/// Shards of the registry, so that loads of different tags rarely meet on one lock.
const SHARDS: usize = 16;

struct Registry {
    shards: [Mutex<Shard>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Shard {
    tags: HashMap<Box<str>, Weak<Tag>>,
    /// Entries after the last sweep of forgotten tags: the next sweep runs at twice this.
    swept_at: usize,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
    hasher: std::collections::hash_map::RandomState::new(),
});

impl Registry {
    fn shard(&self, name: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = usize::try_from(self.hasher.hash_one(name) % SHARDS as u64).unwrap_or(0);
        // A sweep or an insert cannot leave the map half-written: poison is harmless.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The live tag named `name`, made if none is.
    fn tag(&self, name: String) -> Arc<Tag> {
        let mut shard = self.shard(&name);
        if let Some(tag) = shard.tags.get(name.as_str()).and_then(Weak::upgrade) {
            return tag;
        }
        if shard.tags.len() >= 2 * shard.swept_at.max(32) {
            shard.tags.retain(|_, tag| tag.strong_count() > 0);
            shard.swept_at = shard.tags.len();
        }
        let tag = Arc::new(Tag {
            name: name.into_boxed_str(),
            version: AtomicU64::new(0),
        });
        shard.tags.insert(tag.name.clone(), Arc::downgrade(&tag));
        tag
    }

    /// Moves the tag named `name` to a new version, if any entry or load carries it.
    fn bump(&self, name: &str) {
        let shard = self.shard(name);
        if let Some(tag) = shard.tags.get(name).and_then(Weak::upgrade) {
            tag.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tags.len())
            .sum()
    }
}

/// Moves `name` to a new version in this process only (what another process's invalidation
/// does to this one's L1 copies).
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "only the invalidation log calls it")
)]
pub(crate) fn invalidate_local(name: &str) {
    REGISTRY.bump(name);
}

/// Makes every entry that carries the tag `tag` a miss, in every cached function of this
/// process and, once this process uses Redis, in every process sharing that Redis; a load of
/// such an entry in flight never writes its result (it started before the invalidation).
///
/// One invalidation costs the same whatever the number of entries carrying the tag: a counter
/// in process, one `SET` of the tag's key on Redis (with `backend = "tiered"`, one more entry
/// in the invalidation log, which every process's L1 reads). No entry is visited or deleted:
/// each entry records its tags' versions and a read compares them (the *tag versions* of
/// FusionCache and Symfony's tag-aware caches, without a member set or a `SCAN`).
///
/// Returns [`Invalidation::Pending`] when Redis could not be reached: the tag is already
/// invalidated in this process, and the invalidation is kept and replayed before this process
/// reads from Redis again (the same rule as `f_invalidate`).
///
/// ```
/// use cache_runtime::{cached, invalidate_tag};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cached(ttl = 60, key = "{id}", tags = ["catalog", "product:{id}"])]
/// fn product_name(id: u32) -> String {
///     LOADS.fetch_add(1, Ordering::Relaxed);
///     format!("product {id}")
/// }
///
/// product_name(1);
/// product_name(2);
/// let _ = invalidate_tag("product:1"); // drops product 1 only
/// product_name(1);
/// product_name(2);
/// assert_eq!(LOADS.load(Ordering::Relaxed), 3);
/// let _ = invalidate_tag("catalog"); // drops both
/// product_name(1);
/// product_name(2);
/// assert_eq!(LOADS.load(Ordering::Relaxed), 5);
/// ```
pub fn invalidate_tag(tag: &str) -> Invalidation {
    REGISTRY.bump(tag);
    #[cfg(feature = "redis")]
    {
        let done = crate::redis::tags::invalidate(tag);
        // A copy read from Redis before the tag's key changed may have landed since.
        REGISTRY.bump(tag);
        done
    }
    #[cfg(not(feature = "redis"))]
    Invalidation::Done
}

/// The async twin of [`invalidate_tag`], for async code (it never blocks the executor's
/// thread on Redis).
pub async fn invalidate_tag_async(tag: &str) -> Invalidation {
    REGISTRY.bump(tag);
    #[cfg(feature = "redis")]
    {
        let done = crate::redis::tags::invalidate_async(tag).await;
        REGISTRY.bump(tag);
        done
    }
    #[cfg(not(feature = "redis"))]
    Invalidation::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Tags {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        match names.as_slice() {
            [a] => Tags::new([a.clone()]),
            [a, b] => Tags::new([a.clone(), b.clone()]),
            _ => Tags::NONE,
        }
    }

    #[test]
    fn a_bump_ends_the_tags_that_carry_it_only() {
        let a = tags(&["unit:a", "unit:shared"]);
        let b = tags(&["unit:b"]);
        assert!(a.current() && b.current());
        invalidate_local("unit:shared");
        assert!(!a.current());
        assert!(b.current());
        assert!(
            tags(&["unit:a", "unit:shared"]).current(),
            "new loads see the new version"
        );
        assert!(Tags::NONE.current());
    }

    #[test]
    fn forgotten_tags_are_swept_and_start_afresh() {
        let before = REGISTRY.len();
        for i in 0..10_000 {
            drop(tags(&[&format!("unit:sweep:{i}")]));
        }
        // Forgotten tags are swept as the registry grows: it stays near its live size.
        assert!(REGISTRY.len() < before + 2_000, "{}", REGISTRY.len());
        let kept = tags(&["unit:sweep:kept"]);
        invalidate_local("unit:sweep:kept");
        assert!(!kept.current());
    }
}
