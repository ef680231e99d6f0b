//! Leases: the Redis stampede lock of a key, and the fenced publish that makes invalidation win.
//!
//! A loader holds a lease: `{<value key>}:lock` set to a random token with a lifetime of
//! `lock_timeout`. It publishes its value with one script that writes only if the lock still
//! holds its token (and then deletes the lock). An invalidation deletes the value and the lock
//! together, so a load that was in flight in any process fails its publish instead of writing
//! a stale value back (memcache leases, NSDI 2013). Locks only make the cache efficient; a
//! caller that cannot get one (Redis down, lock held too long) loads anyway.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use redis::{Script, Value};

use super::Keys;
use super::conn::{Redis, StoreError};
use super::notify::{Notices, Watch};

/// Lua: the times of an entry of either envelope (`codec.rs`, `json.rs`), `fresh_until,
/// retry_at` in ms since the Unix epoch, or `0, 0` for bytes of another format; and whether an
/// entry answers at `now` without a load (fresh, or kept during a fail-safe throttle).
/// Exact below 2^53 ms (Lua numbers are doubles); "never" (2^64−1) still compares as later.
const TIMES: &str = r#"
local function times(v)
  if string.sub(v, 1, 3) == 'cr\4' and #v >= 42 then
    local f, r = 0, 0
    for i = 13, 20 do f = f * 256 + string.byte(v, i) end
    for i = 21, 28 do r = r * 256 + string.byte(v, i) end
    return f, r
  end
  local f, r = string.match(v, '^{"v":[34],"t":"%x+","f":(%d+),"r":(%d+)')
  if f then return tonumber(f), tonumber(r) end
  return 0, 0
end
local function usable(v, now)
  local f, r = times(v)
  return f > now or r > now
end
"#;

/// Lua: a tag key's renewal (DESIGN §11, `tags.rs`): with less than `need` ms left (or no
/// lifetime at all: a key made by an older version or another service), it is given `life` ms
/// ([`tag_life`]); never shortened. `PTTL` rather than `PEXPIRE … GT` (Redis 7, and it leaves
/// a key without a lifetime as it is); sent with `pcall`, so that a user whose ACL does not
/// allow it (the README's rule before issue 25) runs on without renewals instead of failing.
const RENEW_TAG: &str = r#"
local function renew(key, need, life)
  local left = redis.pcall('PTTL', key)
  if type(left) == 'number' and left < tonumber(need) then
    redis.call('PEXPIRE', key, life)
  end
end
"#;

/// Lua: the tag functions (DESIGN §11): `recorded` reads the tag versions an entry carries,
/// `versions` the current values of the tag keys `KEYS[first..]` in one `MGET` (a missing one
/// is made with `init` for `life` ms, or, with no `init`, makes the answer nil: its entries are
/// misses; with `need`, one that is there is renewed), and `current` compares them. Without tag
/// keys (an untagged call, or Redis Cluster, where the tag keys live on other slots and the
/// client reads them first, see [`given`]) `versions` answers the last argument.
const TAGS: &str = r#"
local function recorded(v)
  if string.sub(v, 1, 3) == 'cr\4' and #v >= 42 then
    local n = string.byte(v, 41) * 256 + string.byte(v, 42)
    return string.sub(v, 43, 42 + n)
  end
  local g = string.match(v, '^{"v":[34],"t":"%x+","f":%d+,"r":%d+,"g":"(%x*)"')
  if g then
    return (string.gsub(g, '%x%x', function(h) return string.char(tonumber(h, 16)) end))
  end
  return nil
end
local function versions(first, init, need, life)
  if first > #KEYS then return ARGV[#ARGV] end
  local t = redis.call('MGET', unpack(KEYS, first))
  for i = 1, #t do
    local key = KEYS[first + i - 1]
    if t[i] then
      if need then renew(key, need, life) end
    elseif init then
      redis.call('SET', key, init, 'PX', life)
      t[i] = init
    else
      return nil
    end
  end
  return table.concat(t)
end
local function current(v, cur)
  return cur ~= nil and recorded(v) == cur
end
"#;

/// A script that starts with [`TIMES`], [`RENEW_TAG`] and [`TAGS`].
fn with_times(body: &str) -> Script {
    Script::new(&format!("{TIMES}{RENEW_TAG}{TAGS}{body}"))
}

/// Reads the value; if there is none that answers now (`ARGV[3]`, ms since the Unix epoch)
/// with current tags (`KEYS[3..]`, missing ones made with `ARGV[4]`; each renewed for the load,
/// `ARGV[5]` and `ARGV[6]`, see [`take`]), tries to take the lock. Replies `{1, value}`,
/// `{2, versions}` (lock taken; the tag versions the load records) or `{3}` (lock held by
/// another loader).
static READ_OR_LOCK: LazyLock<Script> = LazyLock::new(|| {
    with_times(
        "local cur = versions(3, ARGV[4], ARGV[5], ARGV[6])
         local v = redis.call('GET', KEYS[1])
         if v and usable(v, tonumber(ARGV[3])) and current(v, cur) then return {1, v} end
         if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, cur} end
         return {3}",
    )
});

/// Writes the value (with `PX` unless it is 0) if the lock holds our token and the tag keys
/// (`KEYS[3..]`) still hold the versions the load started with (`ARGV[7]`), renews the tag keys
/// for the entry written (`ARGV[8]`, `ARGV[9]`: see [`publish`]), then frees the lock (unless
/// `ARGV[5]` is `1`: a kept value written while the load goes on) and notifies waiters on the
/// channel `ARGV[4]` (`notify.rs`). Replies 1 if it wrote. A kept value
/// (fail-safe) names in `ARGV[6]` the `fresh_until` of the entry it keeps: it is written only
/// over that same entry, still current under the same tag versions, never over an invalidation
/// (the key deleted, or a tag invalidated since the entry was read: the versions taken with the
/// lease are then not the ones the entry records) or another process's newer value.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    with_times(
        "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
         local stale = versions(3, false) ~= ARGV[7]
         if not stale and ARGV[6] ~= '' then
           local v = redis.call('GET', KEYS[1])
           stale = (not v) or times(v) ~= tonumber(ARGV[6]) or recorded(v) ~= ARGV[7]
         end
         if stale then
           if ARGV[5] ~= '1' then redis.call('DEL', KEYS[2]) end
           redis.call('PUBLISH', ARGV[4], KEYS[1])
           return 0
         end
         if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2])
         else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
         for i = 3, #KEYS do renew(KEYS[i], ARGV[8], ARGV[9]) end
         if ARGV[5] ~= '1' then redis.call('DEL', KEYS[2]) end
         redis.call('PUBLISH', ARGV[4], KEYS[1])
         return 1",
    )
});

/// Reads the value; if there is none that answers now (`ARGV[3]`) with current tags (as in
/// [`READ_OR_LOCK`]), takes the lock unconditionally. Replies `{1, value}` or `{2, versions}`
/// (lock taken).
static READ_OR_TAKE: LazyLock<Script> = LazyLock::new(|| {
    with_times(
        "local cur = versions(3, ARGV[4], ARGV[5], ARGV[6])
         local v = redis.call('GET', KEYS[1])
         if v and usable(v, tonumber(ARGV[3])) and current(v, cur) then return {1, v} end
         redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
         return {2, cur}",
    )
});

/// Takes the lock unconditionally (the tag keys made or renewed with `ARGV[3..5]`, as in
/// [`READ_OR_LOCK`]). Replies `{2, versions}`.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    with_times(
        "local cur = versions(3, ARGV[3], ARGV[4], ARGV[5])
         redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
         return {2, cur}",
    )
});

/// A refresh: if the value was refreshed since the one seen (fresh until later than `ARGV[3]`),
/// or kept after a failed load and still throttled (retry at later than now, `ARGV[4]`),
/// replies `{1, value}`; else takes the lock if it is free (`{2, versions}`), or replies `{3}`
/// (another process's load holds it). Never waits. An entry whose tags are not current is
/// no answer: the refresh loads. The tag keys are made or renewed with `ARGV[5..7]`.
static TRY_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    with_times(
        "local cur = versions(3, ARGV[5], ARGV[6], ARGV[7])
         local v = redis.call('GET', KEYS[1])
         if v and current(v, cur) then
           local f, r = times(v)
           if f > tonumber(ARGV[3]) or r > tonumber(ARGV[4]) then return {1, v} end
         end
         if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, cur} end
         return {3}",
    )
});

/// Extends the lock's life (`PX`) if it still holds our token. Replies 1 if it did.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           return redis.call('PEXPIRE', KEYS[1], ARGV[2])
         end
         return 0",
    )
});

/// Frees the lock if it still holds our token (compare-and-delete), and notifies waiters on
/// the channel `ARGV[2]` that the value key `ARGV[3]` is free to load.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           redis.call('DEL', KEYS[1])
           redis.call('PUBLISH', ARGV[2], ARGV[3])
           return 1
         end
         return 0",
    )
});

/// On Redis Cluster, one tag key (`KEYS[1]`, alone: tag keys live on other slots than the
/// value): its version, renewed with `ARGV[2]` and `ARGV[3]` as in [`RENEW_TAG`]; a missing
/// one is made with `ARGV[1]` for `ARGV[3]` ms, or is nil when `ARGV[1]` is empty. One script:
/// no `SET NX` then `GET` (and no `SET NX GET`, which Redis 6 refuses).
static TAG_ON_CLUSTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{RENEW_TAG}
         local v = redis.call('GET', KEYS[1])
         if v then
           renew(KEYS[1], ARGV[2], ARGV[3])
           return v
         end
         if ARGV[1] == '' then return false end
         redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
         return ARGV[1]"
    ))
});

/// How long past the entry that recorded it a tag key lives, at least.
const TAG_MARGIN: Duration = Duration::from_secs(60);

/// How long past its lock's lifetime a load may run with its tag keys certain to be there at
/// its publish. A load that runs longer, on tags no other load records meanwhile, may find a
/// tag key expired: its publish then writes nothing (as after an invalidation).
const TAG_LOAD_COVER: Duration = Duration::from_secs(10 * 60);

/// What a tag key is kept for after a load of an entry that never expires (no `ttl`): such an
/// entry is a miss once its tag keys expire (one load, which records them again).
const TAG_NEVER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The least a renewal gives a tag key beyond what it needs. Every write of a tag key (a
/// renewal too) is reported to the tracking connection of every process with a tiered cache,
/// which then moves the tag on there (`tracking.rs`): so a tag that loads record all the time is
/// renewed at most about once an hour, not at every load.
const TAG_SLACK: Duration = Duration::from_secs(3600);

/// What a tag key must have left when a load takes its lease with a lock of `lock`: the lock,
/// and [`TAG_LOAD_COVER`].
fn load_need(lock: Duration) -> Duration {
    lock.saturating_add(TAG_LOAD_COVER)
}

/// What a tag key must have left when an entry recording it is written with `px` (`None`: no
/// `PX`): the entry's life and [`TAG_MARGIN`], or [`TAG_NEVER`].
fn entry_need(px: Option<Duration>) -> Duration {
    px.map_or(TAG_NEVER, |px| px.saturating_add(TAG_MARGIN))
}

/// The lifetime a tag key is given when it has less than `need` left (or is made): `need`, and
/// as much again, at least [`TAG_SLACK`]. An invalidation (which needs nothing) gives
/// `tag_life(0)`, [`TAG_SLACK`].
pub(super) fn tag_life(need: Duration) -> Duration {
    need.saturating_add(need.max(TAG_SLACK))
}

/// A lease on one key: our token in its lock, and the versions of the call's tags when the
/// lease was taken (what its publish records, and checks are still current).
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    token: String,
    pub(crate) versions: Vec<u8>,
}

/// What a loader found when it asked for the lock.
pub(crate) enum Begin {
    /// Another process published meanwhile: these bytes.
    Found(Vec<u8>),
    /// We hold the lease: load, then publish.
    Lease(Lease),
    /// A refresh found another process's load holding the lock.
    Busy,
}

/// The time now, in ms since the Unix epoch, as a script argument.
fn now_arg() -> Vec<u8> {
    crate::clock::unix_now_ms().to_string().into_bytes()
}

fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A duration in ms (at least 1), as a script argument.
pub(super) fn ms(d: Duration) -> Vec<u8> {
    d.as_millis().max(1).to_string().into_bytes()
}

/// The keys a lease script touches: the value, the lock and the tag keys; on Redis Cluster the
/// value and the lock only (one slot), the tag versions then given by [`given`].
fn script_keys<'k>(redis: &Redis, keys: &'k Keys) -> Vec<&'k str> {
    let mut all = keys.script();
    if redis.is_cluster() {
        all.truncate(2);
    }
    all
}

/// The tag versions a script on Redis Cluster is given (its last argument): each tag key read
/// and renewed to have `need` left ([`TAG_ON_CLUSTER`], one script per key, all at once), a
/// missing one made with `init`; without `init` a missing key gives versions no entry records.
/// Empty where the script reads the keys itself.
async fn given(
    redis: &Redis,
    keys: &Keys,
    init: Option<&[u8]>,
    need: Duration,
) -> Result<Vec<u8>, StoreError> {
    if !redis.is_cluster() || keys.tags().is_empty() {
        return Ok(Vec::new());
    }
    let (need_ms, life_ms) = (ms(need), ms(tag_life(need)));
    let (init, need, life) = (init.unwrap_or_default(), &need_ms[..], &life_ms[..]);
    let each = keys.tags().iter().map(move |key| async move {
        let args: [&[u8]; 3] = [init, need, life];
        redis
            .eval::<Option<Vec<u8>>>(&TAG_ON_CLUSTER, &[key.as_str()], &args)
            .await
    });
    let versions: Vec<Option<Vec<u8>>> = futures_util::future::join_all(each)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(joined(versions))
}

/// The tag versions now, read only (on Redis Cluster, after a publish).
async fn versions_now(redis: &Redis, keys: &Keys) -> Result<Vec<u8>, StoreError> {
    let mut mget = redis::cmd("MGET");
    mget.arg(keys.tags());
    let versions: Vec<Option<Vec<u8>>> = redis.query(mget).await?;
    Ok(joined(versions))
}

/// The versions of the tag keys, concatenated; versions no entry records if one is missing.
fn joined(versions: Vec<Option<Vec<u8>>>) -> Vec<u8> {
    match versions.into_iter().collect::<Option<Vec<Vec<u8>>>>() {
        Some(all) => all.concat(),
        None => b"\0lost".to_vec(),
    }
}

/// The reply of a lease script: `{1, value}`, `{2, versions}` (the lease, with `token`) or
/// `{3}`; `Err` for anything else.
fn begun(reply: Value, token: String, script: &str) -> Result<Begin, StoreError> {
    match reply {
        Value::Array(items) => match items.as_slice() {
            [Value::Int(1), Value::BulkString(bytes)] => Ok(Begin::Found(bytes.clone())),
            [Value::Int(2), Value::BulkString(versions)] => Ok(Begin::Lease(Lease {
                token,
                versions: versions.clone(),
            })),
            [Value::Int(3)] => Ok(Begin::Busy),
            _ => Err(StoreError::Refused(format!(
                "unexpected reply to the {script} script: {items:?}"
            ))),
        },
        other => Err(StoreError::Refused(format!(
            "unexpected reply to the {script} script: {other:?}"
        ))),
    }
}

/// One attempt: the value if it is there now, else the lock if it is free (`Err(())`: held
/// by another loader).
async fn read_or_lock(
    redis: &Redis,
    keys: &Keys,
    lifetime: Duration,
) -> Result<Result<Begin, ()>, StoreError> {
    match take(redis, keys, lifetime, &READ_OR_LOCK, &[&now_arg()], "lock").await? {
        Begin::Busy => Ok(Err(())),
        begin => Ok(Ok(begin)),
    }
}

/// Takes the lease of a key for a load, waiting for another process's load if one holds it.
///
/// While the lock is held elsewhere, re-reads the value with a capped, jittered backoff (10 ms
/// doubling to 200 ms), never holding a connection while it sleeps. Returns the value if it
/// appears; retries the lock if it is freed; after `wait` takes the lease by force and loads
/// (a waiter never waits longer than `lock_timeout`).
pub(crate) async fn begin(
    redis: &'static Redis,
    keys: &Keys,
    wait: Duration,
) -> Result<Begin, StoreError> {
    let give_up = Instant::now() + wait;
    let mut backoff = Duration::from_millis(10);
    let mut watch: Option<Watch> = None;
    loop {
        // Armed before the read, so a notification between the read and the sleep is kept.
        let notify = watch.as_ref().map(|w| w.notify.clone());
        let mut notified = notify.as_deref().map(|n| Box::pin(n.notified()));
        if let Some(n) = notified.as_mut() {
            n.as_mut().enable();
        }
        if let Ok(begin) = read_or_lock(redis, keys, wait).await? {
            return Ok(begin);
        }
        if watch.is_none() {
            // The first wait: watch the key, then read again at once (a publish may have
            // come before the watch).
            watch = Some(Notices::watch(redis, keys.value()));
            continue;
        }
        let now = Instant::now();
        if now >= give_up {
            return force(redis, keys, wait).await;
        }
        // Full jitter: sleep a random part of the backoff, so waiters do not poll in step.
        let sleep = backoff
            .mul_f64(0.5 + fastrand::f64() * 0.5)
            .min(give_up - now);
        let waited = async {
            match notified {
                Some(notified) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep(sleep) => {}
                    }
                }
                None => tokio::time::sleep(sleep).await,
            }
        };
        crate::store::wait_for_another(waited).await;
        backoff = (backoff * 2).min(Duration::from_millis(200));
    }
}

/// Takes the lease unconditionally (for `lock = "local"` and `"none"`, refreshes, and waiters
/// that gave up): any other loader's publish then fails, and ours is still fenced against an
/// invalidation.
pub(crate) async fn force(
    redis: &Redis,
    keys: &Keys,
    lifetime: Duration,
) -> Result<Begin, StoreError> {
    take(redis, keys, lifetime, &TAKE, &[], "take").await
}

/// Takes the lease unless the value is there already (a leader of this process that came
/// after another's publish, or a waiter that gave up): then returns the value.
pub(crate) async fn read_or_take(
    redis: &Redis,
    keys: &Keys,
    lifetime: Duration,
) -> Result<Begin, StoreError> {
    take(
        redis,
        keys,
        lifetime,
        &READ_OR_TAKE,
        &[&now_arg()],
        "read-or-take",
    )
    .await
}

/// Takes the lease of a refresh of the value seen fresh until `seen` (ms since the Unix
/// epoch), unless it was refreshed since (then the newer bytes) or another load holds it.
pub(crate) async fn try_refresh(
    redis: &Redis,
    keys: &Keys,
    lifetime: Duration,
    seen: u64,
) -> Result<Begin, StoreError> {
    let seen = seen.to_string();
    let middle: [&[u8]; 2] = [seen.as_bytes(), &now_arg()];
    take(redis, keys, lifetime, &TRY_REFRESH, &middle, "refresh").await
}

/// Runs one of the lease-taking scripts with a new token: its arguments are the token and the
/// lock's lifetime, then `middle` (the script's own), then a fresh version for tag keys that
/// are missing, what a tag key must have left for the load ([`load_need`]) and the lifetime it
/// is then given ([`tag_life`]), and last the tag versions read first on a cluster (`given`).
async fn take(
    redis: &Redis,
    keys: &Keys,
    lifetime: Duration,
    script: &'static redis::Script,
    middle: &[&[u8]],
    what: &str,
) -> Result<Begin, StoreError> {
    let token = new_token();
    let init = super::fresh();
    let need = load_need(lifetime);
    let given = given(redis, keys, Some(&init), need).await?;
    let (lifetime, life, need) = (ms(lifetime), ms(tag_life(need)), ms(need));
    let mut args: Vec<&[u8]> = Vec::with_capacity(6 + middle.len());
    args.extend([token.as_bytes(), lifetime.as_slice()]);
    args.extend_from_slice(middle);
    args.extend([
        init.as_slice(),
        need.as_slice(),
        life.as_slice(),
        given.as_slice(),
    ]);
    let reply: Value = redis.eval(script, &script_keys(redis, keys), &args).await?;
    drop(args);
    begun(reply, token, what)
}

/// How a publish writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Write {
    /// The entry's `PX`, if it expires.
    pub(crate) ttl: Option<Duration>,
    /// Keep the lease (a kept value written while its load goes on).
    pub(crate) keep_lease: bool,
    /// A kept value (fail-safe): written only over the entry fresh until this (ms since the
    /// Unix epoch).
    pub(crate) over: Option<u64>,
}

/// Publishes `payload` under `lease`; `Ok(false)` if the lease was revoked (an invalidation),
/// a tag of the call was invalidated since the lease was taken, or a kept value found another
/// entry than the one it keeps. A write renews the tag keys to outlive the entry
/// ([`entry_need`]; on a cluster, before the write, as they are read).
pub(crate) async fn publish(
    redis: &Redis,
    keys: &Keys,
    lease: &Lease,
    payload: &[u8],
    write: Write,
) -> Result<bool, StoreError> {
    let px = write.ttl.map_or_else(|| b"0".to_vec(), ms);
    let keep: &[u8] = if write.keep_lease { b"1" } else { b"0" };
    let over = write.over.map(|f| f.to_string()).unwrap_or_default();
    let need = entry_need(write.ttl);
    let before = given(redis, keys, None, need).await?;
    let (life, need) = (ms(tag_life(need)), ms(need));
    let args: [&[u8]; 10] = [
        lease.token.as_bytes(),
        payload,
        &px,
        redis.channel.as_bytes(),
        keep,
        over.as_bytes(),
        &lease.versions,
        &need,
        &life,
        &before,
    ];
    let wrote: i64 = redis
        .eval(&PUBLISH, &script_keys(redis, keys), &args)
        .await?;
    if wrote == 1 && !before.is_empty() {
        // On a cluster the versions were read before the write, not with it: a tag invalidated
        // meanwhile makes a write that readers miss; its waiters here load again.
        return Ok(versions_now(redis, keys).await? == lease.versions);
    }
    Ok(wrote == 1)
}

/// Extends `lease` by `lifetime`; `Ok(false)` once the lock no longer holds its token (an
/// invalidation revoked it, or it expired).
pub(crate) async fn renew(
    redis: &Redis,
    lock_key: &str,
    lease: &Lease,
    lifetime: Duration,
) -> Result<bool, StoreError> {
    let renewed: i64 = redis
        .eval(
            &RENEW,
            &[lock_key],
            &[lease.token.as_bytes(), &ms(lifetime)],
        )
        .await?;
    Ok(renewed == 1)
}

/// Frees the lease without writing (the load failed or is not cached).
pub(crate) async fn release(
    redis: &Redis,
    value_key: &str,
    lock_key: &str,
    lease: &Lease,
) -> Result<(), StoreError> {
    let args: [&[u8]; 3] = [
        lease.token.as_bytes(),
        redis.channel.as_bytes(),
        value_key.as_bytes(),
    ];
    redis
        .eval::<i64>(&RELEASE, &[lock_key], &args)
        .await
        .map(drop)
}

/// Deletes the value and its lock together: loads in flight cannot publish any more.
pub(crate) async fn invalidate(
    redis: &Redis,
    value_key: &str,
    lock_key: &str,
) -> Result<(), StoreError> {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(value_key).arg(lock_key);
    redis.query::<i64>(cmd).await.map(drop)
}

/// Reads a value: one `GET`; for a tagged function, a `GET` of the value and an `MGET` of its
/// tag keys in one pipeline (one round trip), and nil when the versions the entry records are
/// not the tag keys' values (or a tag key is missing).
///
/// Not atomic, and it need not be: a read that starts after `invalidate_tag` returned reads
/// the new version whatever it reads first, and an entry recording it was loaded after it.
pub(crate) async fn read(redis: &Redis, keys: &Keys) -> Result<Option<Vec<u8>>, StoreError> {
    if keys.tags().is_empty() {
        let mut cmd = redis::cmd("GET");
        cmd.arg(keys.value());
        return redis.query::<Option<Vec<u8>>>(cmd).await;
    }
    let (value, versions): (Option<Vec<u8>>, Vec<Option<Vec<u8>>>) = if redis.is_cluster() {
        // Other slots: two commands at once, on their nodes (the same wait as one).
        let mut get = redis::cmd("GET");
        get.arg(keys.value());
        let mut mget = redis::cmd("MGET");
        mget.arg(keys.tags());
        let (value, versions) =
            futures_util::future::join(redis.query(get), redis.query(mget)).await;
        (value?, versions?)
    } else {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(keys.value());
        pipe.cmd("MGET").arg(keys.tags());
        redis.pipeline(pipe).await?
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(versions) = versions.into_iter().collect::<Option<Vec<Vec<u8>>>>() else {
        return Ok(None); // a tag key was lost: its entries are misses
    };
    match recorded(&value) {
        Some(recorded) => Ok((recorded == versions.concat()).then_some(value)),
        // Not an envelope of this version: the decode counts it, and a load overwrites it.
        None => Ok(Some(value)),
    }
}

/// The tag versions an entry records (`codec.rs`, `json.rs`); `None` for bytes of another
/// format (then the decode that follows says what is wrong with them).
fn recorded(value: &[u8]) -> Option<Vec<u8>> {
    if value.starts_with(b"cr\x04") {
        let n = usize::from(u16::from_be_bytes([*value.get(40)?, *value.get(41)?]));
        return value.get(42..42 + n).map(<[u8]>::to_vec);
    }
    crate::codec::json::recorded(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_key_outlives_its_entries_and_is_renewed_rarely() {
        let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        // An entry of 10 minutes: its tag key needs 11, and gets an hour more.
        assert_eq!(entry_need(Some(10 * minute)), 11 * minute);
        assert_eq!(tag_life(11 * minute), 71 * minute);
        // An entry of 2 hours: needs 2 h 1 min, and gets as much again.
        assert_eq!(
            tag_life(entry_need(Some(2 * hour))),
            2 * (2 * hour + minute)
        );
        // An entry that never expires: a week, then a week more.
        assert_eq!(entry_need(None), 7 * 24 * hour);
        assert_eq!(tag_life(entry_need(None)), 14 * 24 * hour);
        // A load: its lock and ten minutes; an invalidation: an hour.
        assert_eq!(
            load_need(Duration::from_secs(5)),
            10 * minute + Duration::from_secs(5)
        );
        assert_eq!(tag_life(Duration::ZERO), hour);
        // Never less than needed, even for lives that saturate.
        assert_eq!(tag_life(Duration::MAX), Duration::MAX);
    }
}
