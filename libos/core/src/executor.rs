//! A co-operative, single-threaded executor with timers, reactors and idle accounting.
//!
//! Invariants:
//! - one [`Runtime`] drives all tasks of one library OS instance on one thread;
//! - the executor only idles (calls [`Pal::wait_until`]) when no task was woken, no
//!   reactor made progress and no timer expired in the last turn; all time spent in that
//!   call is counted as idle, so `1 - idle / elapsed` is the CPU utilisation.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use crate::pal::Pal;

/// Something the executor polls on every turn besides tasks, e.g. a network stack.
pub trait Reactor {
    /// Does pending work at time `now_ns`; returns true when anything changed (frames
    /// moved, sockets changed state), so the executor turns again instead of idling.
    fn poll(&self, now_ns: u64) -> bool;

    /// Returns the time at which the reactor next needs [`Reactor::poll`], if any.
    fn poll_at(&self, now_ns: u64) -> Option<u64>;
}

/// Busy/idle time of one runtime, as a snapshot since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleStats {
    /// Nanoseconds since the runtime was created.
    pub elapsed_ns: u64,
    /// Nanoseconds of that spent waiting in [`Pal::wait_until`].
    pub idle_ns: u64,
}

impl IdleStats {
    /// Returns the busy fraction (0.0 ..= 1.0) between `earlier` and this snapshot;
    /// 0.0 when no time has passed.
    pub fn utilisation_since(&self, earlier: &IdleStats) -> f64 {
        let elapsed = self.elapsed_ns.saturating_sub(earlier.elapsed_ns);
        if elapsed == 0 {
            return 0.0;
        }
        let idle = self.idle_ns.saturating_sub(earlier.idle_ns).min(elapsed);
        1.0 - idle as f64 / elapsed as f64
    }
}

struct TaskFlag {
    woken: AtomicBool,
    any: Arc<AtomicBool>,
}

impl TaskFlag {
    fn new(any: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(TaskFlag {
            woken: AtomicBool::new(true),
            any,
        })
    }
    fn take(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }
}

impl Wake for TaskFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.any.store(true, Ordering::Release);
    }
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    future: RefCell<Option<LocalFuture>>,
    flag: Arc<TaskFlag>,
    cancelled: Cell<bool>,
    /// The waker of whoever awaits the task's [`JoinHandle`]; woken when the task
    /// finishes or is cancelled.
    join_waiter: Rc<RefCell<Option<Waker>>>,
}

impl Task {
    fn wake_join_waiter(&self) {
        let waker = self.join_waiter.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Inner {
    pal: Box<dyn Pal>,
    start_ns: u64,
    idle_ns: Cell<u64>,
    tasks: RefCell<Vec<Rc<Task>>>,
    timers: RefCell<BTreeMap<(u64, u64), Waker>>,
    next_timer_id: Cell<u64>,
    reactors: RefCell<Vec<Weak<dyn Reactor>>>,
    any_woken: Arc<AtomicBool>,
}

/// Handle to a co-operative executor; cheap to clone, all clones drive the same tasks.
#[derive(Clone)]
pub struct Runtime {
    inner: Rc<Inner>,
}

impl Runtime {
    /// Creates a runtime over the platform `pal`; its clock starts now.
    pub fn new(pal: impl Pal + 'static) -> Runtime {
        let start_ns = pal.now_ns();
        Runtime {
            inner: Rc::new(Inner {
                pal: Box::new(pal),
                start_ns,
                idle_ns: Cell::new(0),
                tasks: RefCell::new(Vec::new()),
                timers: RefCell::new(BTreeMap::new()),
                next_timer_id: Cell::new(0),
                reactors: RefCell::new(Vec::new()),
                any_woken: Arc::new(AtomicBool::new(true)),
            }),
        }
    }

    /// Returns the platform layer this runtime runs on.
    pub fn pal(&self) -> &dyn Pal {
        &*self.inner.pal
    }

    /// Returns the platform's monotonic time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.inner.pal.now_ns()
    }

    /// Returns busy/idle time since the runtime was created.
    pub fn idle_stats(&self) -> IdleStats {
        IdleStats {
            elapsed_ns: self.now_ns().saturating_sub(self.inner.start_ns),
            idle_ns: self.inner.idle_ns.get(),
        }
    }

    /// Registers a reactor polled on every turn; it is dropped from the list once the
    /// last strong reference to it goes away.
    pub fn add_reactor(&self, reactor: Weak<dyn Reactor>) {
        self.inner.reactors.borrow_mut().push(reactor);
    }

    /// Starts `future` as a task; the returned handle yields its output or cancels it.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(JoinState {
            result: RefCell::new(None),
        });
        let join_waiter = Rc::new(RefCell::new(None::<Waker>));
        let task_state = state.clone();
        let task_waiter = join_waiter.clone();
        let wrapped = async move {
            let output = future.await;
            *task_state.result.borrow_mut() = Some(output);
            let waker = task_waiter.borrow_mut().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        };
        let task = Rc::new(Task {
            future: RefCell::new(Some(Box::pin(wrapped))),
            flag: TaskFlag::new(self.inner.any_woken.clone()),
            cancelled: Cell::new(false),
            join_waiter,
        });
        self.inner.any_woken.store(true, Ordering::Release);
        self.inner.tasks.borrow_mut().push(task.clone());
        JoinHandle {
            state,
            task: Rc::downgrade(&task),
        }
    }

    /// Returns the number of tasks that have not finished.
    pub fn task_count(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    /// Runs `future` (and all spawned tasks alongside it) until `future` completes.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = core::pin::pin!(future);
        let flag = TaskFlag::new(self.inner.any_woken.clone());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            let mut busy = self.turn();
            if flag.take() {
                busy = true;
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            if !busy {
                self.idle();
            }
        }
    }

    /// Runs spawned tasks until none is left.
    pub fn run(&self) {
        while self.task_count() > 0 {
            if !self.turn() {
                self.idle();
            }
        }
    }

    /// One turn: fire timers, poll reactors, poll woken tasks. Returns true if anything
    /// happened.
    fn turn(&self) -> bool {
        let now = self.now_ns();
        let mut busy = self.fire_timers(now);
        busy |= self.poll_reactors(now);
        self.inner.any_woken.store(false, Ordering::Release);
        let tasks: Vec<Rc<Task>> = self.inner.tasks.borrow().clone();
        let mut finished = false;
        for task in tasks {
            if task.cancelled.get() {
                // Drop the future outside the borrow so its destructor may spawn or abort.
                let old = task.future.borrow_mut().take();
                drop(old);
                // Whoever awaits the handle learns of the cancellation now; without this
                // wake-up a task aborted by someone else leaves its awaiter asleep forever.
                task.wake_join_waiter();
                finished = true;
                continue;
            }
            if !task.flag.take() {
                continue;
            }
            busy = true;
            let waker = Waker::from(task.flag.clone());
            let mut cx = Context::from_waker(&waker);
            let mut slot = task.future.borrow_mut();
            let done = match slot.as_mut() {
                Some(future) => future.as_mut().poll(&mut cx).is_ready(),
                None => true,
            };
            if done {
                // Drop the future outside the borrow so its destructor may spawn or abort.
                let old = slot.take();
                drop(slot);
                drop(old);
                finished = true;
            }
        }
        if finished {
            self.inner
                .tasks
                .borrow_mut()
                .retain(|task| task.future.borrow().is_some() && !task.cancelled.get());
        }
        busy || self.inner.any_woken.load(Ordering::Acquire)
    }

    fn fire_timers(&self, now: u64) -> bool {
        let mut fired = false;
        loop {
            let entry = {
                let mut timers = self.inner.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((&(deadline, _), _)) if deadline <= now => timers.pop_first(),
                    _ => None,
                }
            };
            match entry {
                Some((_, waker)) => {
                    waker.wake();
                    fired = true;
                }
                None => return fired,
            }
        }
    }

    fn poll_reactors(&self, now: u64) -> bool {
        let reactors: Vec<Weak<dyn Reactor>> = self.inner.reactors.borrow().clone();
        let mut progress = false;
        let mut dead = false;
        for reactor in reactors {
            match reactor.upgrade() {
                Some(reactor) => progress |= reactor.poll(now),
                None => dead = true,
            }
        }
        if dead {
            self.inner
                .reactors
                .borrow_mut()
                .retain(|r| r.strong_count() > 0);
        }
        progress
    }

    /// Waits in the PAL until the next timer or reactor deadline, counting the time idle.
    fn idle(&self) {
        let now = self.now_ns();
        let mut deadline = self
            .inner
            .timers
            .borrow()
            .first_key_value()
            .map(|(&(d, _), _)| d);
        let reactors: Vec<Weak<dyn Reactor>> = self.inner.reactors.borrow().clone();
        for reactor in reactors.iter().filter_map(Weak::upgrade) {
            if let Some(at) = reactor.poll_at(now) {
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
        }
        if deadline.is_some_and(|d| d <= now) || self.inner.any_woken.load(Ordering::Acquire) {
            return;
        }
        let pal = &self.inner.pal;
        pal.idle_enter();
        pal.wait_until(deadline);
        let idle = self.now_ns().saturating_sub(now);
        self.inner.idle_ns.set(self.inner.idle_ns.get() + idle);
        pal.idle_exit(idle);
    }

    fn register_timer(&self, key: Option<(u64, u64)>, deadline: u64, waker: &Waker) -> (u64, u64) {
        let mut timers = self.inner.timers.borrow_mut();
        if let Some(key) = key {
            if let Some(slot) = timers.get_mut(&key) {
                if !slot.will_wake(waker) {
                    slot.clone_from(waker);
                }
                return key;
            }
        }
        let id = self.inner.next_timer_id.get();
        self.inner.next_timer_id.set(id + 1);
        timers.insert((deadline, id), waker.clone());
        (deadline, id)
    }

    fn cancel_timer(&self, key: (u64, u64)) {
        self.inner.timers.borrow_mut().remove(&key);
    }

    /// Returns a future that completes at `deadline_ns` on the runtime's clock.
    pub fn sleep_until(&self, deadline_ns: u64) -> Sleep {
        Sleep {
            runtime: self.clone(),
            deadline_ns,
            key: None,
        }
    }

    /// Returns a future that completes `duration_ns` nanoseconds from now.
    pub fn sleep(&self, duration_ns: u64) -> Sleep {
        self.sleep_until(self.now_ns().saturating_add(duration_ns))
    }

    /// Runs `future` for at most `duration_ns`; returns `Err(Elapsed)` if time ran out
    /// first (the future is then dropped).
    pub async fn timeout<F: Future>(
        &self,
        duration_ns: u64,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        match select(future, self.sleep(duration_ns)).await {
            Either::Left(output) => Ok(output),
            Either::Right(()) => Err(Elapsed),
        }
    }
}

/// Shared completion state between a task and its [`JoinHandle`].
struct JoinState<T> {
    result: RefCell<Option<T>>,
}

/// Awaits a spawned task's output, or cancels the task.
///
/// Dropping the handle detaches the task (it keeps running).
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
    task: Weak<Task>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped at the start of the next executor turn.
    /// Has no effect on a task that already finished.
    pub fn abort(&self) {
        if let Some(task) = self.task.upgrade() {
            task.cancelled.set(true);
            task.flag.wake_by_ref();
        }
    }

    /// Returns true once the task has finished or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.task
            .upgrade()
            .is_none_or(|t| t.cancelled.get() || t.future.try_borrow().is_ok_and(|f| f.is_none()))
    }

    /// Takes the task's output if it has finished, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.state.result.borrow_mut().take()
    }
}

impl<T> Future for JoinHandle<T> {
    /// `None` when the task was cancelled before finishing.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(output) = self.state.result.borrow_mut().take() {
            return Poll::Ready(Some(output));
        }
        match self.task.upgrade() {
            Some(task) if !task.cancelled.get() => {
                *task.join_waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(None),
        }
    }
}

/// Future returned by [`Runtime::sleep`] and [`Runtime::sleep_until`].
pub struct Sleep {
    runtime: Runtime,
    deadline_ns: u64,
    key: Option<(u64, u64)>,
}

impl Sleep {
    /// Returns the deadline on the runtime's clock.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.runtime.now_ns() >= self.deadline_ns {
            if let Some(key) = self.key.take() {
                self.runtime.cancel_timer(key);
            }
            return Poll::Ready(());
        }
        let key = self
            .runtime
            .register_timer(self.key, self.deadline_ns, cx.waker());
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.runtime.cancel_timer(key);
        }
    }
}

/// The deadline of a [`Runtime::timeout`] passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

/// Which of two futures given to [`select`] finished first, with its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// Waits for whichever of `left` and `right` finishes first (`left` wins a tie); the
/// other is dropped.
pub async fn select<A: Future, B: Future>(left: A, right: B) -> Either<A::Output, B::Output> {
    let mut left = core::pin::pin!(left);
    let mut right = core::pin::pin!(right);
    core::future::poll_fn(move |cx| {
        if let Poll::Ready(output) = left.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(output));
        }
        if let Poll::Ready(output) = right.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(output));
        }
        Poll::Pending
    })
    .await
}

/// Returns a future that yields to the executor once, letting other tasks run.
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use alloc::vec;

    /// A PAL with a simulated clock: waiting jumps the clock to the deadline.
    struct FakePal {
        now: Rc<Cell<u64>>,
        waits: Rc<Cell<u32>>,
    }

    impl Pal for FakePal {
        fn now_ns(&self) -> u64 {
            self.now.get()
        }
        fn wait_until(&self, deadline_ns: Option<u64>) {
            self.waits.set(self.waits.get() + 1);
            let deadline = deadline_ns.expect("executor waited without a deadline");
            self.now.set(self.now.get().max(deadline));
        }
        fn console_write(&self, _text: &str) {}
    }

    fn runtime() -> (Runtime, Rc<Cell<u64>>, Rc<Cell<u32>>) {
        let now = Rc::new(Cell::new(1_000));
        let waits = Rc::new(Cell::new(0));
        (
            Runtime::new(FakePal {
                now: now.clone(),
                waits: waits.clone(),
            }),
            now,
            waits,
        )
    }

    #[test]
    fn block_on_returns_the_output() {
        let (rt, _, waits) = runtime();
        assert_eq!(rt.block_on(async { 41 + 1 }), 42);
        assert_eq!(waits.get(), 0);
    }

    #[test]
    fn sleeps_wake_in_deadline_order_and_count_as_idle() {
        let (rt, now, _) = runtime();
        let order = Rc::new(RefCell::new(vec![]));
        for (delay, tag) in [(300u64, 'c'), (100, 'a'), (200, 'b')] {
            let (rt2, order) = (rt.clone(), order.clone());
            rt.spawn(async move {
                rt2.sleep(delay).await;
                order.borrow_mut().push((tag, rt2.now_ns()));
            });
        }
        rt.run();
        assert_eq!(
            *order.borrow(),
            vec![('a', 1_100), ('b', 1_200), ('c', 1_300)]
        );
        assert_eq!(now.get(), 1_300);
        let stats = rt.idle_stats();
        assert_eq!(
            stats,
            IdleStats {
                elapsed_ns: 300,
                idle_ns: 300
            }
        );
        assert_eq!(stats.utilisation_since(&IdleStats::default()), 0.0);
    }

    #[test]
    fn join_handles_yield_outputs_and_abort_cancels() {
        let (rt, _, _) = runtime();
        let rt2 = rt.clone();
        let forever = rt.spawn(async move {
            rt2.sleep(u64::MAX / 2).await;
            1
        });
        let quick = rt.spawn(async { 7 });
        let rt3 = rt.clone();
        let result = rt.block_on(async move {
            let value = quick.await;
            forever.abort();
            let cancelled = forever.await;
            yield_now().await;
            (value, cancelled, rt3.task_count())
        });
        assert_eq!(result, (Some(7), None, 0));
    }

    #[test]
    fn aborting_a_task_wakes_whoever_awaits_it() {
        let (rt, _, _) = runtime();
        let rt2 = rt.clone();
        let victim = Rc::new(RefCell::new(rt.spawn(async move {
            rt2.sleep(u64::MAX / 2).await;
            1
        })));
        let awaited = victim.clone();
        // The awaiter parks on the handle first; someone else aborts the task later.
        let awaiter = rt.spawn(async move {
            core::future::poll_fn(|cx| Pin::new(&mut *awaited.borrow_mut()).poll(cx)).await
        });
        let rt3 = rt.clone();
        let result = rt.block_on(async move {
            yield_now().await;
            victim.borrow().abort();
            // Without the wake-up the awaiter never finishes and the fake PAL panics on
            // a wait without deadline.
            awaiter.await
        });
        assert_eq!(result, Some(None));
        assert_eq!(rt3.task_count(), 0);
    }

    #[test]
    fn timeout_and_select() {
        let (rt, now, _) = runtime();
        let rt2 = rt.clone();
        let (slow, fast) = rt.block_on(async move {
            let slow = rt2.timeout(50, rt2.sleep(100)).await;
            let fast = rt2.timeout(100, async { 5 }).await;
            (slow, fast)
        });
        assert_eq!(slow, Err(Elapsed));
        assert_eq!(fast, Ok(5));
        assert_eq!(now.get(), 1_050);
        // Dropped sleeps leave no timers behind.
        assert!(rt.inner.timers.borrow().is_empty());
        let rt3 = rt.clone();
        let winner = rt.block_on(async move { select(rt3.sleep(10), rt3.sleep(5)).await });
        assert_eq!(winner, Either::Right(()));
    }

    #[test]
    fn busy_time_counts_against_idle() {
        let (rt, now, _) = runtime();
        let rt2 = rt.clone();
        let start = rt.idle_stats();
        rt.block_on(async move {
            now.set(now.get() + 300); // "work" for 300 ns
            rt2.sleep(100).await; // idle for 100 ns
        });
        let busy = rt.idle_stats().utilisation_since(&start);
        assert!((busy - 0.75).abs() < 1e-9, "{busy}");
    }
}
