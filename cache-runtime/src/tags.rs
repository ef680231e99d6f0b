//! Tags (DESIGN §11): [`invalidate_tag`] makes every entry carrying a tag a miss, in O(1).
//!
//! Each tag has a *version*. In process it is a counter ([`Tag`]), found by name in a
//! registry; an entry records the versions of its tags taken when its load started (the
//! [`Tags`] of its key) and is used only while every one is unchanged. Invalidating a tag adds
//! one to its counter: no entry is visited, whatever their number. A load that started before
//! the invalidation carries the old version, so its result is never served (and is not even
//! written: [`Tags::current`] is checked before every write, and again on every read, which
//! covers a write that raced the check). A process-wide epoch moves on with every invalidation,
//! so that the common read, nothing invalidated since the entry was last checked, compares two
//! numbers instead of every tag's version.
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

/// Moves on at every tag invalidation of this process, whatever the tag: a stamp checked at
/// the current epoch needs no look at its tags (the hit path's common case).
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The tags of one call and their versions when its load started; carried by its key, and
/// (as `EntryTags`) by the entries the load writes. Cheap to clone; [`Tags::NONE`] for an
/// untagged function.
#[derive(Clone, Default)]
pub struct Tags(Option<Arc<Stamp>>);

/// The versions a load saw.
struct Stamp {
    seen: Box<[Seen]>,
    /// A hash of the names, in order: which tags these are.
    names: u64,
    /// The latest epoch at which every version was found current.
    checked_at: AtomicU64,
}

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
        Tags::from_names(names)
    }

    /// The tags named `names` (a [`Cache`](crate::Cache)'s, rendered from its key), each with
    /// its version now.
    pub(crate) fn from_names(names: impl IntoIterator<Item = String>) -> Tags {
        let mut names = names.into_iter().peekable();
        if names.peek().is_none() {
            return Tags::NONE;
        }
        // Read first: the versions read next are current at least as of this epoch.
        let epoch = EPOCH.load(Ordering::SeqCst);
        let mut hash = REGISTRY.hasher.build_hasher();
        let seen: Box<[Seen]> = names
            .map(|name| {
                std::hash::Hash::hash(&name, &mut hash);
                let tag = REGISTRY.tag(name);
                let version = tag.version.load(Ordering::SeqCst);
                (tag, version)
            })
            .collect();
        Tags(Some(Arc::new(Stamp {
            seen,
            names: std::hash::Hasher::finish(&hash),
            checked_at: AtomicU64::new(epoch),
        })))
    }

    /// Whether no tag was invalidated in this process since the versions were taken (a store
    /// that keeps the call's tags with its entry answers a miss once they are not).
    #[inline]
    pub fn current(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|s| s.current_at(EPOCH.load(Ordering::SeqCst)))
    }

    /// The names, in the order of the attribute.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .flat_map(|s| s.seen.iter().map(|(t, _)| t.name()))
    }
}

impl Stamp {
    /// Whether every version is current at `epoch` (read by the caller just before).
    #[inline]
    fn current_at(&self, epoch: u64) -> bool {
        self.checked_at.load(Ordering::SeqCst) == epoch || self.check(epoch)
    }

    #[cold]
    fn check(&self, epoch: u64) -> bool {
        let current = self
            .seen
            .iter()
            .all(|(tag, seen)| tag.version.load(Ordering::SeqCst) == *seen);
        if current {
            // Never back to an older epoch (two checks may race): that would only cost a check.
            self.checked_at.fetch_max(epoch, Ordering::SeqCst);
        }
        current
    }
}

/// The tags of a stored entry. In the store it holds its load's [`Tags`]; a copy taken from
/// the store (every read of quick_cache clones) holds only whether they were current when it
/// was taken, and at which epoch: so the hit path checks an entry's tags without touching a
/// reference count (one load of the epoch, one of the stamp's `checked_at`). A copy is current
/// while nothing was invalidated since it was taken; a copy kept longer (the entry held for
/// fail-safe by a load) is given back its tags by [`EntryTags::held`].
pub(crate) struct EntryTags(Kind);

enum Kind {
    None,
    Live(Arc<Stamp>),
    /// A copy taken from the store. The epoch is kept in 32 bits (the entry stays 16 bytes
    /// smaller, and the hit path touches one cache line less): a copy lives for one call or
    /// one load, far less than 2^32 tag invalidations.
    Copy {
        current: bool,
        epoch: u32,
        names: u64,
    },
}

/// The epoch as a copy keeps it.
#[inline]
fn epoch32() -> u32 {
    // Truncated on purpose (see `Kind::Copy`).
    EPOCH.load(Ordering::SeqCst) as u32
}

impl EntryTags {
    /// The mark of an entry written with the call's `tags`.
    pub(crate) fn of(tags: &Tags) -> EntryTags {
        EntryTags(match &tags.0 {
            None => Kind::None,
            Some(stamp) => Kind::Live(Arc::clone(stamp)),
        })
    }

    /// No tags.
    pub(crate) const NONE: EntryTags = EntryTags(Kind::None);

    /// Whether none of the tags was invalidated since the load started.
    #[inline]
    pub(crate) fn current(&self) -> bool {
        match &self.0 {
            Kind::None => true,
            Kind::Live(stamp) => stamp.current_at(EPOCH.load(Ordering::SeqCst)),
            Kind::Copy { current, epoch, .. } => *current && *epoch == epoch32(),
        }
    }

    /// Whether these are the tags the call's `tags` name (the same names, in order; their
    /// versions are another question, which [`EntryTags::current`] answers): an entry held for
    /// fail-safe is written back (re-armed) only under the tags it was loaded with.
    pub(crate) fn is_of(&self, tags: &Tags) -> bool {
        match (&self.0, &tags.0) {
            (Kind::None, None) => true,
            (Kind::Live(mine), Some(theirs)) => mine.names == theirs.names,
            (Kind::Copy { names, .. }, Some(theirs)) => *names == theirs.names,
            _ => false,
        }
    }

    /// A copy that stays checkable while a load runs: a current copy of an entry that carries
    /// the same tags as the call (`tags`, taken before the copy) holds the call's tags from
    /// now on, so that only an invalidation of one of them ends it.
    pub(crate) fn held(self, tags: &Tags) -> EntryTags {
        match (&self.0, &tags.0) {
            (Kind::Copy { names, .. }, Some(stamp)) if *names == stamp.names && self.current() => {
                EntryTags(Kind::Live(Arc::clone(stamp)))
            }
            _ => self,
        }
    }
}

impl Clone for EntryTags {
    #[inline]
    fn clone(&self) -> Self {
        EntryTags(match &self.0 {
            Kind::None => Kind::None,
            Kind::Live(stamp) => {
                let epoch = EPOCH.load(Ordering::SeqCst);
                Kind::Copy {
                    current: stamp.current_at(epoch),
                    // Truncated on purpose (see `Kind::Copy`).
                    epoch: epoch as u32,
                    names: stamp.names,
                }
            }
            Kind::Copy {
                current,
                epoch,
                names,
            } => Kind::Copy {
                current: *current,
                epoch: *epoch,
                names: *names,
            },
        })
    }
}

impl std::fmt::Debug for EntryTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::None => f.write_str("untagged"),
            Kind::Live(stamp) => f
                .debug_list()
                .entries(stamp.seen.iter().map(|(t, v)| (t.name(), v)))
                .finish(),
            Kind::Copy { current, .. } => write!(f, "copy (current: {current})"),
        }
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

    /// Moves the tag named `name` to a new version, if any entry or load carries it, then the
    /// epoch (so that a stamp checked at the old epoch is checked again).
    fn bump(&self, name: &str) {
        let shard = self.shard(name);
        if let Some(tag) = shard.tags.get(name).and_then(Weak::upgrade) {
            tag.version.fetch_add(1, Ordering::SeqCst);
            EPOCH.fetch_add(1, Ordering::SeqCst);
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
pub(crate) fn invalidate_local(name: &str) {
    REGISTRY.bump(name);
}

/// Moves each tag to a new version in this process; the names, owned.
pub(crate) fn bump_all<I, S>(tags: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    tags.into_iter()
        .map(|t| {
            REGISTRY.bump(t.as_ref());
            t.as_ref().to_owned()
        })
        .collect()
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
