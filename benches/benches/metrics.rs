//! Issue 15: what the `metrics` export costs a hit. Run:
//! `cargo bench -p benches --features metrics --bench metrics`.
//!
//! The same in-process hit, on 1 and on 2 threads, first with no recorder installed, then with
//! `metrics-exporter-prometheus`'s recorder installed and the library exporting every cache
//! every 100 ms (50× more often than its default), so exports run during the measurement.
//! Target: ≤ 1.05× on both. The hit path itself never calls the facade: the export reads the
//! striped counters.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cache_runtime::cached;
use criterion::Criterion;

const KEYS: u64 = 1_000;

#[cached(ttl = 3600, backend = "memory", max_entries = 10_000)]
fn lookup(k: u64) -> u64 {
    k.wrapping_mul(31)
}

/// `iters` hits on each of `threads` threads released together; the time per hit.
fn hits(threads: u64, iters: u64) -> Duration {
    let barrier = Barrier::new(threads as usize);
    let start = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(lookup(black_box((i + t * KEYS / 2) % KEYS)));
                    }
                    start
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|_| Instant::now()))
            .min()
            .unwrap_or_else(Instant::now)
    });
    start.elapsed() / u32::try_from(threads).unwrap_or(1)
}

fn measure(c: &mut Criterion, recorder: &str) {
    let mut one = c.benchmark_group("metrics/hit, 1 thread");
    one.bench_function(recorder, |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(lookup(black_box(i)))
        });
    });
    one.finish();
    let mut two = c.benchmark_group("metrics/hit, 2 threads");
    two.bench_function(recorder, |b| b.iter_custom(|iters| hits(2, iters)));
    two.finish();
}

fn bench(c: &mut Criterion) {
    for k in 0..KEYS {
        lookup(k);
    }
    measure(c, "no recorder");
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap_or_else(|e| panic!("the only recorder of this process: {e}"));
    cache_runtime::set_metrics_interval(Duration::from_millis(100));
    cache_runtime::export_metrics();
    assert!(
        prometheus.render().contains("cache_gets_total"),
        "the recorder receives the caches' figures"
    );
    measure(c, "prometheus recorder, export every 100 ms");
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
