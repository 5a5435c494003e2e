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
//! - `gyges run` installs a panic hook once ([`install`]). It runs on the panicking thread
//!   before unwinding, while the task is still being polled, so it can read the core and the
//!   plugin. It logs one error line with both and the panic message, and raises
//!   [`StopFlag::fail`]: every other core stops as on SIGTERM, and the exit status is 1.
//! - [`join_core`], used by [`super::Running::join`], reports a core that ended with an error
//!   (a panic with no hook installed, a failed executor) as a failure too.
//!
//! The panicking core itself unwinds: glommio drops its tasks, so its ring producers are
//! released and the cores draining them see it gone. [`CoreDone`] makes sure such a core still
//! counts itself done for the filter hosts, which otherwise would wait for it forever.
//!
//! # The test-only fault hook
//!
//! End-to-end tests need a plugin that panics on purpose. `GYGES_FAULT=panic:<plugin section
//! name>`, read once by [`install`], makes that plugin's task panic: a TcpInput or UdpInput on
//! its first message, any other plugin task when it starts. It fires once per process, on the
//! first core to get there (a plugin runs on every core), so a test sees exactly one panic. It
//! exists for tests; a daemon started with it logs a warning saying the fault is armed.

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

/// The plugin armed by the fault hook, read once by [`install`] (none until then).
static FAULT_PLUGIN: OnceLock<Option<String>> = OnceLock::new();
/// Whether the fault hook has fired: it fires once per process.
static FAULT_FIRED: AtomicBool = AtomicBool::new(false);

/// A core thread's identity: its telemetry row (its position in the plan's core list) and
/// the CPU it is pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreId {
    pub row: usize,
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
    let faulty = FAULT_PLUGIN
        .get()
        .and_then(Option::as_deref)
        .is_some_and(|armed| armed == name);
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

/// A plugin's task: sets the thread's current plugin for the length of each poll.
pub struct PluginTask<F> {
    plugin: PluginId,
    /// Whether the fault hook fires on the first poll (a task that is the plugin's start).
    fault_on_start: bool,
    future: Pin<Box<F>>,
}

impl<F: Future> PluginTask<F> {
    /// Wraps `future`, the task of `plugin`; the fault hook, if armed for it, fires on the
    /// first poll.
    pub fn new(plugin: PluginId, future: F) -> PluginTask<F> {
        PluginTask {
            plugin,
            fault_on_start: true,
            future: Box::pin(future),
        }
    }

    /// Wraps `future` without a fault on start: the plugin calls [`fault_point`] itself where
    /// its first message is.
    pub fn quiet(plugin: PluginId, future: F) -> PluginTask<F> {
        PluginTask {
            plugin,
            fault_on_start: false,
            future: Box::pin(future),
        }
    }
}

/// Wraps a plugin's task by name: registers the name on this core and fires the fault hook,
/// if armed for it, when the task starts.
pub fn plugin_task<F: Future>(name: &str, future: F) -> PluginTask<F> {
    PluginTask::new(register_plugin(name), future)
}

impl<F: Future> Future for PluginTask<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        let previous = CURRENT.with(|current| current.replace(Some(self.plugin)));
        if self.fault_on_start {
            self.fault_on_start = false;
            fault_point(self.plugin);
        }
        let polled = self.future.as_mut().poll(context);
        CURRENT.with(|current| current.set(previous));
        polled
    }
}

/// Counts this core as done for the filter hosts exactly once, however the core ends: the
/// normal way ([`CoreDone::count`]), an early return at startup, or a panic unwinding it.
pub struct CoreDone {
    shared: Arc<FilterShared>,
    counted: bool,
}

impl CoreDone {
    /// A guard that has not counted yet.
    pub fn new(shared: Arc<FilterShared>) -> CoreDone {
        CoreDone {
            shared,
            counted: false,
        }
    }

    /// Counts the core done now (once).
    pub fn count(&mut self) {
        if !self.counted {
            self.counted = true;
            self.shared.cores_done.fetch_add(1, Ordering::AcqRel);
        }
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
    pub core: Option<CoreId>,
    pub plugin: Option<Rc<str>>,
    pub message: String,
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
    let armed = FAULT_PLUGIN.get_or_init(|| parse_fault(std::env::var(FAULT_VARIABLE).ok()));
    if let Some(plugin) = armed {
        tracing::warn!(
            plugin = %plugin,
            "{FAULT_VARIABLE} is set: this plugin will panic on purpose (a test-only hook)"
        );
    }
    std::panic::set_hook(Box::new(move |info| {
        let report = PanicReport::capture(info);
        report.log();
        stop.fail(report.reason());
    }));
}

/// The plugin named by a `GYGES_FAULT` value, `panic:<plugin>`; anything else arms nothing.
fn parse_fault(value: Option<String>) -> Option<String> {
    let plugin = value?.strip_prefix("panic:")?.trim().to_string();
    (!plugin.is_empty()).then_some(plugin)
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
                let nested = PluginTask::new(inner, async { current_plugin() });
                let mut nested = std::pin::pin!(nested);
                let Poll::Ready(in_nested) = nested.as_mut().poll(context) else {
                    return Poll::Pending;
                };
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
        assert_eq!(parse_fault(Some("panic:In".into())), Some("In".into()));
        assert_eq!(parse_fault(Some("panic:".into())), None);
        assert_eq!(parse_fault(Some("abort:In".into())), None);
        assert_eq!(parse_fault(None), None);
        let armed = PluginId {
            index: register_plugin("Armed").index,
            faulty: true,
        };
        let caught = std::panic::catch_unwind(|| {
            let task = PluginTask::new(armed, async {});
            let mut task = std::pin::pin!(task);
            let _ = poll_once(task.as_mut());
        });
        let payload = caught.expect_err("an armed plugin panics on start");
        let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("[Armed]"), "{message}");
        // Once per process: the same plugin on another core goes on.
        let task = PluginTask::new(armed, async { 6 });
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(6));
        let calm = register_plugin("Calm");
        assert!(!calm.faulty);
        let task = PluginTask::new(calm, async { 7 });
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(7));
        // A quiet task leaves the trigger to the plugin.
        let task = PluginTask::quiet(armed, async { 8 });
        let mut task = std::pin::pin!(task);
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(8));
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
    }
}
