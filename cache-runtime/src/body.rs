//! The body of a call as the engine receives it, and whether it can leave the caller.
//!
//! A revalidation (`stale`), an early refresh (`early_refresh`) and a load that outlives
//! `load_timeout` run *in the background* when the body owns everything it uses: a sync body
//! on a thread of the library's own (`cache-runtime-load`), an async body as a task on the
//! caller's tokio runtime. Otherwise the caller runs it in place.
//!
//! A load led by an async caller belongs to its key, not to that caller: polled in place, and
//! if the caller is cancelled (its future dropped, e.g. by `tokio::time::timeout`), handed to
//! the caller's runtime to finish (for at most `Policy::detached_limit`), so that its result is
//! stored and answers its waiters ([`Detached`]). Where the body cannot leave the caller, it is
//! dropped with the caller as before, and one waiter takes the load over.
//!
//! The macro probes the body with [`Detach`] only for functions whose parameters and output
//! are all owned as written (no reference, lifetime, receiver or `Self`), so that the body is
//! `'static`; the type checker then picks [`Owned`] when the arguments and output (sync) or
//! the body's future (async) are also `Send` (autoref specialization, as in `shape.rs`), and
//! leaves the body in place otherwise.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::task::{Context, Poll};
use std::time::Duration;

/// What a panicking body left: its payload.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// A body that can run on another thread or task: everything it holds is owned and `Send`.
pub struct Owned<C>(C);

/// A boxed async body that can leave the caller.
pub(crate) type SendFuture<R> = Pin<Box<dyn Future<Output = R> + Send>>;

/// The body of a sync cached function.
pub trait SyncBody<R>: Sized {
    /// A load that outran its caller: see [`SyncBody::call_within`].
    type Late: LateSync<R>;

    /// Runs the body here.
    fn call(self) -> R;

    /// Runs `job(self, data)` on a thread of the library's own; gives both back if the body
    /// cannot leave the caller (or no thread could be started).
    fn detach<T: Send + 'static>(
        self,
        data: T,
        job: impl FnOnce(Self, T) + Send + 'static,
    ) -> Result<(), (Self, T)> {
        let _ = job;
        Err((self, data))
    }

    /// The body as a closure that can run on another thread (`verify`'s worker); gives it
    /// back if it cannot leave the caller.
    fn boxed(self) -> Result<Box<dyn FnOnce() -> R + Send>, Self> {
        Err(self)
    }

    /// Runs the body on a thread of the library's own and waits for it up to `limit`: its
    /// result, or a handle on the load still running. Gives the body back if it cannot leave
    /// the caller.
    fn call_within(self, limit: Duration) -> Result<Waited<R, Self::Late>, Self> {
        let _ = limit;
        Err(self)
    }
}

/// What waiting for a load up to a limit gave.
pub enum Waited<R, L> {
    /// It ended in time (or panicked).
    Done(Result<R, Panic>),
    /// It is still running.
    Late(L),
}

/// A sync load still running after its caller left.
pub trait LateSync<R>: Sized {
    /// When the load ends, `settle` maps its result (or panic) and `then` finishes with what
    /// `settle` made, on the thread that ran it.
    fn finish<V>(
        self,
        settle: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        then: impl FnOnce(V) + Send + 'static,
    );
}

/// An async load still running after its caller left.
pub trait LateAsync<R>: Sized {
    /// When the load ends, `settle` maps its result (or panic) and `then`'s future finishes
    /// with what `settle` made, as a task of the runtime that ran it.
    fn finish<V: Send + 'static, J: Future<Output = ()> + Send + 'static>(
        self,
        settle: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        then: impl FnOnce(V) -> J + Send + 'static,
    );
}

/// The late load of a body that never leaves its caller: there is none.
pub enum Never {}

impl<R> LateSync<R> for Never {
    fn finish<V>(
        self,
        _: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        _: impl FnOnce(V) + Send + 'static,
    ) {
        match self {}
    }
}

impl<R> LateAsync<R> for Never {
    fn finish<V: Send + 'static, J: Future<Output = ()> + Send + 'static>(
        self,
        _: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        _: impl FnOnce(V) -> J + Send + 'static,
    ) {
        match self {}
    }
}

impl<R, C: FnOnce() -> R> SyncBody<R> for C {
    type Late = Never;

    #[inline]
    fn call(self) -> R {
        self()
    }
}

impl<R: Send + 'static, C: FnOnce() -> R + Send + 'static> SyncBody<R> for Owned<C> {
    type Late = Handoff<R>;

    #[inline]
    fn call(self) -> R {
        (self.0)()
    }

    fn detach<T: Send + 'static>(
        self,
        data: T,
        job: impl FnOnce(Self, T) + Send + 'static,
    ) -> Result<(), (Self, T)> {
        let (give, take) = mpsc::sync_channel(1);
        let started = std::thread::Builder::new()
            .name("cache-runtime-load".into())
            .spawn(move || {
                if let Ok((body, data)) = take.recv() {
                    job(body, data);
                }
            });
        match started {
            Ok(_) => give.send((self, data)).map_err(|e| e.0),
            Err(_) => Err((self, data)),
        }
    }

    fn boxed(self) -> Result<Box<dyn FnOnce() -> R + Send>, Self> {
        Ok(Box::new(self.0))
    }

    fn call_within(self, limit: Duration) -> Result<Waited<R, Handoff<R>>, Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Waiting),
            ended: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        self.detach(theirs, |body, shared| {
            let result = catch_unwind(AssertUnwindSafe(|| body.call()));
            shared.deliver(result);
        })
        .map_err(|(body, _)| body)?;
        let state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut state, _) = shared
            .ended
            .wait_timeout_while(state, limit, |s| matches!(s, State::Waiting))
            .unwrap_or_else(PoisonError::into_inner);
        Ok(match std::mem::replace(&mut *state, State::Waiting) {
            State::Done(result) => Waited::Done(result),
            other => {
                *state = other;
                drop(state);
                Waited::Late(Handoff(shared))
            }
        })
    }
}

/// A sync load that outran its caller, still running on a thread of the library's own.
pub struct Handoff<R>(Arc<Shared<R>>);

struct Shared<R> {
    state: Mutex<State<R>>,
    ended: Condvar,
}

enum State<R> {
    Waiting,
    Done(Result<R, Panic>),
    /// The caller left: the thread that runs the load finishes it.
    Left(Box<dyn FnOnce(Result<R, Panic>) + Send>),
}

impl<R> Shared<R> {
    /// Called by the thread that ran the load: to the caller if it still waits, else finished
    /// here.
    fn deliver(&self, result: Result<R, Panic>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Waiting) {
            State::Left(finish) => {
                drop(state);
                finish(result);
            }
            State::Waiting | State::Done(_) => {
                *state = State::Done(result);
                self.ended.notify_all();
            }
        }
    }
}

impl<R> LateSync<R> for Handoff<R> {
    fn finish<V>(
        self,
        settle: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        then: impl FnOnce(V) + Send + 'static,
    ) {
        let finish = move |result| then(settle(result));
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Waiting) {
            // It ended between the caller's timeout and now: the caller finishes it.
            State::Done(result) => {
                drop(state);
                finish(result);
            }
            State::Waiting | State::Left(_) => *state = State::Left(Box::new(finish)),
        }
    }
}

/// The body of an async cached function: its future, not yet polled.
pub trait AsyncBody<R>: Sized {
    /// The body's future.
    type Fut: Future<Output = R>;
    /// A load that outran its caller: see [`AsyncBody::call_within`].
    type Late: LateAsync<R>;

    /// The future, to run here.
    fn start(self) -> Self::Fut;

    /// Spawns `job(body, data)` on the caller's tokio runtime; gives both back if the body
    /// cannot leave the caller or there is no runtime.
    fn detach<T, J>(self, data: T, job: impl FnOnce(SendFuture<R>, T) -> J) -> Result<(), (Self, T)>
    where
        J: Future<Output = ()> + Send + 'static,
    {
        let _ = job;
        Err((self, data))
    }

    /// Spawns the body on the caller's tokio runtime and waits for it up to `limit`: its
    /// result, or a handle on the load still running. Gives the body back if it cannot leave
    /// the caller or there is no runtime.
    fn call_within(
        self,
        limit: Duration,
    ) -> impl Future<Output = Result<Waited<R, Self::Late>, Self>> {
        let _ = limit;
        std::future::ready(Err(self))
    }

    /// The load `job` makes with this body, owned by the key: polled in place by the returned
    /// future, and finished on the caller's tokio runtime (for at most `limit` more) if that
    /// future is dropped first. Gives the body and `data` back if the body cannot leave the
    /// caller or there is no runtime.
    fn own<T>(
        self,
        data: T,
        job: impl LoadJob<R, T>,
        limit: Duration,
    ) -> Result<Detached<R>, (Self, T)> {
        let _ = (job, limit);
        Err((self, data))
    }
}

/// The rest of a load, made by the engine once the body is known to leave its caller (see
/// [`AsyncBody::own`]): its future is `Send` because the output is.
pub trait LoadJob<R, T> {
    /// The load's future, with the body moved in (it runs in place, in that future).
    fn start(self, body: SendFuture<R>, data: T) -> SendFuture<R>
    where
        R: Send + 'static;
}

/// A load owned by its key (see [`AsyncBody::own`]): polled by its caller; dropped before it
/// ended, it is handed to the runtime it was made on, which runs it for at most its limit
/// (then drops it: a lease or placeholder it holds is released, and a waiter loads).
pub struct Detached<R> {
    load: Option<SendFuture<R>>,
    runtime: tokio::runtime::Handle,
    limit: Duration,
    /// Hands the load to the runtime (made where the output is known to be `Send`).
    finish: fn(SendFuture<R>, &tokio::runtime::Handle, Duration),
}

impl<R> Future for Detached<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let Some(load) = self.load.as_mut() else {
            return Poll::Pending; // polled after it ended: never, as futures go
        };
        let out = std::task::ready!(load.as_mut().poll(cx));
        self.load = None;
        Poll::Ready(out)
    }
}

impl<R> Drop for Detached<R> {
    fn drop(&mut self) {
        if let Some(load) = self.load.take() {
            (self.finish)(load, &self.runtime, self.limit);
        }
    }
}

/// Finishes a load whose caller left, as a task of `runtime`, for at most `limit`.
fn finish_detached<R: Send + 'static>(
    load: SendFuture<R>,
    runtime: &tokio::runtime::Handle,
    limit: Duration,
) {
    drop(runtime.spawn(async move {
        if within(limit, load).await.is_none() {
            tracing::warn!(
                limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                "cache-runtime: a load whose caller was cancelled outran its limit and was dropped"
            );
        }
    }));
}

impl<Fut: Future> AsyncBody<Fut::Output> for Fut {
    type Fut = Fut;
    type Late = Never;

    #[inline]
    fn start(self) -> Fut {
        self
    }
}

impl<R, Fut> AsyncBody<R> for Owned<Fut>
where
    R: Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    type Fut = Fut;
    type Late = Spawned<R>;

    #[inline]
    fn start(self) -> Fut {
        self.0
    }

    fn detach<T, J>(self, data: T, job: impl FnOnce(SendFuture<R>, T) -> J) -> Result<(), (Self, T)>
    where
        J: Future<Output = ()> + Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(runtime.spawn(job(Box::pin(self.0), data)));
                Ok(())
            }
            Err(_) => Err((self, data)),
        }
    }

    async fn call_within(self, limit: Duration) -> Result<Waited<R, Spawned<R>>, Self> {
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime,
            Err(_) => return Err(self),
        };
        let mut task = runtime.spawn(self.0);
        match within(limit, &mut task).await {
            Some(joined) => Ok(Waited::Done(joined.map_err(panic_of))),
            None => Ok(Waited::Late(Spawned(task))),
        }
    }

    fn own<T>(
        self,
        data: T,
        job: impl LoadJob<R, T>,
        limit: Duration,
    ) -> Result<Detached<R>, (Self, T)> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Ok(Detached {
                load: Some(job.start(Box::pin(self.0), data)),
                runtime,
                limit,
                finish: finish_detached::<R>,
            }),
            Err(_) => Err((self, data)),
        }
    }
}

/// An async load that outran its caller, still running as a task of the caller's runtime.
pub struct Spawned<R>(tokio::task::JoinHandle<R>);

impl<R: Send + 'static> LateAsync<R> for Spawned<R> {
    fn finish<V: Send + 'static, J: Future<Output = ()> + Send + 'static>(
        self,
        settle: impl FnOnce(Result<R, Panic>) -> V + Send + 'static,
        then: impl FnOnce(V) -> J + Send + 'static,
    ) {
        let task = self.0;
        drop(tokio::spawn(async move {
            let value = settle(task.await.map_err(panic_of));
            then(value).await;
        }));
    }
}

/// The panic of a task, or a stand-in for a cancelled one.
fn panic_of(error: tokio::task::JoinError) -> Panic {
    match error.try_into_panic() {
        Ok(panic) => panic,
        Err(_) => Box::new("the load's task was cancelled"),
    }
}

/// Polls a future, catching a panic of its poll as an error.
pub(crate) struct CatchUnwind<Fut>(Pin<Box<Fut>>);

impl<Fut: Future> CatchUnwind<Fut> {
    pub(crate) fn new(fut: Fut) -> Self {
        CatchUnwind(Box::pin(fut))
    }
}

impl<Fut: Future> Future for CatchUnwind<Fut> {
    type Output = Result<Fut::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Probes a body's type: see the module docs. `T` is `(DetachFn, Args, R)` for a sync body
/// (its arguments' types and its output, named by the macro: a closure's `Send` cannot be
/// probed, its captures are inferred too late) or `(DetachFuture, Fut)` for an async one (the
/// future of the body's call).
pub struct Detach<T>(PhantomData<T>);

/// Marks the probe of a sync body.
pub struct DetachFn;
/// Marks the probe of an async body.
pub struct DetachFuture;

impl<Args, R> Detach<(DetachFn, Args, R)> {
    /// The probe of a sync body of these arguments and output.
    pub fn sync() -> Self {
        Detach(PhantomData)
    }
}

impl<Fut> Detach<(DetachFuture, Fut)> {
    /// The probe of the async body `body`.
    pub fn future(body: &Fut) -> Self {
        let _ = body;
        Detach(PhantomData)
    }
}

/// Chosen by the type checker for a body that can leave the caller.
pub trait PickOwned {
    /// The wrapper that lets the engine move the body.
    fn kind(&self) -> Detachable {
        Detachable
    }
}

/// Chosen by the type checker for any other body.
pub trait PickInPlace {
    /// The body stays as it is.
    fn kind(&self) -> InPlace {
        InPlace
    }
}

impl<Args: Send + 'static, R: Send + 'static> PickOwned for &Detach<(DetachFn, Args, R)> {}
impl<Fut> PickOwned for &Detach<(DetachFuture, Fut)> where
    Fut: Future<Output: Send + 'static> + Send + 'static
{
}
impl<T> PickInPlace for Detach<T> {}

/// Wraps a body that can leave the caller.
pub struct Detachable;
/// Leaves a body in place.
pub struct InPlace;

impl Detachable {
    /// The body, movable by the engine.
    pub fn wrap<C>(self, body: C) -> Owned<C> {
        Owned(body)
    }
}

impl InPlace {
    /// The body as it was.
    pub fn wrap<C>(self, body: C) -> C {
        body
    }
}

/// Polls `fut` for at most `limit`; `None` if the time ran out first. The timer is armed only
/// if `fut` does not finish on its first poll, so an uncontended miss starts no timer.
pub(crate) fn within<F: Future>(
    limit: Duration,
    fut: F,
) -> impl Future<Output = Option<F::Output>> {
    within_noting(limit, fut, || {})
}

/// [`within`], calling `pending` at each poll that leaves `fut` pending.
pub(crate) async fn within_noting<F: Future>(
    limit: Duration,
    fut: F,
    pending: impl Fn(),
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer: Option<futures_timer::Delay> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        pending();
        let timer = timer.get_or_insert_with(|| futures_timer::Delay::new(limit));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
