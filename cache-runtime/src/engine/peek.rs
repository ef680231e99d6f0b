//! A read without a load ([`Cache::get`](crate::Cache::get)): the fresh entry of a key,
//! wherever it lives, or nothing.

use crate::function::Function;
use crate::store::Store;
use crate::tags::Tags;

use super::Engine;
use super::shared::Fetched;

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// The fresh, current entry of `lookup` (with the call's `tags`), counted as a hit: in the
    /// local store, else in the shared store (an L1 is not filled), else, while the shared
    /// store fails, in the fallback. Never loads, never waits for a load, and answers nothing
    /// for an expired entry (stale or kept for fail-safe). An absent key is not counted.
    pub(crate) fn peek(&'static self, lookup: &F::Lookup<'_>, tags: Tags) -> Option<F::Output> {
        if let Some(hit) = self.get_unpicked(lookup) {
            return Some(hit);
        }
        if !Self::SHARED {
            return None;
        }
        let key = self.key(lookup, tags);
        let read = self.fetch(&key);
        self.peeked(lookup, read)
    }

    /// The async twin of [`Engine::peek`].
    pub(crate) async fn peek_async(
        &'static self,
        lookup: &F::Lookup<'_>,
        tags: Tags,
    ) -> Option<F::Output> {
        if let Some(hit) = self.get_unpicked(lookup) {
            return Some(hit);
        }
        if !Self::SHARED {
            return None;
        }
        let key = self.key(lookup, tags);
        let read = self.fetch_async(&key).await;
        self.peeked(lookup, read)
    }

    fn peeked(&'static self, lookup: &F::Lookup<'_>, read: Fetched<F::Value>) -> Option<F::Output> {
        match read {
            Fetched::Hit(entry) if entry.is_fresh() && entry.is_current() => {
                self.hit_picking(entry.slot, entry.times.load_us, 0)
            }
            Fetched::Failed => self.fallback()?.get(lookup),
            Fetched::Hit(_) | Fetched::Miss | Fetched::Unusable => None,
        }
    }
}
