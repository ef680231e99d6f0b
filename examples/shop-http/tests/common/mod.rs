//! What the tests that put a real client in front of the shop share.

use std::net::{Ipv4Addr, TcpListener};

use shop_http::db::{self, DataSize};
use shop_http::{AppState, Mode, router};

/// The shop (memory mode) on a small database of its own (`shop-<name>-<pid>.db` in the temp
/// directory), served on a loopback port in the background; its port.
pub(crate) fn start_shop(name: &str) -> u16 {
    let path = std::env::temp_dir().join(format!("shop-{name}-{}.db", std::process::id()));
    db::create_database(&path, DataSize::SMALL).expect("the test database");
    let state = AppState::new(path, Mode::Memory).expect("the shop's state");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router(state)).await.unwrap();
        });
    });
    port
}
