//! The shop's SQLite database: its creation with deterministic data, the queries behind the
//! cached functions, and a counter of the queries that reached it.
//!
//! Every query goes through `with_connection`, which counts it ([`queries`]) and runs it on a
//! connection kept per thread (the handlers' `spawn_blocking` threads and the cache's
//! revalidation threads), with its prepared statements cached.

use std::cell::RefCell;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use crate::{BoxError, Lcg, Product, TopProduct, User};

/// How many rows [`create_database`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSize {
    /// Products, ids `1..=products`, spread over the [`CATEGORIES`].
    pub products: u32,
    /// Users, ids `1..=users`.
    pub users: u32,
    /// Orders, skewed towards low product ids (the best sellers).
    pub orders: u32,
}

impl DataSize {
    /// The service's database: 20,000 products, 50,000 users, 300,000 orders.
    pub const FULL: DataSize = DataSize {
        products: 20_000,
        users: 50_000,
        orders: 300_000,
    };

    /// A few hundred rows, for tests.
    pub const SMALL: DataSize = DataSize {
        products: 200,
        users: 100,
        orders: 2_000,
    };
}

/// The 40 product categories (URL-safe: they appear in `/categories/{c}/top`).
pub const CATEGORIES: [&str; 40] = [
    "audio",
    "automotive",
    "baby",
    "bags",
    "bath",
    "bedding",
    "books",
    "cameras",
    "camping",
    "clothing",
    "computers",
    "crafts",
    "cycling",
    "electronics",
    "fishing",
    "fitness",
    "furniture",
    "games",
    "garden",
    "grocery",
    "hardware",
    "health",
    "jewelry",
    "kitchen",
    "lighting",
    "movies",
    "music",
    "office",
    "outdoor",
    "party",
    "pets",
    "phones",
    "shoes",
    "sports",
    "tea",
    "tools",
    "toys",
    "travel",
    "video-games",
    "watches",
];

const ADJECTIVES: [&str; 16] = [
    "Blue", "Quiet", "Rapid", "Tiny", "Golden", "Sturdy", "Clever", "Wild", "Silver", "Humble",
    "Bright", "Cosy", "Bold", "Gentle", "Lucky", "Swift",
];
const NOUNS: [&str; 16] = [
    "Lamp", "Kettle", "Novel", "Drill", "Puzzle", "Record", "Shovel", "Mug", "Tent", "Camera",
    "Chair", "Scarf", "Clock", "Backpack", "Helmet", "Teapot",
];
const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Ken",
    "Radia",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Hedy",
    "Tim",
    "Katherine",
    "Leslie",
];
const LAST_NAMES: [&str; 16] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Thompson",
    "Perlman",
    "Knuth",
    "Allen",
    "Backus",
    "Hamilton",
    "Ritchie",
    "Lamarr",
    "Berners-Lee",
    "Johnson",
    "Lamport",
];

/// The database the queries use, set once by [`use_database`].
static DATABASE: OnceLock<PathBuf> = OnceLock::new();

/// Queries that reached the database (see [`queries`]).
static QUERIES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connection, opened at its first query.
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// How many queries reached the database since the process started: every load of a cached
/// function, every uncached read (mode `none`), every update, and the warming query.
pub fn queries() -> u64 {
    QUERIES.load(Relaxed)
}

/// Makes `path` the database of this process's queries. The cached functions take no
/// database argument, so there is one per process: a second call with another path fails.
pub fn use_database(path: &Path) -> Result<(), BoxError> {
    let set = DATABASE.get_or_init(|| path.to_path_buf());
    if set == path {
        Ok(())
    } else {
        Err(format!(
            "this process already uses the database {}, not {}",
            set.display(),
            path.display()
        )
        .into())
    }
}

/// Runs `query` on this thread's connection, and counts it. A connection whose query failed
/// is closed (the next query opens a new one).
pub(crate) fn with_connection<T>(
    query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, String> {
    QUERIES.fetch_add(1, Relaxed);
    let path = DATABASE
        .get()
        .ok_or("no database: create the AppState (or call db::use_database) first")?;
    let connection = match CONNECTION.take() {
        Some(connection) => connection,
        None => open(path).map_err(|e| format!("opening {}: {e}", path.display()))?,
    };
    let result = query(&connection);
    if result.is_ok() {
        CONNECTION.set(Some(connection));
    }
    result.map_err(|e| e.to_string())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // Readers never wait in WAL mode; a writer waits up to 5 s for another.
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
    crate::cart::create_table(&connection)?;
    Ok(connection)
}

fn to_u64(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}

/// The product `id` from a row of `name, category, price_cents`.
fn product_row(id: u64, r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id,
        name: r.get(0)?,
        category: r.get(1)?,
        price_cents: r.get(2)?,
    })
}

/// One product; `None` when there is no such id.
pub(crate) fn product(id: u64) -> Result<Option<Product>, String> {
    let Ok(key) = i64::try_from(id) else {
        return Ok(None);
    };
    with_connection(|db| {
        db.prepare_cached("SELECT name, category, price_cents FROM products WHERE id = ?1")?
            .query_row([key], |r| product_row(id, r))
            .optional()
    })
}

/// One user with their number of orders; `None` when there is no such id.
pub(crate) fn user(id: u64) -> Result<Option<User>, String> {
    let Ok(key) = i64::try_from(id) else {
        return Ok(None);
    };
    with_connection(|db| {
        db.prepare_cached(
            "SELECT u.name, u.email, u.created,
                    (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id)
               FROM users u WHERE u.id = ?1",
        )?
        .query_row([key], |r| {
            Ok(User {
                id,
                name: r.get(0)?,
                email: r.get(1)?,
                created: r.get(2)?,
                orders: r.get(3)?,
            })
        })
        .optional()
    })
}

/// The ten best sellers of a category by units sold: an aggregate over the category's orders
/// (thousands of rows on the full database).
pub(crate) fn top_in_category(category: &str) -> Result<Vec<TopProduct>, String> {
    with_connection(|db| {
        let mut statement = db.prepare_cached(
            "SELECT p.id, p.name, p.price_cents, SUM(o.qty) AS units
               FROM products p JOIN orders o ON o.product_id = p.id
              WHERE p.category = ?1
              GROUP BY p.id
              ORDER BY units DESC, p.id
              LIMIT 10",
        )?;
        let rows = statement.query_map([category], |r| {
            Ok(TopProduct {
                id: to_u64(r.get(0)?),
                name: r.get(1)?,
                price_cents: r.get(2)?,
                units_sold: r.get(3)?,
            })
        })?;
        rows.collect()
    })
}

/// The ids of the `limit` best-selling products, best first (one query over every order).
pub fn top_seller_ids(limit: u32) -> Result<Vec<u64>, String> {
    with_connection(|db| {
        let mut statement = db.prepare_cached(
            "SELECT product_id FROM orders
              GROUP BY product_id
              ORDER BY SUM(qty) DESC, product_id
              LIMIT ?1",
        )?;
        let rows = statement.query_map([limit], |r| r.get::<_, i64>(0).map(to_u64))?;
        rows.collect()
    })
}

/// Changes a product's name and/or price; the product as it is now, or `None` when there is
/// no such id. One statement (`UPDATE … RETURNING`).
pub(crate) fn update_product(
    id: u64,
    name: Option<&str>,
    price_cents: Option<i64>,
) -> Result<Option<Product>, String> {
    let Ok(key) = i64::try_from(id) else {
        return Ok(None);
    };
    with_connection(|db| {
        db.prepare_cached(
            "UPDATE products
                SET name = COALESCE(?2, name), price_cents = COALESCE(?3, price_cents)
              WHERE id = ?1
          RETURNING name, category, price_cents",
        )?
        .query_row(params![key, name, price_cents], |r| product_row(id, r))
        .optional()
    })
}

/// What is at a database path.
enum Found {
    /// Nothing, or an empty file.
    Nothing,
    /// A shop database of the requested size.
    Ready,
    /// A shop database of another size.
    OtherSize,
}

fn inspect(path: &Path, size: DataSize) -> Result<Found, BoxError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(format!("reading {}: {e}", path.display()).into()),
    };
    let mut header = Vec::with_capacity(16);
    file.take(16).read_to_end(&mut header)?;
    if header.is_empty() {
        return Ok(Found::Nothing);
    }
    let not_ours = || {
        format!(
            "{} is not a shop database: delete it, or point SHOP_DB elsewhere",
            path.display()
        )
    };
    if header.as_slice() != b"SQLite format 3\0" {
        return Err(not_ours().into());
    }
    let db = Connection::open(path)?;
    let counts = db.query_row(
        "SELECT (SELECT COUNT(*) FROM products), (SELECT COUNT(*) FROM users),
                (SELECT COUNT(*) FROM orders)",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    );
    let Ok(counts) = counts else {
        return Err(not_ours().into());
    };
    let wanted = (
        i64::from(size.products),
        i64::from(size.users),
        i64::from(size.orders),
    );
    Ok(if counts == wanted {
        Found::Ready
    } else {
        Found::OtherSize
    })
}

/// Opens the shop database at `path` if it is there with the row counts of `size`, and creates
/// it otherwise (also over a shop database of another size). Returns whether it was created.
/// A file at `path` that is not a shop database is an error, never overwritten.
pub fn open_or_create(path: &Path, size: DataSize) -> Result<bool, BoxError> {
    match inspect(path, size)? {
        Found::Ready => Ok(false),
        Found::Nothing | Found::OtherSize => {
            create_database(path, size)?;
            Ok(true)
        }
    }
}

/// `path` with `suffix` appended to its file name (`shop.db` → `shop.db-wal`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database file and its WAL files, if they are there.
fn remove_database_files(path: &Path) -> std::io::Result<()> {
    for file in [
        path.to_path_buf(),
        beside(path, "-wal"),
        beside(path, "-shm"),
    ] {
        match fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Creates the shop's database at `path` (replacing what is there) with `size` rows of
/// deterministic pseudo-random data: the same rows on every run. It is written to a file
/// beside `path` in one transaction with prepared statements, indexed, and then renamed to
/// `path`, so a reader never sees a half-made database.
pub fn create_database(path: &Path, size: DataSize) -> Result<(), BoxError> {
    let building = beside(path, &format!(".building-{}", std::process::id()));
    remove_database_files(&building)?;
    let result = build(&building, size);
    if let Err(e) = result {
        let _ = remove_database_files(&building);
        return Err(e);
    }
    remove_database_files(path)?;
    fs::rename(&building, path)?;
    Ok(())
}

fn build(path: &Path, size: DataSize) -> Result<(), BoxError> {
    let mut db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = MEMORY;
         PRAGMA synchronous = OFF;
         CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                category TEXT NOT NULL, price_cents INTEGER NOT NULL);
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
                             created INTEGER NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
                              product_id INTEGER NOT NULL, qty INTEGER NOT NULL,
                              created INTEGER NOT NULL);",
    )?;
    let tx = db.transaction()?;
    fill(&tx, size)?;
    tx.execute_batch(
        "CREATE INDEX products_category ON products (category);
         CREATE INDEX orders_product ON orders (product_id);
         CREATE INDEX orders_user ON orders (user_id);
         ANALYZE;",
    )?;
    tx.commit()?;
    // WAL: readers never wait for the writer. The mode is kept in the file.
    db.execute_batch("PRAGMA journal_mode = WAL;")?;
    db.close().map_err(|(_, e)| e)?;
    Ok(())
}

fn fill(tx: &Transaction<'_>, size: DataSize) -> rusqlite::Result<()> {
    let mut rng = Lcg::new(0x5409_0000_2024_0001);
    {
        let mut insert = tx.prepare(
            "INSERT INTO products (id, name, category, price_cents) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for id in 1..=i64::from(size.products) {
            let name = format!(
                "{} {} {id}",
                ADJECTIVES[rng.index(ADJECTIVES.len())],
                NOUNS[rng.index(NOUNS.len())]
            );
            let category = CATEGORIES[rng.index(CATEGORIES.len())];
            let price_cents = 199 + rng.below(49_800).cast_signed();
            insert.execute(params![id, name, category, price_cents])?;
        }
    }
    {
        let mut insert =
            tx.prepare("INSERT INTO users (id, name, email, created) VALUES (?1, ?2, ?3, ?4)")?;
        for id in 1..=i64::from(size.users) {
            let name = format!(
                "{} {}",
                FIRST_NAMES[rng.index(FIRST_NAMES.len())],
                LAST_NAMES[rng.index(LAST_NAMES.len())]
            );
            let email = format!("user{id}@example.com");
            let created = 1_500_000_000 + rng.below(200_000_000).cast_signed();
            insert.execute(params![id, name, email, created])?;
        }
    }
    {
        let mut insert = tx.prepare(
            "INSERT INTO orders (id, user_id, product_id, qty, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let products = u64::from(size.products);
        for id in 1..=i64::from(size.orders) {
            // u³ (u uniform in [0, 1), 20 bits) crowds the orders onto low product ids: a few
            // best sellers, a long tail.
            let u = rng.below(1 << 20);
            let cubed = (((u * u) >> 20) * u) >> 20;
            let product = 1 + ((cubed * products) >> 20).cast_signed();
            let user = 1 + rng.below(u64::from(size.users)).cast_signed();
            let qty = 1 + rng.below(4).cast_signed();
            let created = 1_700_000_000 + rng.below(31_536_000).cast_signed();
            insert.execute(params![id, user, product, qty, created])?;
        }
    }
    Ok(())
}
