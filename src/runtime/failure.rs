//! The failure policy: a panic on any core stops the whole daemon, gracefully, with a non-zero
//! exit status and one error line that names the core and the plugin.
//!
//! A panic is a broken invariant (house style: operating errors are counted, never panicked
//! on). Left alone, it would kill one executor thread while the others go on: producers toward
//! the dead core would wait for it forever and `gyges run` could still exit 0. So:
//!
//! - Each core thread says who it is once, at start ([`enter_core`]): its telemetry row and
//!   its CPU. The same identity names per-core state files (a Lua decoder's or encoder's
//!   `preserve_data`, see `docs/sandbox.md`).
//! - Each plugin task is wrapped in a [`PluginTask`], which sets a thread-local "current
//!   plugin" on every poll and puts the previous one back after it: one thread-local write per
//!   poll, nothing per message. A plugin registers its name once per core
//!   ([`register_plugin`]) and the task carries the small [`PluginId`].
//! - A [`PluginTask`] also catches its task's panic: the task ends there (its future is
//!   dropped, releasing what it held: borrows, connections, ring producers) and the rest of
//!   the core goes on to stop gracefully with the others. That matters because glommio does
//!   not drop a dead executor's tasks: a core whose thread died would keep its ring producers
//!   forever, and the cores draining its rings would wait for it. The core is marked as having
//!   panicked ([`core_panicked`]), so it saves no state it cannot trust.
//! - `gyges run` installs a panic hook once ([`install`]). It runs on the panicking thread
//!   before unwinding, while the task is still being polled, so it can read the core and the
//!   plugin. It logs one error line with both and the panic message, and raises
//!   [`StopFlag::fail`]: every other core stops as on SIGTERM, and the exit status is 1.
//! - [`join_core`], used by [`super::Running::join`], reports a core that ended with an error
//!   (a panic with no hook installed, a failed executor) as a failure too.
//!
//! A panic outside every plugin task (in the core's own sequence, or glommio's) still unwinds
//! the whole executor thread. [`CoreDone`] makes sure such a core counts itself done for the
//! filter hosts, which otherwise would wait for it forever: the panic hook counts it, on the
//! panicking thread, before unwinding starts. Its ring producers, though, are not released
//! (see above): that case can still hold up the cores that drain its rings.
//!
//! # The test-only fault hook
//!
//! End-to-end tests need a plugin that panics on purpose. `GYGES_FAULT=panic:<plugin section
//! name>`, read once by [`install`], makes that plugin's task panic: a TcpInput or UdpInput on
//! its first message, any other plugin task when it starts. It fires once per process, on the
//! first core to get there (a plugin runs on every core), so a test sees exactly one panic;
//! `panic:<plugin>@<cpu>` arms it on that CPU's core only. It exists for tests; a daemon
//! started with it logs a warning saying the fault is armed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use super::filters::FilterShared;
use super::stop::StopFlag;

/// The environment variable of the test-only fault hook.
pub const FAULT_VARIABLE: &str = "GYGES_FAULT";

/// What the fault hook arms: a plugin, on one CPU's core or on any.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fault {
    plugin: String,
    cpu: Option<usize>,
}

impl Fault {
    fn arms(&self, plugin: &str, core: Option<CoreId>) -> bool {
        let cpu_matches = match self.cpu {
            Some(cpu) => core.is_some_and(|core| core.cpu == cpu),
            None => true,
        };
        self.plugin == plugin && cpu_matches
    }
}

/// The fault hook's target, read once by [`install`] (none until then).
static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
/// Whether the fault hook has fired: it fires once per process.
static FAULT_FIRED: AtomicBool = AtomicBool::new(false);

/// A core thread's identity: its telemetry row (its position in the plan's core list) and
/// the CPU it is pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreId {
    /// The core's telemetry row: its position in the plan's core list.
    pub row: usize,
    /// The CPU the core's thread is pinned to.
    pub cpu: usize,
}

thread_local! {
    /// Set once by [`enter_core`] on each core thread.
    static CORE: Cell<Option<CoreId>> = const { Cell::new(None) };
    /// The plugin whose task this thread is polling, if any.
    static CURRENT: Cell<Option<PluginId>> = const { Cell::new(None) };
    /// The names behind this thread's [`PluginId`]s, registered once per plugin. Bounded by
    /// the plan's plugin count: registering a name again returns the same id.
    static NAMES: RefCell<Vec<Rc<str>>> = const { RefCell::new(Vec::new()) };
    /// What this core counts itself done in, until it has: set by [`CoreDone::new`], taken by
    /// whichever counts first (the core's normal end, the guard's drop, the panic hook).
    static DONE_IN: RefCell<Option<Arc<FilterShared>>> = const { RefCell::new(None) };
    /// Whether a plugin task on this thread panicked (and was caught).
    static PANICKED: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as the core `row` pinned to `cpu`. Call once, first thing on the core.
pub fn enter_core(row: usize, cpu: usize) {
    CORE.with(|core| core.set(Some(CoreId { row, cpu })));
}

/// The core this thread runs, or `None` off the cores (the control thread, tools, tests).
pub fn current_core() -> Option<CoreId> {
    CORE.with(Cell::get)
}

/// A plugin's identity on one core: an index into that core's names, and whether the
/// test-only fault hook is armed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginId {
    index: u32,
    faulty: bool,
}

/// Registers `name` on this thread (once; again returns the same id).
pub fn register_plugin(name: &str) -> PluginId {
    let faulty = FAULT
        .get()
        .and_then(Option::as_ref)
        .is_some_and(|fault| fault.arms(name, current_core()));
    let index = NAMES.with(|names| {
        let mut names = names.borrow_mut();
        match names.iter().position(|known| &**known == name) {
            Some(index) => index,
            None => {
                names.push(Rc::from(name));
                names.len() - 1
            }
        }
    });
    PluginId {
        index: index as u32,
        faulty,
    }
}

/// Whether a plugin task on this core panicked: its state is not trusted (a Lua decoder or
/// encoder does not save it).
pub fn core_panicked() -> bool {
    PANICKED.with(Cell::get)
}

/// The plugin this thread is polling, by name.
pub fn current_plugin() -> Option<Rc<str>> {
    let id = CURRENT.with(Cell::get)?;
    NAMES.with(|names| {
        let names = names.try_borrow().ok()?;
        names.get(id.index as usize).cloned()
    })
}

/// The test-only fault hook's trigger: panics if `GYGES_FAULT` names this plugin and the hook
/// has not fired yet in this process. Plugins call it where "its first message" is (an input,
/// once per connection or socket).
///
/// # Panics
/// On purpose, once, when the fault is armed for `plugin`.
pub fn fault_point(plugin: PluginId) {
    if plugin.faulty && !FAULT_FIRED.swap(true, Ordering::AcqRel) {
        let name = current_plugin().unwrap_or_else(|| Rc::from("?"));
        panic!("{FAULT_VARIABLE}: injected panic in plugin [{name}]");
    }
}

/// A plugin's task: sets the thread's current plugin for the length of each poll, and ends
/// the task if it panics (the hook has logged it and stopped the daemon by then).
pub struct PluginTask<F> {
    plugin: PluginId,
    /// Whether the fault hook fires on the first poll (a task that is the plugin's start).
    fault_on_start: bool,
    /// `None` once the task panicked.
    future: Option<Pin<Box<F>>>,
}

impl<F: Future<Output = ()>> PluginTask<F> {
    /// Wraps `future`, the task of `plugin`; the fault hook, if armed for it, fires on the
    /// first poll.
    pub fn new(plugin: PluginId, future: F) -> PluginTask<F> {
        PluginTask {
            plugin,
            fault_on_start: true,
            future: Some(Box::pin(future)),
        }
    }

    /// Wraps `future` without a fault on start: the plugin calls [`fault_point`] itself where
    /// its first message is.
    pub fn quiet(plugin: PluginId, future: F) -> PluginTask<F> {
        PluginTask {
            plugin,
            fault_on_start: false,
            future: Some(Box::pin(future)),
        }
    }
}

/// Wraps a plugin's task by name: registers the name on this core and fires the fault hook,
/// if armed for it, when the task starts.
pub fn plugin_task<F: Future<Output = ()>>(name: &str, future: F) -> PluginTask<F> {
    PluginTask::new(register_plugin(name), future)
}

impl<F: Future<Output = ()>> Future for PluginTask<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        let previous = CURRENT.with(|current| current.replace(Some(this.plugin)));
        let fault = std::mem::take(&mut this.fault_on_start).then_some(this.plugin);
        // The task's state may be half-updated after a panic, but it is dropped right away
        // and never polled again: nothing observes it.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(plugin) = fault {
                fault_point(plugin);
            }
            future.as_mut().poll(context)
        }));
        CURRENT.with(|current| current.set(previous));
        match polled {
            Ok(poll) => poll,
            Err(_) => {
                PANICKED.with(|panicked| panicked.set(true));
                this.future = None;
                Poll::Ready(())
            }
        }
    }
}

/// Counts this core as done for the filter hosts exactly once, however the core ends: the
/// normal way ([`CoreDone::count`]), an early return at startup (the guard is dropped), or a
/// panic (the hook counts it, whether or not the executor drops the guard afterwards).
pub struct CoreDone {
    /// Not `Send`: the guard stays on the core thread whose thread-local it set.
    _core_thread: std::marker::PhantomData<Rc<()>>,
}

impl CoreDone {
    /// A guard that has not counted yet, for this core thread.
    pub fn new(shared: Arc<FilterShared>) -> CoreDone {
        DONE_IN.with(|done| *done.borrow_mut() = Some(shared));
        CoreDone {
            _core_thread: std::marker::PhantomData,
        }
    }

    /// Counts the core done now (once).
    pub fn count(&mut self) {
        count_core_done();
    }
}

/// Counts this thread's core done if it has not been yet (what [`CoreDone::count`] does, for
/// code on the core that does not hold the guard).
pub fn count_core_done() {
    let shared = DONE_IN.with(|done| done.try_borrow_mut().ok().and_then(|mut done| done.take()));
    if let Some(shared) = shared {
        shared.cores_done.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for CoreDone {
    fn drop(&mut self) {
        self.count();
    }
}

/// What the panic hook says about a panic: where it happened and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicReport {
    /// The core that panicked; `None` for a thread that is not a core (main, a helper).
    pub core: Option<CoreId>,
    /// The plugin whose task was being polled; `None` when the panic was outside any plugin.
    pub plugin: Option<Rc<str>>,
    /// The panic's message, or `(a panic without a message)` for a payload that is not text.
    pub message: String,
    /// `file:line` of the panic; empty when the hook was not told.
    pub location: String,
}

impl PanicReport {
    /// The report of the panic being raised on this thread.
    pub fn capture(info: &std::panic::PanicHookInfo<'_>) -> PanicReport {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_string());
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()))
            .unwrap_or_default();
        PanicReport {
            core: current_core(),
            plugin: current_plugin(),
            message,
            location,
        }
    }

    /// The reason kept for the exit status.
    pub fn reason(&self) -> String {
        let plugin = self.plugin.as_deref().unwrap_or("none");
        match self.core {
            Some(core) => format!(
                "core {} (cpu {}) panicked in plugin [{plugin}]: {}",
                core.row, core.cpu, self.message
            ),
            None => format!("a thread off the cores panicked: {}", self.message),
        }
    }

    /// Logs the one error line.
    fn log(&self) {
        let plugin = self.plugin.as_deref().unwrap_or("none");
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        match self.core {
            Some(core) => tracing::error!(
                cpu = core.cpu,
                core = core.row,
                plugin = %plugin,
                panic = %self.message,
                location = %self.location,
                "a core panicked; stopping the daemon (exit status 1)"
            ),
            None => tracing::error!(
                thread,
                plugin = %plugin,
                panic = %self.message,
                location = %self.location,
                "a thread panicked; stopping the daemon (exit status 1)"
            ),
        }
    }
}

/// Installs the failure policy for `gyges run`: reads the fault hook's variable, and sets the
/// panic hook that logs the core and plugin and fails `stop`. Call once, before the cores
/// start; later calls only replace the flag the hook raises.
pub fn install(stop: Arc<StopFlag>) {
    let armed = FAULT.get_or_init(|| parse_fault(std::env::var(FAULT_VARIABLE).ok()));
    if let Some(Fault { plugin, cpu }) = armed {
        tracing::warn!(
            plugin = %plugin,
            cpu = ?cpu,
            "{FAULT_VARIABLE} is set: this plugin will panic on purpose (a test-only hook)"
        );
    }
    std::panic::set_hook(Box::new(move |info| {
        let report = PanicReport::capture(info);
        report.log();
        // The default hook's backtrace, when asked for with RUST_BACKTRACE: a debugging aid
        // on top of the one line, never instead of it.
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{backtrace}");
        }
        // Inside a plugin task the panic is caught and the core goes on stopping; anywhere
        // else its thread dies, and filter hosts must not wait for it.
        if CURRENT.with(Cell::get).is_none() {
            count_core_done();
        }
        stop.fail(report.reason());
    }));
}

/// The fault a `GYGES_FAULT` value arms: `panic:<plugin>` or `panic:<plugin>@<cpu>`;
/// anything else arms nothing.
fn parse_fault(value: Option<String>) -> Option<Fault> {
    let target = value?.strip_prefix("panic:")?.trim().to_string();
    let (plugin, cpu) = match target.rsplit_once('@') {
        Some((plugin, cpu)) => (plugin.to_string(), Some(cpu.parse().ok()?)),
        None => (target, None),
    };
    (!plugin.is_empty()).then_some(Fault { plugin, cpu })
}

/// Waits for one core's executor and, if it ended with an error, fails `stop` with it. The
/// error is logged here only when it is the first failure: a panic was already logged by the
/// hook.
pub fn join_core(handle: glommio::ExecutorJoinHandle<()>, stop: &StopFlag) {
    let thread = handle.thread().name().unwrap_or("a core").to_string();
    if let Err(error) = handle.join() {
        let reason = format!("{thread} ended with an error: {error}");
        if stop.fail(reason) {
            tracing::error!(%thread, %error, "a core ended with an error (exit status 1)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls a future once with a waker that does nothing.
    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        future.poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn the_current_plugin_is_set_only_while_its_task_is_polled() {
        let outer = register_plugin("outer");
        let inner = register_plugin("inner");
        assert_eq!(register_plugin("outer"), outer, "a name registers once");
        assert_ne!(outer, inner);
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        let task = PluginTask::new(
            outer,
            std::future::poll_fn(move |context| {
                record.borrow_mut().push(current_plugin());
                let in_nested = Rc::new(RefCell::new(None));
                let seen_nested = in_nested.clone();
                let nested = PluginTask::new(inner, async move {
                    *seen_nested.borrow_mut() = current_plugin();
                });
                let mut nested = std::pin::pin!(nested);
                if nested.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                let in_nested = in_nested.borrow_mut().take();
                record.borrow_mut().push(in_nested);
                // Back to the outer plugin once the nested task's poll returns.
                record.borrow_mut().push(current_plugin());
                Poll::Ready(())
            }),
        );
        let mut task = std::pin::pin!(task);
        assert_eq!(current_plugin(), None);
        assert!(poll_once(task.as_mut()).is_ready());
        assert_eq!(current_plugin(), None, "cleared after the poll");
        let names: Vec<Option<String>> = seen
            .borrow()
            .iter()
            .map(|name| name.as_deref().map(str::to_string))
            .collect();
        let expected = ["outer", "inner", "outer"].map(|name| Some(name.to_string()));
        assert_eq!(names, expected);
    }

    #[test]
    fn the_fault_hook_fires_only_for_the_armed_plugin() {
        let fault = |plugin: &str, cpu| {
            Some(Fault {
                plugin: plugin.to_string(),
                cpu,
            })
        };
        assert_eq!(parse_fault(Some("panic:In".into())), fault("In", None));
        assert_eq!(parse_fault(Some("panic:In@3".into())), fault("In", Some(3)));
        assert_eq!(parse_fault(Some("panic:In@x".into())), None);
        assert_eq!(parse_fault(Some("panic:".into())), None);
        let on_cpu_3 = Fault {
            plugin: "In".into(),
            cpu: Some(3),
        };
        let core = |cpu| Some(CoreId { row: 0, cpu });
        assert!(on_cpu_3.arms("In", core(3)));
        assert!(!on_cpu_3.arms("In", core(2)) && !on_cpu_3.arms("In", None));
        assert!(!on_cpu_3.arms("Out", core(3)));
        assert_eq!(parse_fault(Some("abort:In".into())), None);
        assert_eq!(parse_fault(None), None);
        let armed = PluginId {
            index: register_plugin("Armed").index,
            faulty: true,
        };
        let ran = Rc::new(Cell::new(0));
        let run = |ran: &Rc<Cell<u32>>| {
            let ran = ran.clone();
            async move { ran.set(ran.get() + 1) }
        };
        // The armed task panics on start; the wrapper ends it and marks the core.
        assert!(!core_panicked());
        let task = PluginTask::new(armed, run(&ran));
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(()));
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(()), "ended for good");
        assert_eq!(ran.get(), 0, "the task never ran");
        assert!(core_panicked());
        // Once per process: the same plugin on another core goes on.
        let task = PluginTask::new(armed, run(&ran));
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(()));
        assert_eq!(ran.get(), 1);
        let calm = register_plugin("Calm");
        assert!(!calm.faulty);
        // A quiet task leaves the trigger to the plugin.
        let task = PluginTask::quiet(armed, run(&ran));
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(()));
        assert_eq!(ran.get(), 2);
    }

    #[test]
    fn a_report_names_the_core_and_the_plugin() {
        enter_core(1, 3);
        assert_eq!(current_core(), Some(CoreId { row: 1, cpu: 3 }));
        let report = PanicReport {
            core: current_core(),
            plugin: Some(Rc::from("In")),
            message: "boom".into(),
            location: "x.rs:1".into(),
        };
        assert_eq!(
            report.reason(),
            "core 1 (cpu 3) panicked in plugin [In]: boom"
        );
    }

    #[test]
    fn a_core_counts_itself_done_once_however_it_ends() {
        let shared = FilterShared::new(0);
        {
            let mut done = CoreDone::new(shared.clone());
            done.count();
            done.count();
        }
        assert_eq!(shared.cores_done.load(Ordering::Acquire), 1);
        let unwound = std::panic::catch_unwind({
            let shared = shared.clone();
            move || {
                let _done = CoreDone::new(shared);
                panic!("a core's task panicked");
            }
        });
        assert!(unwound.is_err());
        assert_eq!(shared.cores_done.load(Ordering::Acquire), 2);
        // Counted by the hook first: the guard dropped later adds nothing.
        let mut done = CoreDone::new(shared.clone());
        count_core_done();
        done.count();
        drop(done);
        assert_eq!(shared.cores_done.load(Ordering::Acquire), 3);
    }
}
