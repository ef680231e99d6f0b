//! The public tag invalidation: `invalidate_tag(s)` moves each tag on in this process
//! (`tags.rs`), then in every store that keeps tag versions of its own (the tag sinks of
//! `stores.rs`).

use crate::invalidation::Invalidation;
use crate::tags::bump_all;

/// Makes every entry that carries the tag `tag` a miss, in every cached function of this
/// process and, with the `redis` feature, in every process sharing the configured Redis
/// (whether or not this process made a Redis cache yet: a process whose caches are all in
/// memory reaches the others too); a load of such an entry in flight never writes its result
/// (it started before the invalidation).
///
/// `tag` is the rendered tag, matched exactly: `"product:42"` for the entries that
/// `tags = ["product:{id}"]` marked when `id` was 42, never the template `"product:{id}"`.
///
/// One invalidation costs the same whatever the number of entries carrying the tag: a counter
/// in process; on a single Redis server one script, a `SET` of the tag's key to a fresh random
/// version and one entry in the invalidation log (which every process's L1 reads); on a Redis
/// Cluster the same as separate commands, one `SET` and one `XADD`. No entry is visited or
/// deleted: each entry records its tags' versions and a read compares them (the *tag versions*
/// of FusionCache and Symfony's tag-aware caches, without a member set or a `SCAN`).
///
/// The tag is invalidated in this process before the call returns, whatever it returns.
/// Without the `redis` feature it returns [`Invalidation::Done`]. With it:
///
/// - [`Invalidation::Done`]: Redis acknowledged the invalidation.
/// - [`Invalidation::Pending`] when Redis could not be reached (an error, a timeout, the
///   circuit breaker open): the invalidation is kept and replayed before this process reads
///   from Redis again (the same rule as `f_invalidate`); other processes see it once it is
///   replayed.
/// - [`Invalidation::Pending`] when the settings name no usable Redis (a URL that does not
///   parse, bad settings in the environment): nothing is kept, since this process then never
///   reads from Redis.
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
    invalidate_tags([tag])
}

/// The async twin of [`invalidate_tag`], for async code: the same invalidation and the same
/// answer, without blocking the executor's thread on Redis.
///
/// ```
/// use cache_runtime::{cached, invalidate_tag_async};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// async fn price(id: u32) -> u64 {
///     u64::from(id) * 100
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// assert_eq!(price(1).await, 100);
/// let _ = invalidate_tag_async("product:1").await;
/// assert_eq!(price(1).await, 100); // loaded again
/// assert_eq!(price_cache().stats().loads, 2);
/// # });
/// ```
pub async fn invalidate_tag_async(tag: &str) -> Invalidation {
    invalidate_tags_async([tag]).await
}

/// [`invalidate_tag`] of several tags at once. What an update usually needs: a product's own
/// entries and its category's listing. On a single Redis server one script (one round trip)
/// for all of them; on a Redis Cluster, one `SET` and one `XADD` per tag.
///
/// `tags` is anything that iterates over strings (`IntoIterator<Item = S>`, `S: AsRef<str>`):
/// an array, a `Vec`, a slice or an iterator of `&str` or `String`. Each is a rendered tag,
/// matched exactly, as for [`invalidate_tag`].
///
/// The answer is [`invalidate_tag`]'s, for all the tags together: one failure keeps them all
/// to replay. An empty list does nothing and returns [`Invalidation::Done`].
///
/// ```
/// use cache_runtime::{cached, invalidate_tags};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// fn product(id: u32) -> String {
///     format!("product {id}")
/// }
///
/// #[cached(ttl = 60, key = "{category}", tags = ["category:{category}"])]
/// fn listing(category: &str) -> Vec<u32> {
///     vec![category.len() as u32]
/// }
///
/// product(1);
/// listing("tea");
/// // Product 1, in the tea category, changed:
/// let _ = invalidate_tags(["product:1", "category:tea"]);
/// product(1);
/// listing("tea");
/// assert_eq!(product_cache().stats().loads, 2);
/// assert_eq!(listing_cache().stats().loads, 2);
///
/// // Tags made at run time: `String`s in a `Vec`, passed by reference.
/// let changed = vec![format!("product:{}", 2), format!("category:{}", "coffee")];
/// let _ = invalidate_tags(&changed);
/// ```
pub fn invalidate_tags<I, S>(tags: I) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names = bump_all(tags);
    if names.is_empty() {
        return Invalidation::Done;
    }
    let sinks = crate::stores::tag_sinks();
    if sinks.is_empty() {
        return Invalidation::Done;
    }
    let mut done = Invalidation::Done;
    for sink in sinks {
        if sink.invalidate(&names).is_pending() {
            done = Invalidation::Pending;
        }
    }
    // A copy read from a store before its tag keys changed may have landed since.
    bump_all(&names);
    done
}

/// The async twin of [`invalidate_tags`]: the same arguments, invalidation and answer,
/// without blocking the executor's thread on Redis.
///
/// ```
/// use cache_runtime::{cached, invalidate_tags_async};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// async fn stock(id: u32) -> u32 {
///     id * 10
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// assert_eq!(stock(1).await, 10);
/// assert_eq!(stock(2).await, 20);
/// let _ = invalidate_tags_async(["product:1", "product:2"]).await;
/// stock(1).await;
/// stock(2).await;
/// assert_eq!(stock_cache().stats().loads, 4);
/// # });
/// ```
pub async fn invalidate_tags_async<I, S>(tags: I) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names = bump_all(tags);
    if names.is_empty() {
        return Invalidation::Done;
    }
    let sinks = crate::stores::tag_sinks();
    if sinks.is_empty() {
        return Invalidation::Done;
    }
    let mut done = Invalidation::Done;
    for sink in sinks {
        if sink.invalidate_async(&names).await.is_pending() {
            done = Invalidation::Pending;
        }
    }
    bump_all(&names);
    done
}
