//! What a cache holds in Redis, estimated on request (`CacheHandle::shared_memory`): its keys
//! counted with `SCAN` (never `KEYS`), `MEMORY USAGE` on a sample of them.

use super::conn::{Redis, StoreError};
use super::layout::ClearScan;
use super::scan::{nodes, on, step};
use crate::store::SharedMemory;

/// Walks the keys `scan` owns (on every primary of a cluster) and sizes the first `sample`
/// value keys it meets (`SCAN` visits them in hash order: an unbiased sample of a cache's
/// keys, not of their times).
pub(crate) async fn estimate(
    redis: &Redis,
    scan: &ClearScan,
    sample: usize,
) -> Result<SharedMemory, StoreError> {
    let mut found = SharedMemory::default();
    // The value keys only (`patterns[0]`): a lock lives for a load.
    let pattern = &scan.patterns[0];
    for node in nodes(redis).await? {
        let mut cursor = Some(0);
        while let Some(at) = cursor {
            let (next, keys) = step(redis, &node, scan, pattern, at).await?;
            found.keys += keys.len() as u64;
            let room = sample.saturating_sub(found.sampled as usize);
            for key in keys.into_iter().take(room) {
                let mut cmd = redis::cmd("MEMORY");
                cmd.arg("USAGE").arg(key.as_slice()).arg("SAMPLES").arg(0);
                // Gone since the scan (expired, invalidated): not in the sample.
                if let Some(bytes) = on::<Option<u64>>(redis, &node, cmd).await? {
                    found.sampled += 1;
                    found.sampled_bytes += bytes;
                }
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
