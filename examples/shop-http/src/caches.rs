//! `GET /caches`: `cache_runtime::report()`, one row per cache with its verdict ("is this
//! cache right?"): an HTML table, JSON with `Accept: application/json`, the text table with
//! `Accept: text/plain`.

use std::fmt::Write as _;

use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cache_runtime::http::no_store;
use cache_runtime::{Report, Row};

/// `GET /caches`.
pub(crate) async fn get_caches(request: HeaderMap) -> Response {
    let report = cache_runtime::report();
    let accept = request
        .get(ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let (kind, body) = if accept.contains("application/json") {
        (
            "application/json",
            serde_json::to_vec(&report).unwrap_or_default(),
        )
    } else if accept.contains("text/plain") {
        ("text/plain; charset=utf-8", report.to_string().into_bytes())
    } else {
        ("text/html; charset=utf-8", html(&report).into_bytes())
    };
    no_store(StatusCode::OK, HeaderValue::from_static(kind), body).into_response()
}

fn html(report: &Report) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Caches</title>\
         <style>td,th{padding:2px 8px;text-align:right}td.l,th.l{text-align:left}</style>\
         </head>\n<body><h1>Is this cache right?</h1>\n<table>\n<tr><th class=\"l\">cache</th>\
         <th>calls/s</th><th>hit %</th><th>load p50</th><th>saved</th><th>cost</th>\
         <th>verified</th><th>differed</th><th class=\"l\">verdict</th></tr>\n",
    );
    for row in &report.rows {
        let _ = writeln!(out, "{}", html_row(row));
    }
    let _ = write!(
        out,
        "</table>\n<p>An in-process hit costs {:?} here.</p></body></html>\n",
        report.hit_cost
    );
    out
}

fn html_row(r: &Row) -> String {
    let ratio = r
        .hit_ratio
        .map_or("-".to_owned(), |h| format!("{:.1}", h * 100.0));
    let p50 = r.load_p50.map_or("-".to_owned(), |d| format!("{d:?}"));
    format!(
        "<tr><td class=\"l\">{}</td><td>{:.1}</td><td>{ratio}</td><td>{p50}</td>\
         <td>{:?}</td><td>{:?}</td><td>{}</td><td>{}</td><td class=\"l\"><b>{}</b>: {}</td></tr>",
        escape(&r.name),
        r.calls_per_second,
        r.time_saved,
        r.cache_time,
        r.verified,
        r.mismatched,
        r.verdict.kind,
        escape(&r.verdict.reason),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
