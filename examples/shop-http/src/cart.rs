//! Users' carts: `GET /users/{id}/cart` (cached by `cart`) and `POST /users/{id}/cart/items`
//! (which changes a cart in SQLite **without invalidating** the cache: the shop's deliberately
//! bad candidate, which `verify` catches and `GET /caches` flags).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cache_runtime::http::no_store;
use rusqlite::Connection;
use serde::Deserialize;
use tokio::task::spawn_blocking;

use crate::{AppState, CartItem, Mode, db, memory};
#[cfg(feature = "redis")]
use crate::{redis, tiered};

/// Creates the carts' table if the database has none (databases made before carts existed).
pub(crate) fn create_table(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS cart_items (user_id INTEGER NOT NULL,
             product_id INTEGER NOT NULL, qty INTEGER NOT NULL,
             PRIMARY KEY (user_id, product_id));",
    )
}

/// The items of `user`'s cart, by product.
pub(crate) fn items(user: u64) -> Result<Vec<CartItem>, String> {
    let Ok(user) = i64::try_from(user) else {
        return Ok(Vec::new());
    };
    db::with_connection(|db| {
        let mut statement = db.prepare_cached(
            "SELECT product_id, qty FROM cart_items WHERE user_id = ?1 ORDER BY product_id",
        )?;
        let rows = statement.query_map([user], |r| {
            Ok(CartItem {
                product_id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or_default(),
                qty: r.get(1)?,
            })
        })?;
        rows.collect()
    })
}

/// Adds `qty` of a product to `user`'s cart.
fn add(user: u64, item: &CartItem) -> Result<(), String> {
    let (Ok(user), Ok(product)) = (i64::try_from(user), i64::try_from(item.product_id)) else {
        return Err("ids must fit in 63 bits".into());
    };
    db::with_connection(|db| {
        db.prepare_cached(
            "INSERT INTO cart_items (user_id, product_id, qty) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, product_id) DO UPDATE SET qty = qty + excluded.qty",
        )?
        .execute((user, product, item.qty))
        .map(|_| ())
    })
}

/// The cart of `user` through the mode's cache (or SQLite, in mode `none`). Blocking.
fn by_mode(mode: Mode, user: u64) -> Result<Vec<CartItem>, String> {
    match mode {
        Mode::Uncached => memory::cart_uncached(user),
        Mode::Memory => memory::cart(user),
        #[cfg(feature = "redis")]
        Mode::Redis => redis::cart(user),
        #[cfg(feature = "redis")]
        Mode::Tiered => tiered::cart(user),
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    no_store(status, HeaderValue::from_static("application/json"), body).into_response()
}

fn problem(status: StatusCode, message: &str) -> Response {
    json(status, format!("{{\"error\":{message:?}}}").into_bytes())
}

/// `GET /users/{id}/cart`: the cart as JSON (`no-store`: a cart is not for HTTP caches).
pub(crate) async fn get_cart(State(state): State<AppState>, Path(user): Path<u64>) -> Response {
    let mode = state.mode();
    match spawn_blocking(move || by_mode(mode, user)).await {
        Ok(Ok(items)) => json(
            StatusCode::OK,
            serde_json::to_vec(&items).unwrap_or_default(),
        ),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The body of `POST /users/{id}/cart/items`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    product_id: u64,
    qty: i64,
}

/// `POST /users/{id}/cart/items` with `{"product_id": 5, "qty": 1}`: adds to the cart in
/// SQLite and, deliberately, invalidates nothing (see the module's docs); `204`.
pub(crate) async fn post_cart_item(Path(user): Path<u64>, body: Bytes) -> Response {
    let item = match serde_json::from_slice::<NewItem>(&body) {
        Ok(item) if (1..=1_000).contains(&item.qty) => CartItem {
            product_id: item.product_id,
            qty: item.qty,
        },
        Ok(_) => return problem(StatusCode::BAD_REQUEST, "`qty` must be 1 to 1000"),
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("bad JSON: {e}")),
    };
    match spawn_blocking(move || add(user, &item)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
