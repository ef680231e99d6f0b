//! What a cache holds in Redis, estimated on request (`CacheHandle::shared_memory`): its keys
//! counted with `SCAN` (never `KEYS`), `MEMORY USAGE` on a sample of them.

use super::conn::{Redis, StoreError};
use super::layout::ClearScan;
use crate::store::SharedMemory;

/// Walks the keys `scan` owns (on every primary of a cluster) and sizes the first `sample`
/// value keys it meets (`SCAN` visits them in hash order: an unbiased sample of a cache's
/// keys, not of their times).
pub(crate) async fn estimate(
    redis: &Redis,
    scan: &ClearScan,
    sample: usize,
) -> Result<SharedMemory, StoreError> {
    let nodes = match redis.is_cluster() {
        true => super::lease::primaries(redis)
            .await?
            .into_iter()
            .map(Some)
            .collect(),
        false => vec![None],
    };
    let mut found = SharedMemory::default();
    // The value keys only (`patterns[0]`): a lock lives for a load.
    let pattern = &scan.patterns[0];
    for node in &nodes {
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500);
            let (next, mut keys): (u64, Vec<Vec<u8>>) = match node {
                Some((host, port)) => redis.query_node(cmd, host, *port).await?,
                None => redis.query(cmd).await?,
            };
            keys.retain(|k| scan.owns(k));
            found.keys += keys.len() as u64;
            for key in keys {
                if found.sampled as usize >= sample {
                    break;
                }
                let mut cmd = redis::cmd("MEMORY");
                cmd.arg("USAGE").arg(key.as_slice()).arg("SAMPLES").arg(0);
                let bytes: Option<u64> = match node {
                    Some((host, port)) => redis.query_node(cmd, host, *port).await?,
                    None => redis.query(cmd).await?,
                };
                // Gone since the scan (expired, invalidated): not in the sample.
                if let Some(bytes) = bytes {
                    found.sampled += 1;
                    found.sampled_bytes += bytes;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    if found.sampled > 0 {
        let each = found.sampled_bytes as f64 / found.sampled as f64;
        found.estimated_bytes = (each * found.keys as f64).round() as u64;
    }
    Ok(found)
}
