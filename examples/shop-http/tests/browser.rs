//! Issue 26: a real browser (headless Chromium, Debian's `chromium`) loads the shop's
//! `/browser` page, whose script fetches product 5 twice and user 3 twice: the second fetch of
//! each is answered by the browser's own cache (the shop counts the requests that reach it),
//! as the headers allow (`public, max-age` for products, `private, max-age` for users).
//!
//! Without Chromium the test says SKIPPED and passes, unless `CACHE_REQUIRE_CHROMIUM=1`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use shop_http::requests;

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn the_browser_keeps_what_the_headers_let_it_keep() {
    let Some(binary) = chromium() else {
        let required = std::env::var("CACHE_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CACHE_REQUIRE_CHROMIUM=1 but Chromium is not installed"
        );
        eprintln!("SKIPPED: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let port = common::start_shop("browser");
    let profile = std::env::temp_dir().join(format!("shop-browser-profile-{}", std::process::id()));
    // The flags this machine's closed network needs (no background connections), and time
    // for the page's script to finish before the DOM is printed.
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://127.0.0.1:{port}/browser"))
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("done"),
        "the page's script did not finish:\n{dom}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in ["/products/5 200 5", "/users/3 200 3"] {
        assert_eq!(dom.matches(line).count(), 2, "{line} twice in:\n{dom}");
    }
    let (products, users) = requests();
    assert_eq!(
        products, 1,
        "the second product fetch came from the browser's cache"
    );
    assert_eq!(
        users, 1,
        "the user's private answer is kept by the user's own browser"
    );
}
