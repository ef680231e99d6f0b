//! Redis's change feed for the engine's L1 (`backend = "tiered"`, `engine/l1.rs`): the
//! invalidation log that keeps every process's L1 honest, and the gate that says when the L1
//! may answer.
//!
//! On Redis Cluster the reader has a cluster connection of its own (its `XREAD` goes to the
//! stream's node; the restart check asks that node's `run_id`), and an invalidation deletes the
//! key and appends as two commands (the stream lives on another slot).
//!
//! **The log.** Every explicit change of a tiered cache — `f_invalidate`, `f_refresh`,
//! `clear()` — appends one entry to a capped Redis Stream, `{prefix}cache-runtime:invalidations`
//! (`XADD … MAXLEN ~ 10000`, then `PEXPIRE` of 7 days, in one script; an invalidation deletes
//! the key and appends in the same script). Plain loads append nothing. The stream is gone a
//! week after its last append: a reader that comes back to find it gone, or made anew, may
//! have lost entries and drops every L1 (`resume`); a reader that follows it meanwhile reads
//! on from its last id in the new stream (whose ids are later). Each process reads the stream
//! with `XREAD BLOCK` on a connection of its own, from the last id it saw: the log is ordered
//! and resumable, unlike pub/sub. An entry names its origin (a random id per process: a
//! process ignores its own), the cache and the rendered Redis key (`*` for `clear()`);
//! receiving it drops the L1 copy (no Redis read). An `invalidate_tag` appends the tag with an
//! empty cache name; receiving it moves the tag's version on in this process, which ends every
//! L1 copy carrying it (`tags.rs`).
//!
//! **When the L1 may answer.** Only while the reader is caught up: each `XREAD` returns within
//! 100 ms (its `BLOCK`), and the L1 answers until 200 ms after the last one returned (read on
//! the cache clock, which reads the real clock near that deadline: a process starved of CPU
//! for longer than the clock's 64 ms slack can answer late by the excess). A reader
//! that lost its connection stops the L1 at once (hits go to Redis); when it reconnects it
//! reads on from its last id, and if that id fell off the stream (trimmed, or Redis restarted
//! without it) it drops every L1 first. So an L1 copy is never served after an invalidation
//! was acknowledged to its caller, beyond the reader's lag.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use redis::Value;

use super::conn::{Conn, Redis, StoreError};
use super::gate;
use super::lease::ms;
use super::tracking::Echo;
use crate::clock;
use crate::config;

/// How long one `XREAD` blocks.
const BLOCK_MS: u64 = 100;
/// How long after the reader's last return the L1 may answer: the next `XREAD` returns within
/// `BLOCK_MS` on a live connection, so a connection that died without a word stops the L1
/// within this. At least the cache clock's slack (64 ms) beyond `BLOCK_MS`, so that the hit
/// path decides on the coarse clock alone while the reader keeps up.
const VALID_MS: u64 = BLOCK_MS + 100;
/// Entries read per `XREAD`.
const READ_COUNT: usize = 512;
/// About how many entries the stream keeps.
const MAX_LEN: &str = "10000";
/// How long the stream lives after its last append (each append renews it).
const STREAM_LIFE: Duration = Duration::from_secs(7 * 24 * 3600);

/// One change to append: the cache's name and the rendered key (`*` for all of it).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) cache: String,
    pub(crate) key: String,
}

/// This process's id in the log, and its reader's state.
struct Log {
    /// A random id: entries of this process are skipped by its own reader.
    origin: String,
    /// Started once, at the first tiered cache.
    reader: OnceLock<()>,
}

static LOG: LazyLock<Log> = LazyLock::new(|| Log {
    origin: format!("{:016x}", fastrand::u64(..)),
    reader: OnceLock::new(),
});

/// The stream's key, under the current key prefix.
pub(crate) fn stream_key() -> String {
    format!(
        "{}cache-runtime:invalidations",
        config::current().key_prefix
    )
}

/// Starts the log reader, once per process (at the first tiered cache).
pub(crate) fn start_reader(redis: &'static Redis) {
    LOG.reader.get_or_init(|| redis.background(read(redis)));
}

/// The arguments of an appended entry, as [`APPEND`] and [`INVALIDATE_LOGGED`] take them: the
/// fields `o` (origin), `c` (cache) and `k` (key), then the stream's length and lifetime.
fn entry_args<'a>(change: &'a Change, life: &'a [u8]) -> [&'a [u8]; 5] {
    [
        LOG.origin.as_bytes(),
        change.cache.as_bytes(),
        change.key.as_bytes(),
        MAX_LEN.as_bytes(),
        life,
    ]
}

/// Appends the change (`ARGV[1..3]`: origin, cache, key) to the log (`KEYS[1]`, about
/// `ARGV[4]` entries kept) and renews its lifetime (`ARGV[5]` ms).
static APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'o', ARGV[1], 'c', ARGV[2], 'k', ARGV[3])
         redis.call('PEXPIRE', KEYS[1], ARGV[5])
         return 1",
    )
});

/// Deletes the value and lock keys and appends the change (`KEYS[3]`, arguments as in
/// [`APPEND`]), in one script.
static INVALIDATE_LOGGED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('DEL', KEYS[1], KEYS[2])
         redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'o', ARGV[1], 'c', ARGV[2], 'k', ARGV[3])
         redis.call('PEXPIRE', KEYS[3], ARGV[5])
         return 1",
    )
});

/// `f_invalidate` of a tiered cache: the keys deleted and the change appended, atomically.
pub(crate) async fn invalidate(
    redis: &Redis,
    value: &str,
    lock: &str,
    change: &Change,
) -> Result<(), StoreError> {
    if redis.is_cluster() {
        // The log lives on another slot: the keys deleted first, then the change appended
        // (kept and replayed whole if the append fails).
        super::lease::invalidate(redis, value, lock).await?;
        return append(redis, change).await;
    }
    let (stream, life) = (stream_key(), ms(STREAM_LIFE));
    let args = entry_args(change, &life);
    redis
        .eval::<i64>(&INVALIDATE_LOGGED, &[value, lock, stream.as_str()], &args)
        .await
        .map(drop)
}

/// Lua: sets the tag key `key` to the version `v`, keeping the lifetime it has left (loads gave
/// it what their entries need, and the loads that follow the invalidation need as much: none
/// has to renew it, a write every tiered process is told of), or for `life` ms if that is
/// longer (a missing key, or one without a lifetime), or if `PTTL` is not allowed (`pcall`, as
/// in `lease.rs`). `KEEPTTL`: Redis 6.
const SET_VERSION: &str = r#"
local function set_version(key, v, life)
  local left = redis.pcall('PTTL', key)
  if type(left) == 'number' and left >= tonumber(life) then
    redis.call('SET', key, v, 'KEEPTTL')
  else
    redis.call('SET', key, v, 'PX', life)
  end
end
"#;

/// Sets each tag key (`KEYS[2..]`) to the fresh version `ARGV[3]` (for at least `ARGV[4]` ms,
/// [`SET_VERSION`]) and appends each tag (`ARGV[6..]`) to the log (`KEYS[1]`, `ARGV[1]` the
/// origin, about `ARGV[2]` entries kept; `c` empty, `k` the tag), whose lifetime it renews
/// (`ARGV[5]` ms), in one script.
static INVALIDATE_TAGS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{SET_VERSION}
         for i = 2, #KEYS do
           set_version(KEYS[i], ARGV[3], ARGV[4])
           redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'o', ARGV[1], 'c', '', 'k', ARGV[i + 4])
         end
         redis.call('PEXPIRE', KEYS[1], ARGV[5])
         return 1"
    ))
});

/// On Redis Cluster, one tag key of an invalidation (`KEYS[1]`): set to `ARGV[1]` for at least
/// `ARGV[2]` ms ([`SET_VERSION`]).
static SET_TAG: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{SET_VERSION}
         set_version(KEYS[1], ARGV[1], ARGV[2])
         return 1"
    ))
});

/// `invalidate_tags`: the tag keys `keys` of `names` moved to the version `version`, and the
/// tags appended to the log for every process's L1, atomically. A tag key keeps the lifetime
/// it had, or lives at least `tag_life(0)` (an hour, `lease.rs`) unless a load records it:
/// entries that recorded the version it replaces are misses whether it is there or not.
pub(crate) async fn invalidate_tags(
    redis: &Redis,
    keys: &[String],
    names: &[String],
    version: &[u8],
) -> Result<(), StoreError> {
    let stream = stream_key();
    let tag_life = ms(super::lease::tag_life(Duration::ZERO));
    if redis.is_cluster() {
        // Tag keys and the log live on several slots: each command on its node, the versions
        // first (an invalidation that fails after them is kept and replayed whole).
        let set = |key: &String| {
            let (key, args): (String, [&[u8]; 2]) = (key.clone(), [version, tag_life.as_slice()]);
            async move { redis.eval::<i64>(&SET_TAG, &[key.as_str()], &args).await }
        };
        for done in futures_util::future::join_all(keys.iter().map(set)).await {
            done?;
        }
        for name in names {
            let change = Change {
                cache: String::new(),
                key: name.clone(),
            };
            append(redis, &change).await?;
        }
        return Ok(());
    }
    let mut all_keys = vec![stream.as_str()];
    all_keys.extend(keys.iter().map(String::as_str));
    let stream_life = ms(STREAM_LIFE);
    let mut args: Vec<&[u8]> = vec![
        LOG.origin.as_bytes(),
        MAX_LEN.as_bytes(),
        version,
        tag_life.as_slice(),
        stream_life.as_slice(),
    ];
    args.extend(names.iter().map(|n| n.as_bytes()));
    redis
        .eval::<i64>(&INVALIDATE_TAGS, &all_keys, &args)
        .await
        .map(drop)
}

/// The script of one invalidation of `names` (also what a kept one replays).
pub(crate) async fn invalidate_tags_now(redis: &Redis, names: &[String]) -> Result<(), StoreError> {
    if names.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = names.iter().map(|n| super::tag_key(n)).collect();
    // This process's tiered caches are not told of these writes by their own reports (the
    // tags moved on here already).
    let version = super::fresh();
    let _echoes: Vec<Echo> = names
        .iter()
        .zip(&keys)
        .filter_map(|(name, key)| Echo::tag(name, key, &version))
        .collect();
    invalidate_tags(redis, &keys, names, &version).await
}

/// Appends a change (after `f_refresh` wrote, or `clear()` deleted), and renews the log's
/// lifetime.
pub(crate) async fn append(redis: &Redis, change: &Change) -> Result<(), StoreError> {
    let (stream, life) = (stream_key(), ms(STREAM_LIFE));
    let args = entry_args(change, &life);
    redis
        .eval::<i64>(&APPEND, &[stream.as_str()], &args)
        .await
        .map(drop)
}

/// An entry id, `<ms>-<seq>`, as a pair that orders like the stream.
fn id_of(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The entries of an `XRANGE`/`XREAD` stream part: `(id, fields)`.
fn entries(v: &Value) -> Vec<(String, HashMap<String, String>)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let [id, Value::Array(kv)] = pair.as_slice() else {
                return None;
            };
            let fields = kv
                .chunks(2)
                .filter_map(|c| Some((text(c.first()?)?, text(c.get(1)?)?)))
                .collect();
            Some((text(id)?, fields))
        })
        .collect()
}

/// The reader: for the life of the process, reads the log from the last id seen and drops
/// what other processes changed; after an error, stops the L1, reconnects, and resumes (or
/// drops every L1 if entries were lost).
async fn read(redis: &'static Redis) {
    let mut last: Option<String> = None;
    let mut server: Option<String> = None;
    loop {
        let answer_within = Duration::from_millis(BLOCK_MS + 200);
        if let Ok(mut con) = redis.own_connection(answer_within).await {
            let _ = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg("cache-runtime-log")
                .query_async::<Value>(&mut con)
                .await;
            if let Ok(from) = resume(&mut con, last.as_deref(), &mut server).await {
                last = Some(from);
                follow(&mut con, &mut last).await;
            }
        }
        gate::log_lost();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `run_id` of the server behind `con` (on a cluster, of the primary holding the stream):
/// another one after a restart, or a failover.
async fn run_id(con: &mut Conn) -> Result<String, redis::RedisError> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server");
    let info: String = match con {
        Conn::Cluster(cluster) => {
            use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
            let route = Route::with_key(stream_key(), SlotAddr::Master);
            let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
            redis::from_redis_value(cluster.route_command(cmd, to).await?)?
        }
        other => cmd.query_async(other).await?,
    };
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// Where to read from after a (re)connection: the last id seen, if the same server still holds
/// what follows it; otherwise (the server restarted, or the stream was trimmed past it) every
/// L1 is dropped and reading starts at the stream's end.
async fn resume(
    con: &mut Conn,
    last: Option<&str>,
    server: &mut Option<String>,
) -> Result<String, redis::RedisError> {
    let stream = stream_key();
    let id = run_id(con).await?;
    let restarted = server.as_ref().is_some_and(|s| *s != id);
    let newest: Value = redis::cmd("XREVRANGE")
        .arg(&stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(con)
        .await?;
    let end = entries(&newest)
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
    // Only once this resume succeeds is the new server known (a failed one is asked again).
    let mut known = || *server = Some(id.clone());
    let Some(last) = last else {
        known();
        // The first connection: copies made before it may have missed changes (the L1 did not
        // answer meanwhile, but copies were kept): drop them, and read from the end.
        gate::drop_everything();
        return Ok(end);
    };
    let oldest: Value = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(con)
        .await?;
    let first = entries(&oldest).into_iter().next().map(|(id, _)| id);
    let trimmed = match (first.as_deref().and_then(id_of), id_of(last)) {
        // Entries after `last` were trimmed away.
        (Some(first), Some(last)) => first > (last.0, last.1.saturating_add(1)),
        // An empty stream has lost nothing after `last` only if nothing came after it.
        (None, Some(_)) => last != end,
        (_, None) => true,
    };
    if restarted || trimmed {
        tracing::warn!(
            "cache-runtime: the invalidation log lost entries while this process was not \
             reading it; every tiered cache's L1 is dropped"
        );
        gate::drop_everything();
        known();
        return Ok(end);
    }
    known();
    Ok(last.to_owned())
}

/// Reads on until an error: drops what each entry names, and keeps the L1 valid while the
/// reads keep returning.
async fn follow(con: &mut Conn, last: &mut Option<String>) {
    let stream = stream_key();
    loop {
        let from = last.clone().unwrap_or_else(|| "$".to_owned());
        let reply: Result<Value, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&from)
            .query_async(con)
            .await;
        let Ok(reply) = reply else {
            return;
        };
        // RESP2: `[[stream, entries]]`; RESP3: `{stream: entries}`; nil when nothing came.
        let parts: Vec<&Value> = match &reply {
            Value::Nil => Vec::new(),
            Value::Array(streams) => streams
                .iter()
                .filter_map(|s| match s {
                    Value::Array(pair) => pair.get(1),
                    _ => None,
                })
                .collect(),
            Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
            // Not a reply this reader understands: stop the L1 rather than miss changes.
            _ => return,
        };
        let mut read = 0;
        for part in parts {
            for (id, fields) in entries(part) {
                apply(&fields);
                *last = Some(id);
                read += 1;
            }
        }
        // Caught up only when a reply did not fill its `COUNT`.
        if read < READ_COUNT {
            gate::log_until(clock::now_ms().saturating_add(VALID_MS));
        }
    }
}

/// One entry of another process: drops the copy (or every copy) it names.
fn apply(fields: &HashMap<String, String>) {
    if fields.get("o").map(String::as_str) == Some(LOG.origin.as_str()) {
        return;
    }
    let (Some(cache), Some(key)) = (fields.get("c"), fields.get("k")) else {
        return;
    };
    if cache.is_empty() {
        // A tag: its version moves on in this process, and every copy carrying it is gone.
        crate::tags::invalidate_local(key);
        return;
    }
    match key.as_str() {
        "*" => gate::drop_all(cache),
        key => gate::drop_key(cache, key),
    }
}
