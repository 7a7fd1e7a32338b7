//! The cluster side under the node's supervision tree: one worker per
//! long-lived task of the cluster side (see `girder_cluster::task`), which
//! waits on the task's running instance and ends with its panic, so that
//! its supervisor starts it, and with it the task, again.
//!
//! ```text
//! cluster (rest_for_one)
//! ├─ rlog (one_for_one)      rlog.dispatch, rlog.pump, rlog.ticker,
//! │                          rlog.group; on cores per consensus shard
//! │                          rlog.raft.<shard>, rlog.batcher.<shard>
//! └─ admin                   the admin endpoint, when `admin.enable`
//! ```
//!
//! A replication task's state (the rows, the feeds, the followed streams,
//! its inbox) lives in the rlog's shared state, not in the task, so a new
//! instance carries on where the panicked one stopped, and the other tasks
//! go on meanwhile (one_for_one). When `rlog` gives up (more than
//! [`RLOG_INTENSITY`] restarts in [`RLOG_PERIOD`]), `cluster` stops and
//! starts the admin endpoint after it (rest_for_one); the rlog's instances
//! that still run are adopted by the new workers rather than stopped
//! ([`OnStop::Leave`]): the node's last retained writes go through them
//! after the tree has stopped. The distribution layer is not a child: its
//! links and reconnect loops recover by themselves, and it is started
//! before and stopped after the tree.

use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, WrapFuture};
use girder_cluster::task::{OnStop, Task, TaskEnd, Tasks};
use girder_supervision::{
    ChildSpec, ExitReason, ProcessContext, Restart, Strategy, SupFlags, SupervisorSpec,
};
use tracing::{info, warn};

/// Restarts of rlog tasks allowed within [`RLOG_PERIOD`] before the
/// `rlog` supervisor gives up.
pub const RLOG_INTENSITY: u32 = 5;
/// The window of [`RLOG_INTENSITY`].
pub const RLOG_PERIOD: Duration = Duration::from_secs(10);

/// Watches one task: ends `Normal` when the task's loop returned (its part
/// was stopped), with `Panic` when it panicked.
#[derive(Debug)]
pub struct TaskWorker {
    task: Task,
}

impl TaskWorker {
    /// The child spec of a transient worker watching `task` (restarted
    /// after the task panicked, not after it returned).
    pub fn child_spec(task: Task) -> ChildSpec {
        ChildSpec::worker(task.name().to_owned(), move || TaskWorker {
            task: task.clone(),
        })
        .restart(Restart::Transient)
    }
}

impl Actor for TaskWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let before = self.task.starts();
        let run = self.task.run();
        if self.task.starts() > before && before > 0 {
            info!(
                task = self.task.name(),
                starts = self.task.starts(),
                "cluster_task_restarted"
            );
        }
        ctx.spawn(run.into_actor(self).map(|end, act, ctx| match end {
            TaskEnd::Returned => ctx.stop(),
            TaskEnd::Panicked(msg) => {
                warn!(task = act.task.name(), cause = %msg, "cluster_task_panicked");
                ctx.exit_with(ExitReason::Panic(msg));
            }
            TaskEnd::Aborted => ctx.exit_with(ExitReason::error("task aborted")),
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.task.release();
    }
}

/// The `cluster` supervisor (rest_for_one): the rlog's tasks under `rlog`,
/// then the admin endpoint's.
pub(super) fn cluster_spec(rlog: &Tasks, admin: Option<&Tasks>) -> ChildSpec {
    let mut rlog_sup = SupervisorSpec::new(
        SupFlags::new(Strategy::OneForOne).intensity(RLOG_INTENSITY, RLOG_PERIOD),
    );
    for task in rlog.list() {
        debug_assert_eq!(task.on_stop(), OnStop::Leave);
        rlog_sup = rlog_sup.child(TaskWorker::child_spec(task));
    }
    let mut cluster = SupervisorSpec::new(
        SupFlags::new(Strategy::RestForOne).intensity(RLOG_INTENSITY, RLOG_PERIOD),
    )
    .child(rlog_sup.into_child_spec("rlog"));
    for task in admin.map(Tasks::list).unwrap_or_default() {
        cluster = cluster.child(TaskWorker::child_spec(task));
    }
    cluster.into_child_spec("cluster")
}
