//! Issue 26: `VarnishPurger` against a fake Varnish on loopback (a thread that records each
//! request and answers as told): `PURGE /` with the `xkey` header, from the invalidation hook;
//! keys coalesced; retries of `5xx` and lost connections, none of `4xx`; failures counted and
//! never in the invalidation's way.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_runtime::http::VarnishPurger;
use cache_runtime::{cached, on_invalidate};

/// One request the fake Varnish received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Received {
    line: String,
    xkey: String,
}

/// A fake Varnish: answers each request with the next status of its script (200 when it runs
/// out), and records it.
struct FakeVarnish {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeVarnish {
    fn start(script: &[u16]) -> FakeVarnish {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let log = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                if let Some(request) = read_head(&stream) {
                    log.lock().unwrap().push(request);
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        });
        FakeVarnish { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Every key it was asked to purge.
    fn keys(&self) -> Vec<String> {
        self.received()
            .iter()
            .flat_map(|r| r.xkey.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }
}

fn read_head(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut xkey = String::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("xkey")
        {
            xkey = value.trim().to_owned();
        }
    }
    Some(Received {
        line: line.trim_end().to_owned(),
        xkey,
    })
}

fn purger(url: &str) -> VarnishPurger {
    VarnishPurger::builder()
        .url(url)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[test]
fn an_invalidation_purges_its_tags_and_its_cache() {
    #[cached(ttl = 60, key = "{id}", tags = ["purged:{id}"], backend = "memory", name = "purged-cache")]
    fn page(id: u64) -> u64 {
        id
    }
    let varnish = FakeVarnish::start(&[]);
    let purger = purger(&varnish.url);
    let hook = on_invalidate(purger.clone());
    page(1);
    let _ = cache_runtime::invalidate_tag("purged:1");
    assert!(purger.flush(Duration::from_secs(10)));
    let _ = page_invalidate(1);
    let _ = page_cache().clear();
    assert!(purger.flush(Duration::from_secs(10)));
    hook.remove();
    let received = varnish.received();
    assert!(
        received.iter().all(|r| r.line == "PURGE / HTTP/1.1"),
        "{received:?}"
    );
    let keys = varnish.keys();
    assert!(keys.contains(&"purged:1".to_owned()), "{keys:?}");
    assert!(keys.contains(&"@cache:purged-cache".to_owned()), "{keys:?}");
    let stats = purger.stats();
    assert!(stats.sent >= 2, "{stats:?}");
    assert_eq!((stats.failed, stats.pending), (0, 0));
}

#[test]
fn keys_queued_while_a_purge_is_sent_go_together() {
    let varnish = FakeVarnish::start(&[]);
    let purger = VarnishPurger::builder()
        .url(&varnish.url)
        .max_per_second(5)
        .build()
        .unwrap();
    for i in 0..200 {
        purger.purge([format!("k{i}")]);
    }
    assert!(purger.flush(Duration::from_secs(10)));
    let mut keys = varnish.keys();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 200, "every key purged");
    // At 5 requests a second, 200 keys queued at once go in a few requests of up to 256.
    let requests = varnish.received().len();
    assert!(requests <= 3, "{requests} requests for 200 keys");
    assert_eq!(purger.stats().keys, 200);
}

#[test]
fn server_errors_are_retried_and_refusals_are_not() {
    let varnish = FakeVarnish::start(&[503, 502, 200]);
    let retried = purger(&varnish.url);
    retried.purge(["r:1"]);
    assert!(retried.flush(Duration::from_secs(10)));
    let stats = retried.stats();
    assert_eq!(
        (stats.sent, stats.retries, stats.failed),
        (1, 2, 0),
        "{stats:?}"
    );
    assert_eq!(varnish.received().len(), 3);

    let refusing = FakeVarnish::start(&[405]);
    let refused = purger(&refusing.url);
    refused.purge(["r:2"]);
    assert!(refused.flush(Duration::from_secs(10)));
    let stats = refused.stats();
    assert_eq!(
        (stats.sent, stats.retries, stats.failed),
        (0, 0, 1),
        "{stats:?}"
    );
}

#[test]
fn a_dead_varnish_is_counted_and_never_slows_an_invalidation() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let purger = VarnishPurger::builder()
        .url(&format!("http://127.0.0.1:{port}"))
        .attempts(5)
        .build()
        .unwrap();
    let hook = on_invalidate(purger.clone());
    let started = Instant::now();
    #[cached(ttl = 60, backend = "memory", name = "purge-dead")]
    fn dead(id: u64) -> u64 {
        id
    }
    dead(1);
    assert!(dead_invalidate(1).is_done());
    // The invalidation only queued the purge: the retries (1.5 s of backoff) come after.
    let took = started.elapsed();
    assert!(purger.flush(Duration::from_secs(10)));
    hook.remove();
    let stats = purger.stats();
    assert!(stats.failed >= 1, "{stats:?}");
    assert!(stats.retries >= 4, "{stats:?}");
    assert!(
        took < Duration::from_secs(1),
        "the invalidation waited {took:?}"
    );
}

#[test]
fn bad_urls_are_refused() {
    for url in ["https://x:1", "127.0.0.1:6081", "http://", "http://h:port"] {
        assert!(VarnishPurger::new(url).is_err(), "{url}");
    }
    assert!(VarnishPurger::builder().build().is_err(), "no URL");
    assert!(
        VarnishPurger::builder()
            .url("http://127.0.0.1:1")
            .header("bad header")
            .build()
            .is_err()
    );
}

#[test]
fn keys_that_cannot_go_in_a_header_are_dropped_and_long_lists_split() {
    let varnish = FakeVarnish::start(&[]);
    let purger = purger(&varnish.url);
    purger.purge([
        "good:1",
        "",
        "bad key",
        "evil\r\nx-injected: 1",
        "comma,key",
    ]);
    // 100 keys of 100 bytes: more than a 4 KiB header holds.
    purger.purge((0..100).map(|i| format!("{i:0>100}")));
    assert!(purger.flush(Duration::from_secs(10)));
    let received = varnish.received();
    let keys = varnish.keys();
    assert!(keys.contains(&"good:1".to_owned()));
    assert_eq!(keys.len(), 101, "{keys:?}");
    assert!(
        received.iter().all(|r| r.xkey.len() <= 4096),
        "headers within 4 KiB"
    );
    assert!(received.len() >= 3, "{} requests", received.len());
    let stats = purger.stats();
    assert_eq!(
        (stats.dropped, stats.failed),
        (4, 0),
        "four bad keys: {stats:?}"
    );
}

#[test]
fn a_dead_server_delays_no_other() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let live = FakeVarnish::start(&[]);
    let purger = VarnishPurger::builder()
        .url(&format!("http://127.0.0.1:{port}"))
        .url(&live.url)
        .attempts(5)
        .build()
        .unwrap();
    let started = Instant::now();
    purger.purge(["both:1"]);
    // The dead server's retries take 1.5 s of backoff; the live one is purged meanwhile.
    while live.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the live server waited for the dead one"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(purger.flush(Duration::from_secs(10)));
    let stats = purger.stats();
    assert_eq!((stats.sent, stats.failed), (1, 1), "{stats:?}");
}
