//! Watches: events that start a service's round at once instead of at its next tick.
//!
//! A service's `watch:` list names things whose going away the kernel tells us about in
//! microseconds: a TCP connection held open to the service ([`tcp`]) closes or resets when
//! its process dies; a process watched through a pidfd ([`pid_file`]) becomes readable when
//! it exits. Polling alone waits half a `check_interval` on average for the next round; a
//! watch event starts that round now ([`Trigger::run_now`]). A watch never decides health
//! by itself: the round's checks do, so a spurious event (a server closing idle
//! connections, a restart by the supervisor) costs one extra round and nothing else.
//!
//! Each kind has its spec in `config/watches/<kind>.rs` and its loop here, in its own
//! file; [`context`] holds what the loops share. A service's [`ServiceWatches`] run beside
//! the service and stop with it (a reload that changes or removes the service).

pub mod context;
pub mod pid_file;
pub mod tcp;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::ServiceConfig;
use crate::config::watches::WatchSpec;
use crate::metrics::Metrics;
use crate::service::rounds::Trigger;
use context::{Context, WatchReport, WatchView};

/// Defines [`spawn_one`], the dispatch from a watch's spec to its loop, from the list of
/// kinds ([`crate::kinds`]).
macro_rules! loops {
    ($($name:literal => $variant:ident($module:ident),)*) => {
        /// Runs the loop of `spec` in `tasks`.
        fn spawn_one(tasks: &mut JoinSet<()>, spec: WatchSpec, cx: Context) {
            match spec {
                $(WatchSpec::$variant(s) => tasks.spawn($module::run(s, cx)),)*
            };
        }
    };
}

crate::kinds::watch_kinds!(loops);

/// A service's watches, ready to run.
pub struct ServiceWatches {
    loops: Vec<(WatchSpec, Context)>,
}

impl ServiceWatches {
    /// One loop per item of the service's `watch:` list, starting rounds through `trigger`.
    pub fn new(svc: &ServiceConfig, trigger: &Trigger, metrics: &Metrics) -> ServiceWatches {
        let loops = svc
            .watch
            .iter()
            .map(|spec| {
                let (report, _) = watch::channel(WatchReport::starting());
                let cx = Context {
                    service: svc.name.clone(),
                    label: spec.label(),
                    trigger: trigger.clone(),
                    metrics: metrics.clone(),
                    report,
                };
                (spec.clone(), cx)
            })
            .collect();
        ServiceWatches { loops }
    }

    /// The watches' states, for the status view, in config order.
    pub fn views(&self) -> Vec<WatchView> {
        self.loops
            .iter()
            .map(|(_, cx)| WatchView {
                service: cx.service.clone(),
                watch: cx.label.clone(),
                report: cx.report.subscribe(),
            })
            .collect()
    }

    /// Runs every watch; they stop when the returned set is dropped (with their service).
    pub fn spawn(self) -> JoinSet<()> {
        // Each watch holds a descriptor for as long as it runs: the soft limit of open files
        // was raised to the hard one at start (crate::fdlimit).
        let mut tasks = JoinSet::new();
        for (spec, cx) in self.loops {
            spawn_one(&mut tasks, spec, cx);
        }
        tasks
    }
}
