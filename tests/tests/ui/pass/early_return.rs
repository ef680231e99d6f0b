use cache_runtime::cached;

#[cached]
fn parse_sum(text: &str) -> Result<i64, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    for part in text.split(',') {
        total += part.trim().parse::<i64>()?;
    }
    Ok(total)
}

#[cached]
async fn first_word(text: String) -> Option<String> {
    let word = text.split_whitespace().next()?;
    if word == "stop" {
        return None;
    }
    Some(word.to_owned())
}

fn main() {
    assert_eq!(parse_sum(""), Ok(0));
    assert_eq!(parse_sum("1, 2,3"), Ok(6));
    assert!(parse_sum("1,x").is_err());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(first_word("hello world".into())), Some("hello".into()));
    assert_eq!(rt.block_on(first_word("stop it".into())), None);
    assert_eq!(rt.block_on(first_word("".into())), None);
}
