//! Issue 13: tags (DESIGN §11). `invalidate_tag` makes every entry carrying a tag a miss, in
//! every function, and fences the loads in flight. On the build's default backend: in process,
//! and on Redis with `--features redis`. Each test uses tags of its own (the tag versions are
//! process-wide).

mod common;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::{
    cached, invalidate_tag, invalidate_tag_async, invalidate_tags, invalidate_tags_async,
};
use common::Race;

// --- Tags across two functions --------------------------------------------------------------

static PRODUCT_LOADS: AtomicU32 = AtomicU32::new(0);
static LISTING_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 3600, key = "{id}", tags = ["two:catalog", "two:product:{id}"])]
fn product(id: u32) -> String {
    PRODUCT_LOADS.fetch_add(1, SeqCst);
    format!("product {id}")
}

#[cached(ttl = 3600, key = "{category}", tags = ["two:catalog", "two:category:{category}"])]
fn listing(category: &str) -> Vec<u32> {
    LISTING_LOADS.fetch_add(1, SeqCst);
    vec![1, 2, category.len() as u32]
}

#[test]
fn a_tag_drops_its_entries_in_every_function_and_no_others() {
    if !common::backend_ready() {
        return;
    }
    let loads = || (PRODUCT_LOADS.load(SeqCst), LISTING_LOADS.load(SeqCst));
    let all = || {
        product(1);
        product(2);
        listing("tea");
        listing("cups");
    };
    all();
    all();
    assert_eq!(loads(), (2, 2), "the second round hits");

    assert!(invalidate_tag("two:product:1").is_done());
    all();
    assert_eq!(loads(), (3, 2), "only product 1 loads again");

    assert!(invalidate_tag("two:category:tea").is_done());
    all();
    assert_eq!(loads(), (3, 3), "only the tea listing loads again");

    assert!(invalidate_tag("two:nothing-carries-this").is_done());
    all();
    assert_eq!(loads(), (3, 3), "a tag no entry carries drops nothing");

    assert!(invalidate_tag("two:catalog").is_done());
    all();
    assert_eq!(
        loads(),
        (5, 5),
        "the shared tag drops both functions' entries"
    );
    all();
    assert_eq!(loads(), (5, 5), "and what loaded since is kept");

    assert!(invalidate_tags(["two:product:2", "two:category:cups"]).is_done());
    all();
    assert_eq!(loads(), (6, 6), "several tags in one call");
    let none: [&str; 0] = [];
    assert!(invalidate_tags(none).is_done());
    all();
    assert_eq!(loads(), (6, 6), "no tags: nothing dropped");
}

// --- Templates with fields, `self` and non-key parameters ------------------------------------

struct Item {
    id: u32,
    category: String,
}

static ITEM_LOADS: AtomicU32 = AtomicU32::new(0);

/// The tag names a field that is not part of the key.
#[cached(key = "{item.id}", tags = ["fields:category:{item.category}", "fields:{{literal}}"])]
fn item_label(item: &Item) -> String {
    ITEM_LOADS.fetch_add(1, SeqCst);
    format!("{}:{}", item.id, item.category)
}

struct Shop {
    tenant: String,
}

static SHOP_LOADS: AtomicU32 = AtomicU32::new(0);

impl Shop {
    #[cached(key = "{self.tenant}:{n}", tags = ["fields:tenant:{self.tenant}"])]
    fn page(&self, n: u32) -> String {
        SHOP_LOADS.fetch_add(1, SeqCst);
        format!("{}#{n}", self.tenant)
    }
}

#[test]
fn templates_render_fields_self_and_literal_braces() {
    if !common::backend_ready() {
        return;
    }
    let tea = Item {
        id: 1,
        category: "tea".into(),
    };
    let cup = Item {
        id: 2,
        category: "cups".into(),
    };
    item_label(&tea);
    item_label(&cup);
    assert!(invalidate_tag("fields:category:cups").is_done());
    item_label(&tea);
    item_label(&cup);
    assert_eq!(ITEM_LOADS.load(SeqCst), 3, "only the cups item loads again");
    // `{{literal}}` renders as the text `{literal}`.
    assert!(invalidate_tag("fields:{literal}").is_done());
    item_label(&tea);
    item_label(&cup);
    assert_eq!(ITEM_LOADS.load(SeqCst), 5);

    let (a, b) = (Shop { tenant: "a".into() }, Shop { tenant: "b".into() });
    a.page(1);
    a.page(2);
    b.page(1);
    assert!(invalidate_tag("fields:tenant:a").is_done());
    a.page(1);
    a.page(2);
    b.page(1);
    assert_eq!(
        SHOP_LOADS.load(SeqCst),
        5,
        "tenant a's two pages load again"
    );
}

// --- Fencing: a load in flight when its tag is invalidated never publishes --------------------

static RACE: LazyLock<Race> = LazyLock::new(Race::new);

#[cached(key = "{key}", tags = ["race:all"])]
fn raced(key: u32) -> u32 {
    RACE.load(key)
}

/// 1,000 trials of [`Race::trials`]: zero stale values after the tag's invalidation.
#[test]
fn a_tag_invalidated_during_a_load_keeps_its_result_out() {
    if !common::backend_ready() {
        return;
    }
    let stale = RACE.trials(1_000, raced, || {
        assert!(invalidate_tag("race:all").is_done());
    });
    assert_eq!(stale, 0, "stale values served after the tag's invalidation");
}

static RACE_ASYNC: LazyLock<Race> = LazyLock::new(Race::new);

#[cached(key = "{key}", tags = ["race:async"])]
async fn raced_async(key: u32) -> u32 {
    RACE_ASYNC.load_blocking_in_place(key)
}

/// The same 1,000 trials for an async function (tasks on a multi-thread runtime).
#[test]
fn a_tag_invalidated_during_an_async_load_keeps_its_result_out() {
    if !common::backend_ready() {
        return;
    }
    let stale = RACE_ASYNC.trials_async(1_000, raced_async, || {
        assert!(invalidate_tag("race:async").is_done());
    });
    assert_eq!(stale, 0, "stale values served after the tag's invalidation");
}

// --- Async -----------------------------------------------------------------------------------

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 3600, key = "{id}", tags = ["async:user:{id}"])]
async fn user_name(id: u64) -> String {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    format!("user {id}")
}

#[tokio::test]
async fn async_functions_and_invalidate_tag_async() {
    if !common::backend_ready() {
        return;
    }
    user_name(1).await;
    user_name(2).await;
    user_name(1).await;
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2);
    assert!(invalidate_tag_async("async:user:1").await.is_done());
    user_name(1).await;
    user_name(2).await;
    assert_eq!(ASYNC_LOADS.load(SeqCst), 3);
    let both = ["async:user:1".to_owned(), "async:user:2".to_owned()];
    assert!(invalidate_tags_async(&both).await.is_done());
    user_name(1).await;
    user_name(2).await;
    assert_eq!(ASYNC_LOADS.load(SeqCst), 5);
}

// --- `f_refresh` records the tags too ----------------------------------------------------------

static REFRESHED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 3600, key = "{id}", tags = ["refreshed:{id}"])]
fn refreshed(id: u32) -> u32 {
    REFRESHED_LOADS.fetch_add(1, SeqCst) + id
}

#[test]
fn a_refreshed_entry_carries_its_tags() {
    if !common::backend_ready() {
        return;
    }
    refreshed_refresh(7);
    refreshed(7);
    assert_eq!(REFRESHED_LOADS.load(SeqCst), 1, "the refresh stored it");
    assert!(invalidate_tag("refreshed:7").is_done());
    refreshed(7);
    assert_eq!(REFRESHED_LOADS.load(SeqCst), 2, "and the tag drops it");
}
