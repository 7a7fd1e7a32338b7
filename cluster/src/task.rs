//! Long-lived tasks of the cluster side that a supervisor watches and starts
//! again.
//!
//! A [`Task`] is a named loop (the rlog's dispatcher, pump, ticker, group
//! driver, and per consensus shard its Raft server and write batcher; the
//! admin endpoint) built by a start function over state that outlives it
//! (the rlog's shared tables, a receiver kept behind a lock), so a new
//! instance carries on where the last one ended. It is spawned at once, on
//! the runtime that created the [`Tasks`] set, so the layer works without a
//! supervisor (the `rlog_node` example); a node hands the set to its
//! supervision tree, where one worker per task waits on the running
//! instance and ends with the instance's panic, which makes its supervisor
//! start the worker, and with it the task, again.
//!
//! ```text
//!   Tasks ──spawn──▶ instance 1 ──panic──▶ worker exits Panic(msg)
//!                                          supervisor restarts the worker
//!         ◀──Task::run (none running)──── worker starts ──▶ instance 2
//! ```
//!
//! With fault injection on, [`Task::inject_panic`] makes the running
//! instance panic (the admin API's `TaskDebug`), to test exactly that.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A boxed instance of a task.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type StartFn = Box<dyn Fn() -> TaskFuture + Send + Sync>;

/// What a task's supervisor does with the running instance when it stops
/// watching it (the worker is shut down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStop {
    /// Leave it running: it ends with the part it belongs to (the rlog's
    /// stop), because what it serves outlives the supervision tree (the
    /// node's last retained writes go through the rlog after the tree has
    /// stopped). A worker started again adopts it.
    Leave,
    /// Abort it: a worker started again starts a new instance.
    Abort,
}

/// How an instance of a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEnd {
    /// Its loop returned (the part it belongs to was stopped).
    Returned,
    /// It panicked, with this message.
    Panicked(String),
    /// It was aborted.
    Aborted,
}

struct Slot {
    name: String,
    start: StartFn,
    on_stop: OnStop,
    runtime: Handle,
    running: Mutex<Option<JoinHandle<()>>>,
    starts: AtomicU64,
    poke: Arc<Notify>,
    /// Woken when an instance ends (by return, panic or abort).
    ended: Arc<Notify>,
}

/// Wakes a task's watchers when its instance's future is dropped: at its
/// end, when it unwinds from a panic, or when it is aborted.
struct EndGuard(Arc<Notify>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.notify_waiters();
    }
}

/// One long-lived task: its name, how to start an instance, the running
/// one. Clones share it.
#[derive(Clone)]
pub struct Task(Arc<Slot>);

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.0.name)
            .field("starts", &self.starts())
            .finish_non_exhaustive()
    }
}

impl Task {
    /// The task's name (`rlog.pump`, `rlog.raft.<shard>`, `admin`, ...).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// What a supervisor that stops watching does with the instance.
    pub fn on_stop(&self) -> OnStop {
        self.0.on_stop
    }

    /// How many instances were started.
    pub fn starts(&self) -> u64 {
        self.0.starts.load(Ordering::Relaxed)
    }

    /// Whether an instance is running.
    pub fn is_running(&self) -> bool {
        self.0
            .running
            .lock()
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    /// Starts an instance unless one is running.
    pub fn ensure_running(&self) {
        let mut running = self.0.running.lock();
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.start_instance(&mut running);
    }

    /// Starts an instance into `running` (held locked by the caller).
    fn start_instance(&self, running: &mut Option<JoinHandle<()>>) {
        let instance = (self.0.start)();
        let poke = Arc::clone(&self.0.poke);
        let name = self.0.name.clone();
        let guard = EndGuard(Arc::clone(&self.0.ended));
        // A panic requested before this instance started is not its own.
        poke_reset(&poke);
        *running = Some(self.0.runtime.spawn(async move {
            let _guard = guard;
            tokio::select! {
                biased;
                () = poke.notified() => panic!("{name}: panic injected (fault injection)"),
                () = instance => {}
            }
        }));
        self.0.starts.fetch_add(1, Ordering::Relaxed);
    }

    /// Aborts the running instance, if any, and starts a new one (its
    /// state was replaced under it).
    pub fn restart(&self) {
        let mut running = self.0.running.lock();
        if let Some(h) = running.take() {
            h.abort();
        }
        self.start_instance(&mut running);
    }

    /// Waits until the running instance ends (starting one first if none
    /// runs) and tells how it ended.
    pub fn run(&self) -> impl Future<Output = TaskEnd> + Send + 'static {
        self.ensure_running();
        let task = self.clone();
        async move {
            loop {
                // Wait on the handle without taking it: a worker stopped
                // meanwhile leaves it for the next one.
                let ended = task.0.ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                let finished = {
                    let running = task.0.running.lock();
                    running.as_ref().is_none_or(JoinHandle::is_finished)
                };
                if finished {
                    let handle = task.0.running.lock().take();
                    return match handle {
                        None => TaskEnd::Aborted,
                        Some(h) => match h.await {
                            Ok(()) => TaskEnd::Returned,
                            Err(e) if e.is_panic() => TaskEnd::Panicked(panic_message(e)),
                            Err(_) => TaskEnd::Aborted,
                        },
                    };
                }
                // Woken at the instance's end, which its handle shows a
                // moment later; the timeout is a backstop.
                if tokio::time::timeout(std::time::Duration::from_secs(1), ended)
                    .await
                    .is_ok()
                {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// Stops watching: aborts the instance if the task is [`OnStop::Abort`].
    pub fn release(&self) {
        if self.0.on_stop == OnStop::Abort {
            if let Some(h) = self.0.running.lock().take() {
                h.abort();
            }
        }
    }

    /// Makes the running instance panic (fault injection).
    pub fn inject_panic(&self) {
        self.0.poke.notify_one();
    }
}

/// Drops a stored wake-up permit, if any.
fn poke_reset(poke: &Notify) {
    use futures::FutureExt;
    let _ = poke.notified().now_or_never();
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

/// The long-lived tasks of one part of the cluster side, in start order.
/// Clones share them.
#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<Task>>>);

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.lock().iter()).finish()
    }
}

impl Tasks {
    /// Adds a task and starts its first instance on the current runtime.
    /// `start` builds an instance; it is called again for every restart.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, on_stop: OnStop, start: F) -> Task
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let task = Task(Arc::new(Slot {
            name: name.into(),
            start: Box::new(move || Box::pin(start())),
            on_stop,
            runtime: Handle::current(),
            running: Mutex::new(None),
            starts: AtomicU64::new(0),
            poke: Arc::new(Notify::new()),
            ended: Arc::new(Notify::new()),
        }));
        task.ensure_running();
        self.0.lock().push(task.clone());
        task
    }

    /// The tasks, in start order.
    pub fn list(&self) -> Vec<Task> {
        self.0.lock().clone()
    }

    /// The task of this name.
    pub fn get(&self, name: &str) -> Option<Task> {
        self.0.lock().iter().find(|t| t.name() == name).cloned()
    }

    /// Aborts every running instance.
    pub fn abort_all(&self) {
        for t in self.0.lock().iter() {
            if let Some(h) = t.0.running.lock().take() {
                h.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panicked_instance_is_reported_and_a_new_one_starts_on_run() {
        let tasks = Tasks::default();
        let counter = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&counter);
        let task = tasks.spawn("t", OnStop::Leave, move || {
            let c = Arc::clone(&c);
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                std::future::pending::<()>().await;
            }
        });
        assert_eq!(task.starts(), 1);
        let ended = tokio::spawn(task.run());
        tokio::time::sleep(Duration::from_millis(30)).await;
        task.inject_panic();
        let end = tokio::time::timeout(Duration::from_secs(5), ended)
            .await
            .expect("ends")
            .expect("joins");
        assert!(matches!(end, TaskEnd::Panicked(m) if m.contains("panic injected")));
        assert!(!task.is_running());
        let again = tokio::spawn(task.run());
        tokio::time::timeout(Duration::from_secs(5), async {
            while counter.load(Ordering::Relaxed) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("restarted");
        assert_eq!(task.starts(), 2);
        assert!(task.is_running());
        again.abort();
        tasks.abort_all();
    }

    #[tokio::test]
    async fn a_left_instance_is_adopted_and_an_aborted_one_is_started_again() {
        let tasks = Tasks::default();
        let left = tasks.spawn("left", OnStop::Leave, std::future::pending::<()>);
        let aborted = tasks.spawn("aborted", OnStop::Abort, std::future::pending::<()>);
        left.release();
        aborted.release();
        assert!(left.is_running());
        assert!(!aborted.is_running());
        let _w1 = left.run();
        let _w2 = aborted.run();
        assert_eq!(left.starts(), 1);
        assert_eq!(aborted.starts(), 2);
        assert_eq!(tasks.list().len(), 2);
        tasks.abort_all();
    }

    #[tokio::test]
    async fn a_returned_instance_is_reported() {
        let tasks = Tasks::default();
        let task = tasks.spawn("once", OnStop::Leave, || async {});
        let end = tokio::time::timeout(Duration::from_secs(5), task.run())
            .await
            .expect("ends");
        assert_eq!(end, TaskEnd::Returned);
    }
}
