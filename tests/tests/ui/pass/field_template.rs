use cache_runtime::cached;

struct Request {
    user: String,
    filter: Filter,
}

struct Filter {
    kind: u8,
}

#[cached(key = "search:{req.user}:{req.filter.kind}:{page}")]
fn search(req: &Request, page: u32) -> Vec<String> {
    vec![format!("{}-{}-{page}", req.user, req.filter.kind)]
}

#[cached(key = "pair:{p.0}:{p.1}")]
fn pair(p: (u8, String)) -> String {
    format!("{}{}", p.0, p.1)
}

#[cached(key = "(literal):{id}")]
fn parens(id: u32) -> u32 {
    id
}

fn main() {
    let req = Request { user: "ann".into(), filter: Filter { kind: 2 } };
    assert_eq!(search(&req, 1), vec!["ann-2-1".to_string()]);
    assert!(search_invalidate(&req, 1).is_done());
    assert_eq!(pair((1, "x".into())), "1x");
    assert_eq!(parens(5), 5);
}
