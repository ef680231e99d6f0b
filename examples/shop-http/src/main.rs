//! The shop's server: `cargo run -p shop-http` (add `--release` for realistic figures).
//!
//! Environment:
//! - `PORT`: the loopback port to listen on (default 8080);
//! - `SHOP_DB`: the SQLite file (default `shop-http.db` in the temp directory), created with
//!   its data when missing, reused when it has the right row counts;
//! - `SHOP_CACHE`: `none`, `memory`, `redis` or `tiered` (see [`Mode::from_env`]);
//! - `CACHE_REDIS_URL`, `CACHE_KEY_PREFIX`: the Redis settings of cache-runtime (feature
//!   `redis`);
//! - `SHOP_VARNISH`: the Varnish in front of the shop (`http://127.0.0.1:6081`), purged by
//!   surrogate key (`xkey`) on every invalidation; unset: no purges;
//! - `RUST_LOG`: the log filter (default `info`); logs are JSON lines on stdout.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use cache_runtime::http::VarnishPurger;
use metrics_exporter_prometheus::PrometheusHandle;
use shop_http::db::{self, DataSize};
use shop_http::{AppState, BoxError, Mode, db_queries, router};
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// How many best sellers are loaded into the cache before the server listens.
const WARM_BEST_SELLERS: u32 = 200;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "shop-http stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let prometheus = shop_http::install_prometheus()?;
    let mode = Mode::from_env()?;
    if cfg!(not(feature = "redis")) && std::env::var_os("CACHE_REDIS_URL").is_some() {
        warn!("CACHE_REDIS_URL is set, but this build has no `redis` feature: caching in memory");
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|e| format!("PORT={port}: {e}"))?,
        Err(_) => 8080,
    };
    let path = std::env::var_os("SHOP_DB")
        .filter(|p| !p.is_empty())
        .map_or_else(|| std::env::temp_dir().join("shop-http.db"), PathBuf::from);

    let started = Instant::now();
    let created = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || db::open_or_create(&path, DataSize::FULL)).await??
    };
    let size = DataSize::FULL;
    info!(
        path = %path.display(),
        created,
        products = size.products,
        users = size.users,
        orders = size.orders,
        elapsed_ms = millis(started.elapsed()),
        "database ready"
    );

    let state = AppState::new(path, mode)?.with_prometheus(prometheus.clone());
    if let Some(url) = std::env::var("SHOP_VARNISH")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        let purger = VarnishPurger::new(&url).map_err(|e| format!("SHOP_VARNISH={url}: {e}"))?;
        // Installed for the process's life: the handle is not needed to keep it.
        let _hook = cache_runtime::on_invalidate(purger);
        info!(varnish = %url, "invalidations purge Varnish by xkey");
    }

    let started = Instant::now();
    let warmed =
        tokio::task::spawn_blocking(move || shop_http::warm_best_sellers(mode, WARM_BEST_SELLERS))
            .await?;
    match warmed {
        Ok(Some(warmed)) => info!(
            loaded = warmed.loaded,
            skipped = warmed.skipped,
            failed = warmed.failed,
            elapsed_ms = millis(started.elapsed()),
            "warmed the best sellers"
        ),
        Ok(None) => info!("cache mode none: nothing to warm"),
        // The service still answers; the best sellers load at their first request.
        Err(e) => warn!(error = %e, "could not warm the best sellers"),
    }

    tokio::spawn(housekeeping(prometheus));

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| format!("binding 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr()?;
    let listener = listener.tap_io(|stream| {
        // Small responses, at once: no Nagle delay on keep-alive connections.
        let _ = stream.set_nodelay(true);
    });
    info!(
        %address,
        mode = %mode,
        "listening on http://{address}"
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    info!(db_queries = db_queries(), "shut down");
    Ok(())
}

/// Every 10 s: the Prometheus recorder's upkeep (its histograms), and a log line with the
/// database queries of the last interval, when there were some.
async fn housekeeping(prometheus: PrometheusHandle) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    let mut last = (db_queries(), Instant::now());
    loop {
        ticks.tick().await;
        prometheus.run_upkeep();
        let now = (db_queries(), Instant::now());
        let queries = now.0 - last.0;
        if queries > 0 {
            let seconds = now.1.duration_since(last.1).as_secs_f64().max(0.001);
            info!(
                db_queries_total = now.0,
                db_queries_per_second = (queries as f64 / seconds).round(),
                "database queries"
            );
        }
        last = now;
    }
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    info!("shutting down: finishing the requests in flight");
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
