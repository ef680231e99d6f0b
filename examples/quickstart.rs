//! Quickstart: cache-aside over a real SQLite database, with no server to run.
//!
//! A small shop keeps products, users and 300,000 orders in an embedded SQLite file. Two
//! slow queries (aggregates over every order, tens of milliseconds each) are cached with
//! `#[cached]`. The program shows a miss against a hit, 100 concurrent callers causing one
//! query, a missing user cached as a null, an update followed by `_invalidate`, a price change
//! that drops a product, its category's listing and the best sellers with one
//! `invalidate_tags` call, the same slow query through a cache held as a value (`Cache`), a
//! batch of product names loaded with one query, and the stats of the caches.
//!
//! Run it with `cargo run --example quickstart`.

#![allow(clippy::print_stdout, reason = "an example program prints its results")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Barrier, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cache_runtime::{Cache, CacheHandle, cached, invalidate_tags};
use rusqlite::{Connection, OptionalExtension, params};

const PRODUCTS: i64 = 200;
const USERS: i64 = 2_000;
const ORDERS: i64 = 300_000;

/// Where the database lives; set once by `main`.
static DB: OnceLock<PathBuf> = OnceLock::new();
/// How many queries reached the database.
static QUERIES: AtomicU32 = AtomicU32::new(0);

fn connect() -> rusqlite::Result<Connection> {
    QUERIES.fetch_add(1, Relaxed);
    let path = DB.get().expect("main sets the database path first");
    Connection::open(path)
}

/// A product with its sales, as the catalog page shows it. (`Serialize`/`Deserialize` let the
/// same code run on Redis when the `redis` feature is on.)
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct ProductSales {
    name: String,
    category: String,
    price_cents: i64,
    units_sold: i64,
}

/// A user's profile with their order history summed up.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Profile {
    name: String,
    email: String,
    orders: i64,
    units: i64,
}

/// The best sellers: an aggregate over every order. Errors are returned, never cached. Tagged
/// `catalog`: the catalog page, which a product change drops.
#[cached(ttl = "5m", name = "catalog:top", tags = ["catalog"])]
fn top_products(limit: u32) -> rusqlite::Result<Vec<ProductSales>> {
    let db = connect()?;
    let mut stmt = db.prepare(
        "SELECT p.name, p.category, p.price_cents, s.units
           FROM (SELECT product_id, SUM(quantity) AS units FROM orders GROUP BY product_id) s
           JOIN products p ON p.id = s.product_id
          ORDER BY s.units DESC, p.id
          LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(ProductSales {
            name: r.get(0)?,
            category: r.get(1)?,
            price_cents: r.get(2)?,
            units_sold: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// One product's page: tagged with the product, so that its change drops it.
#[cached(ttl = "10m", key = "{id}", name = "product", tags = ["product:{id}"])]
fn product_page(id: i64) -> rusqlite::Result<Option<(String, String, i64)>> {
    connect()?
        .query_row(
            "SELECT name, category, price_cents FROM products WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
}

/// A category's cheapest products: tagged with the category.
#[cached(ttl = "10m", key = "{category}", name = "category", tags = ["category:{category}"])]
fn category_listing(category: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let db = connect()?;
    let mut stmt = db.prepare(
        "SELECT name, price_cents FROM products WHERE category = ?1 ORDER BY price_cents LIMIT 3",
    )?;
    let rows = stmt.query_map([category], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A user's profile; a user that does not exist is `None`, cached for `null_ttl`.
/// (`orders.user_id` has no index, so the query scans every order: tens of milliseconds.)
#[cached(ttl = "10m", null_ttl = "1m", key = "{id}", name = "user:profile")]
fn user_profile(id: i64) -> rusqlite::Result<Option<Profile>> {
    query_profile(id)
}

/// The same query, cached through a value instead of an attribute: the key need not be a
/// function's arguments (an HTTP request, a message).
static PROFILES: LazyLock<Cache<i64, Option<Profile>>> = LazyLock::new(|| {
    Cache::builder("user:profile:held")
        .ttl(Duration::from_secs(600))
        .null_ttl(Duration::from_secs(60))
        .build()
        .expect("valid settings")
});

/// Product names, loaded many at once.
static NAMES: LazyLock<Cache<i64, String>> = LazyLock::new(|| {
    Cache::builder("product:name")
        .ttl(Duration::from_secs(600))
        .build()
        .expect("valid settings")
});

/// The names of the products `ids`, in one query.
fn query_names(ids: &[i64]) -> rusqlite::Result<HashMap<i64, String>> {
    let db = connect()?;
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut stmt = db.prepare(&format!(
        "SELECT id, name FROM products WHERE id IN ({list})"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A user's profile with their order history, from the database.
fn query_profile(id: i64) -> rusqlite::Result<Option<Profile>> {
    let db = connect()?;
    db.query_row(
        "WITH s AS MATERIALIZED (SELECT COUNT(*) AS orders, COALESCE(SUM(quantity), 0) AS units
                                   FROM orders WHERE user_id = ?1)
         SELECT u.name, u.email, s.orders, s.units FROM s CROSS JOIN users u WHERE u.id = ?1",
        [id],
        |r| {
            Ok(Profile {
                name: r.get(0)?,
                email: r.get(1)?,
                orders: r.get(2)?,
                units: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Creates the shop's database with deterministic pseudo-random data.
fn create_database(path: &PathBuf) -> rusqlite::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price_cents INTEGER);
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER, user_id INTEGER,
                              quantity INTEGER);",
    )?;
    let tx = db.transaction()?;
    let categories = ["books", "games", "garden", "kitchen", "music", "tools"];
    let adjectives = [
        "Blue", "Quiet", "Rapid", "Tiny", "Golden", "Sturdy", "Clever", "Wild",
    ];
    let nouns = [
        "Lamp", "Kettle", "Novel", "Drill", "Puzzle", "Record", "Shovel", "Mug",
    ];
    for id in 1..=PRODUCTS {
        let i = id as usize;
        let name = format!("{} {} #{id}", adjectives[i % 8], nouns[(i / 8) % 8]);
        tx.execute(
            "INSERT INTO products VALUES (?1, ?2, ?3, ?4)",
            params![id, name, categories[i % 6], 499 + (id * 37) % 5000],
        )?;
    }
    let first = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Donald",
    ];
    for id in 1..=USERS {
        let name = format!("{} {}", first[id as usize % 8], id);
        let email = format!("user{id}@example.com");
        tx.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3)",
            params![id, name, email],
        )?;
    }
    {
        let mut insert = tx.prepare("INSERT INTO orders VALUES (?1, ?2, ?3, ?4)")?;
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        };
        for id in 1..=ORDERS {
            // Skewed towards low product ids, so that best sellers stand out.
            let product = 1 + next(PRODUCTS).min(next(PRODUCTS));
            insert.execute(params![id, product, 1 + next(USERS), 1 + next(4)])?;
        }
    }
    tx.commit()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 0.1 {
        format!("{:>7.1} µs", ms * 1000.0)
    } else {
        format!("{ms:>7.1} ms")
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn print_stats(cache: &CacheHandle) {
    let s = cache.stats();
    println!(
        "  {:<18} hits {:>3}  null hits {:>2}  misses {:>2}  loads {:>2}  waits {:>3}  errors {}",
        cache.name(),
        s.hits,
        s.null_hits,
        s.misses,
        s.loads,
        s.waits,
        s.load_errors
    );
}

fn main() -> rusqlite::Result<()> {
    let path = std::env::temp_dir().join(format!(
        "cache-runtime-quickstart-{}.db",
        std::process::id()
    ));
    let (built, took) = timed(|| create_database(&path));
    built?;
    DB.set(path.clone()).expect("set once");
    println!("cache-runtime quickstart: a shop in SQLite, cached with #[cached]\n");
    println!(
        "database {} ({PRODUCTS} products, {USERS} users, {ORDERS} orders), built in {}\n",
        path.display(),
        ms(took).trim()
    );

    println!("1. Cache-aside: the first call queries, the next is served from memory");
    let (top, miss) = timed(|| top_products(5));
    let top = top?;
    let (_, hit) = timed(|| top_products(5));
    println!("  top_products(5)  miss {}   (query ran)", ms(miss));
    println!(
        "  top_products(5)  hit  {}   ({:.0}x faster)",
        ms(hit),
        miss.as_secs_f64() / hit.as_secs_f64()
    );
    for p in &top {
        println!(
            "     {:<18} {:<8} ${:>6.2}  {:>5} sold",
            p.name,
            p.category,
            p.price_cents as f64 / 100.0,
            p.units_sold
        );
    }

    println!("\n2. Stampede protection: 100 threads ask for the same cold key at once");
    let before = QUERIES.load(Relaxed);
    let barrier = Arc::new(Barrier::new(100));
    let (names, took) = timed(|| {
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    user_profile(42).map(|p| p.map(|p| p.name))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .collect::<Vec<_>>()
    });
    let same = names.iter().all(|n| n == &names[0]);
    println!(
        "  user_profile(42) x 100 callers: {} query, {} answers, all the same: {same}, in {}",
        QUERIES.load(Relaxed) - before,
        names.len(),
        ms(took).trim()
    );

    println!("\n3. Null caching: a user that does not exist is cached as None");
    let before = QUERIES.load(Relaxed);
    let (first, miss) = timed(|| user_profile(999_999));
    let (second, hit) = timed(|| user_profile(999_999));
    println!(
        "  user_profile(999999) -> {:?}  miss {}",
        first?.map(|p| p.name),
        ms(miss)
    );
    println!(
        "  user_profile(999999) -> {:?}  hit  {}",
        second?.map(|p| p.name),
        ms(hit)
    );
    println!(
        "  queries for the missing user: {}",
        QUERIES.load(Relaxed) - before
    );

    println!("\n4. Invalidation: rename user 42, then drop the cached profile");
    let show = |label: &str| -> rusqlite::Result<()> {
        let p = user_profile(42)?.expect("user 42 exists");
        println!(
            "  {label:<35} {} <{}>, {} orders, {} units",
            p.name, p.email, p.orders, p.units
        );
        Ok(())
    };
    show("cached:")?;
    connect()?.execute("UPDATE users SET name = 'Ada Lovelace' WHERE id = 42", [])?;
    show("after UPDATE (stale):")?;
    assert!(
        user_profile_invalidate(42).is_done(),
        "in process, always done"
    );
    show("after user_profile_invalidate(42):")?;

    println!("\n5. Tags: a price cut drops the product, its listing and the catalog, in one call");
    let (name, category, price) = product_page(7)?.expect("product 7 exists");
    let cheapest = |c: &str| -> rusqlite::Result<String> {
        let list = category_listing(c)?;
        let shown: Vec<String> = list
            .iter()
            .map(|(n, p)| format!("{n} ${:.2}", *p as f64 / 100.0))
            .collect();
        Ok(shown.join(", "))
    };
    let dollars = |cents: i64| cents as f64 / 100.0;
    println!(
        "  {name} ({category}) ${:.2}; cheapest {category}: {}",
        dollars(price),
        cheapest(&category)?
    );
    product_page(8)?; // another product's page, cached
    connect()?.execute("UPDATE products SET price_cents = 99 WHERE id = 7", [])?;
    let tags = [
        "product:7".to_owned(),
        format!("category:{category}"),
        "catalog".to_owned(),
    ];
    let done = invalidate_tags(&tags);
    assert!(done.is_done(), "in process, always done");
    let before = QUERIES.load(Relaxed);
    let (_, _, price) = product_page(7)?.expect("product 7 exists");
    println!(
        "  after UPDATE and invalidate_tags({tags:?}): ${:.2}; cheapest {category}: {}",
        dollars(price),
        cheapest(&category)?
    );
    top_products(5)?;
    product_page(8)?;
    println!(
        "  {} queries: product 7, its listing and the best sellers; product 8 stays cached",
        QUERIES.load(Relaxed) - before
    );

    println!("\n6. A cache you hold: the same query through `Cache`, and a batch of names");
    let before = QUERIES.load(Relaxed);
    let (first, miss) = timed(|| PROFILES.try_get_or_load(42, || query_profile(42)));
    let (_, hit) = timed(|| PROFILES.try_get_or_load(42, || query_profile(42)));
    println!(
        "  PROFILES.try_get_or_load(42) -> {:?}  miss {}, hit {}",
        first?.map(|p| p.name),
        ms(miss).trim(),
        ms(hit).trim()
    );
    NAMES.get_or_load(3, || "cached before".to_owned());
    let ids = [1, 2, 3, 4, 5];
    let queried = QUERIES.load(Relaxed);
    let (names, took) = timed(|| NAMES.try_get_many_or_load(ids, query_names));
    let names = names?;
    println!(
        "  NAMES.try_get_many_or_load({ids:?}): {} names, {} query for the 4 missing, in {}",
        names.len(),
        QUERIES.load(Relaxed) - queried,
        ms(took).trim()
    );
    let queried = QUERIES.load(Relaxed);
    NAMES.try_get_many_or_load(ids, query_names)?;
    println!(
        "  again: {} queries; all queries of this step: {}",
        QUERIES.load(Relaxed) - queried,
        QUERIES.load(Relaxed) - before
    );

    println!("\n7. Stats");
    print_stats(top_products_cache());
    print_stats(user_profile_cache());
    print_stats(product_page_cache());
    print_stats(category_listing_cache());
    print_stats(PROFILES.handle());
    print_stats(NAMES.handle());
    println!("  queries that reached SQLite: {}", QUERIES.load(Relaxed));

    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    Ok(())
}
