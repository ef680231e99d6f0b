//! Walking a cache's keys with `SCAN` (never `KEYS`): on the server, or on every primary of a
//! Redis Cluster. Used by `clear()` (delete what the cache owns) and by the estimate of what a
//! cache holds (`usage.rs`).

use redis::Value;

use super::conn::{Redis, StoreError};
use super::layout::ClearScan;

/// Where a scan runs: the server (`None`), or one primary of a cluster (host, port).
pub(crate) type Node = Option<(String, u16)>;

/// The nodes a scan must walk: the server, or every primary of a cluster.
pub(crate) async fn nodes(redis: &Redis) -> Result<Vec<Node>, StoreError> {
    Ok(match redis.is_cluster() {
        true => primaries(redis).await?.into_iter().map(Some).collect(),
        false => vec![None],
    })
}

/// Runs `cmd` on `node`.
pub(crate) async fn on<T: redis::FromRedisValue>(
    redis: &Redis,
    node: &Node,
    cmd: redis::Cmd,
) -> Result<T, StoreError> {
    match node {
        Some((host, port)) => redis.query_node(cmd, host, *port).await,
        None => redis.query(cmd).await,
    }
}

/// One `SCAN cursor MATCH pattern COUNT 500` on `node`: the keys among those found that
/// `scan`'s cache owns, and the next cursor (`None` when the walk is done).
pub(crate) async fn step(
    redis: &Redis,
    node: &Node,
    scan: &ClearScan,
    pattern: &str,
    cursor: u64,
) -> Result<(Option<u64>, Vec<Vec<u8>>), StoreError> {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(500);
    let (next, mut keys): (u64, Vec<Vec<u8>>) = on(redis, node, cmd).await?;
    keys.retain(|k| scan.owns(k));
    Ok(((next != 0).then_some(next), keys))
}

/// Deletes the keys of a cleared cache: found with `SCAN` (never `KEYS`) on the server, or on
/// every primary of a Redis Cluster, kept when the cache owns them, removed with `UNLINK` (on a
/// cluster one `UNLINK` per key, sent concurrently: the keys live in many slots).
pub(crate) async fn delete_matching(redis: &Redis, scan: &ClearScan) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for node in nodes(redis).await? {
        for pattern in &scan.patterns {
            let mut cursor = Some(0);
            while let Some(at) = cursor {
                let (next, keys) = step(redis, &node, scan, pattern, at).await?;
                deleted += unlink(redis, &keys, node.is_some()).await?;
                cursor = next;
            }
        }
    }
    Ok(deleted)
}

/// Unlinks `keys`: in one command, or one per key on a cluster.
async fn unlink(redis: &Redis, keys: &[Vec<u8>], each: bool) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    if !each {
        let mut cmd = redis::cmd("UNLINK");
        for k in keys {
            cmd.arg(k.as_slice());
        }
        return redis.query::<u64>(cmd).await;
    }
    let one = |k: &Vec<u8>| {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(k.as_slice());
        redis.query::<u64>(cmd)
    };
    let counts = futures_util::future::join_all(keys.iter().map(one)).await;
    counts.into_iter().sum()
}

/// The primaries of a Redis Cluster serving slots, from `CLUSTER SLOTS` (the endpoints the
/// cluster client itself connects to, hostnames included): `(host, port)` of each, once.
pub(crate) async fn primaries(redis: &Redis) -> Result<Vec<(String, u16)>, StoreError> {
    let slots: Value = redis
        .query(redis::cmd("CLUSTER").arg("SLOTS").clone())
        .await?;
    Ok(slot_primaries(&slots))
}

/// The primaries in a `CLUSTER SLOTS` reply: each range's first node, `[host, port, id, ..]`.
fn slot_primaries(reply: &Value) -> Vec<(String, u16)> {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let mut primaries: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        let Some(Value::Array(node)) = fields.get(2) else {
            continue;
        };
        let host = match node.first() {
            Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
            Some(Value::SimpleString(h)) => h.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = node.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        if !host.is_empty() && port != 0 && !primaries.contains(&(host.clone(), port)) {
            primaries.push((host, port));
        }
    }
    primaries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn cluster_slots_name_each_serving_primary_once() {
        let range = |start, end, primary: Value, replica: Value| {
            Value::Array(vec![Value::Int(start), Value::Int(end), primary, replica])
        };
        let reply = Value::Array(vec![
            range(0, 5000, node("10.0.0.1", 6379), node("10.0.0.4", 6379)),
            range(
                5001,
                6000,
                node("cache-2.internal", 6380),
                node("10.0.0.5", 6379),
            ),
            range(6001, 7000, node("10.0.0.1", 6379), node("10.0.0.4", 6379)),
            range(7001, 8000, node("", 0), node("10.0.0.6", 6379)),
        ]);
        assert_eq!(
            slot_primaries(&reply),
            [
                ("10.0.0.1".to_owned(), 6379),
                ("cache-2.internal".to_owned(), 6380)
            ]
        );
        assert!(slot_primaries(&Value::Nil).is_empty());
    }
}
