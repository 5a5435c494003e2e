//! SandboxManagerFilter: loads, replaces and unloads SandboxFilters at run time, from signed
//! control messages (Heka's `heka.control.sandbox`, see [`control`]), and brings them back
//! after a restart.
//!
//! Design constraints (`docs/sandbox_manager.md` has the whole story):
//!
//! - **The data path keeps its shape.** Every core evaluates every filter matcher itself and
//!   ships matches over its lanes to the filter's host core. The plan reserves `max_filters`
//!   dynamic *slots* right after the manager, hosted on the manager's core; each is an
//!   ordinary filter of the plan whose static matcher is `FALSE`. What a slot really matches
//!   is published on its manager's [`super::slots::SlotBoard`], which each core's router reads once
//!   per batch; nothing on the data path takes a lock.
//! - **Lua work stays on the host core.** A load compiles the matcher, writes the files and
//!   builds the Lua state in the manager's `process` call, on the manager's core; only then is
//!   the matcher published. An unload publishes "matches nothing" first, then stops the
//!   state as a clean stop does (its last `timer_event` if `timer_event_on_shutdown`, its
//!   state saved if `preserve_data`, kept for a later load) and drops it; records still in
//!   flight for the slot are counted as dropped by the host. A replace stops the old state
//!   the same way just before building the new one, which restores what it saved.
//! - **Loaded filters survive a restart.** Each is kept as `<manager>-<name>.toml` (the
//!   control message's config) and `<manager>-<name>.lua` under `working_directory`, written
//!   before the filter is reported loaded; the manager's build on its core loads them again.
//! - **Only signed commands act.** The manager requires `message_signer`; the router only
//!   lets it see messages whose frame that signer signed (and counts the others as
//!   `rejected_total`); the input drops frames whose HMAC does not verify
//!   (`auth_failures_total`).

pub mod control;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::control::{Command, Limits, Refusal};
use super::slots::SlotBoard;
use super::{Emitted, Filter, FilterBuild, FilterKind, Outcome};
use crate::config::plan::FilterPlan;
use crate::config::{ConfigError, Section};
use crate::filter::sandbox::SandboxFilter;
use crate::limits::{SANDBOX_MANAGER_FILTERS_DEFAULT, SANDBOX_MANAGER_FILTERS_MAX};
use crate::matcher::{Dialect, Program};
use crate::message::MessageView;
use crate::sandbox::{CallStatus, HostInfo, SandboxConfig};

/// The manager's default `message_matcher`, as in Heka.
pub const CONTROL_MATCHER_DEFAULT: &str = "Type == 'heka.control.sandbox'";
/// How often a slot's host timer fires; a loaded filter's `ticker_interval` (whole seconds)
/// is kept within this.
const SLOT_TICK: Duration = Duration::from_secs(1);

/// A SandboxManagerFilter's own keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManager {
    /// Where loaded filters are kept (default `<base_dir>/sbxmgrs/<name>`; relative to
    /// `base_dir`).
    working_directory: Option<PathBuf>,
    /// How many filters it may run at once: the slots the plan reserves.
    max_filters: Option<usize>,
    /// Bytes of Lua state of each loaded filter (the sandbox default when absent).
    memory_limit: Option<usize>,
    /// Instructions per call of each loaded filter.
    instruction_limit: Option<u64>,
    /// Bytes of output of each loaded filter.
    output_limit: Option<usize>,
    /// Where the loaded filters' `require` finds Lua modules.
    module_directory: Option<PathBuf>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<FilterPlan> =
    crate::component::Registration {
        type_names: &["SandboxManagerFilter"],
        plan: plan_manager,
    };

fn plan_manager(
    section: &Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<FilterPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    section.refuse(
        "message_signer",
        common.message_signer.is_none(),
        "a SandboxManagerFilter must set message_signer: it runs code it receives",
    )?;
    let durable =
        common.use_buffering == Some(true) || common.delivery.as_deref() == Some("durable");
    section.refuse(
        "use_buffering",
        durable,
        "a SandboxManagerFilter has no disk queue",
    )?;
    let matcher = common
        .message_matcher
        .clone()
        .unwrap_or_else(|| CONTROL_MATCHER_DEFAULT.to_string());
    let signer = common.message_signer.clone();
    let delivery = super::plan::delivery(section, context, common)?;
    let raw: RawManager = own.parse()?;
    let slots = raw.max_filters.unwrap_or(SANDBOX_MANAGER_FILTERS_DEFAULT);
    if !(1..=SANDBOX_MANAGER_FILTERS_MAX).contains(&slots) {
        let message = format!("must be within 1..={SANDBOX_MANAGER_FILTERS_MAX}");
        return Err(section.error(Some("max_filters"), message));
    }
    let limits = limits_of(section, &raw)?;
    let base_dir = &context.global.base_dir;
    let directory = match &raw.working_directory {
        Some(directory) => base_dir.join(directory),
        None => base_dir.join("sbxmgrs").join(&section.name),
    };
    let kind = ManagerKind {
        name: section.name.clone(),
        board: SlotBoard::new(slots),
        directory,
        limits,
        dialect: context.global.dialect,
    };
    let selects = (Some(matcher.as_str()), signer.as_deref());
    super::plan::filter_plan(section, context, selects, delivery, Arc::new(kind))
}

/// The limits for loaded filters, checked as a sandbox checks its own.
fn limits_of(section: &Section, raw: &RawManager) -> Result<Limits, ConfigError> {
    let mut check = SandboxConfig::new("manager");
    check.memory_limit = raw.memory_limit.unwrap_or(check.memory_limit);
    check.instruction_limit = raw.instruction_limit.unwrap_or(check.instruction_limit);
    check.output_limit = raw.output_limit.unwrap_or(check.output_limit);
    if let Err(error) = check.validate() {
        let message = error.to_string();
        let keys = ["memory_limit", "instruction_limit", "output_limit"];
        let key = keys.iter().find(|key| message.contains(*key)).copied();
        return Err(section.error(key, message));
    }
    Ok(Limits {
        memory_limit: check.memory_limit,
        instruction_limit: check.instruction_limit,
        output_limit: check.output_limit,
        module_directory: raw.module_directory.clone(),
    })
}

/// The manager's plan: its slots' board, its directory and the limits it gives.
#[derive(Debug)]
pub struct ManagerKind {
    name: String,
    board: Arc<SlotBoard>,
    directory: PathBuf,
    limits: Limits,
    dialect: Dialect,
}

impl FilterKind for ManagerKind {
    fn type_name(&self) -> &'static str {
        "SandboxManagerFilter"
    }

    fn dynamic_slots(&self, manager: &FilterPlan) -> Vec<FilterPlan> {
        (0..self.board.len())
            .map(|slot| FilterPlan {
                name: slot_name(&self.name, slot),
                // Until something is loaded into it, a slot matches nothing.
                matcher: never(),
                message_signer: None,
                host_core: manager.host_core,
                ring_full: manager.ring_full,
                kind: Arc::new(SlotKind {
                    manager: self.name.clone(),
                    board: self.board.clone(),
                    slot,
                }),
                durable: None,
            })
            .collect()
    }

    fn build(&self, build: &FilterBuild<'_>) -> Result<Box<dyn Filter>, String> {
        let core = Rc::new(ManagerCore {
            name: self.name.clone(),
            board: self.board.clone(),
            directory: self.directory.clone(),
            limits: self.limits.clone(),
            dialect: self.dialect,
            host: crate::sandbox::plan::host_info(build.global),
            slots: RefCell::new((0..self.board.len()).map(|_| None).collect()),
        });
        std::fs::create_dir_all(&self.directory)
            .map_err(|error| format!("working_directory {}: {error}", self.directory.display()))?;
        core.restore();
        build
            .local
            .borrow_mut()
            .insert(self.name.clone(), core.clone() as Rc<dyn std::any::Any>);
        Ok(Box::new(Manager { core }))
    }
}

/// The matcher of an empty slot.
fn never() -> Program {
    crate::matcher::compile("FALSE", Dialect::Heka).expect("FALSE compiles")
}

/// The plan name of a manager's slot `slot` (its telemetry row): `<manager>#<slot>`.
pub fn slot_name(manager: &str, slot: usize) -> String {
    format!("{manager}#{slot}")
}

/// One dynamic slot's plan.
#[derive(Debug)]
pub struct SlotKind {
    manager: String,
    board: Arc<SlotBoard>,
    slot: usize,
}

impl FilterKind for SlotKind {
    fn type_name(&self) -> &'static str {
        "SandboxManagerFilter slot"
    }

    fn slot_board(&self) -> Option<(&Arc<SlotBoard>, usize)> {
        Some((&self.board, self.slot))
    }

    fn build(&self, build: &FilterBuild<'_>) -> Result<Box<dyn Filter>, String> {
        let local = build.local.borrow();
        let core = local
            .get(&self.manager)
            .cloned()
            .and_then(|core| core.downcast::<ManagerCore>().ok())
            .ok_or_else(|| format!("the manager [{}] is not built on this core", self.manager))?;
        Ok(Box::new(Slot {
            core,
            slot: self.slot,
        }))
    }
}

/// A filter loaded into a slot.
struct Loaded {
    /// Its section name.
    name: String,
    filter: SandboxFilter,
    ticker: Option<Duration>,
    next_tick: Instant,
}

/// What the manager and its slots share on their host core.
struct ManagerCore {
    name: String,
    board: Arc<SlotBoard>,
    directory: PathBuf,
    limits: Limits,
    dialect: Dialect,
    host: HostInfo,
    slots: RefCell<Vec<Option<Loaded>>>,
}

impl ManagerCore {
    fn full_name(&self, name: &str) -> String {
        format!("{}-{name}", self.name)
    }

    fn path(&self, name: &str, extension: &str) -> PathBuf {
        self.directory
            .join(format!("{}.{extension}", self.full_name(name)))
    }

    /// The slot running `name`, else a free one.
    fn slot_for(&self, name: &str) -> Result<(usize, bool), Refusal> {
        let slots = self.slots.borrow();
        let running = slots
            .iter()
            .position(|slot| matches!(slot, Some(loaded) if loaded.name == name));
        if let Some(slot) = running {
            return Ok((slot, true));
        }
        let free = slots.iter().position(Option::is_none);
        free.map(|slot| (slot, false)).ok_or(Refusal::Full)
    }

    /// Loads (or replaces) a filter: its state first, then its files, then its matcher.
    /// Returns its name, its slot and whether it replaced a running one. A replaced filter
    /// is stopped as an unload stops it ([`ManagerCore::stop_filter`]) just before the new
    /// state is built, so a new one with `preserve_data` starts from its state; if the new
    /// one then does not start, the old one runs on.
    fn load(
        &self,
        (config, source): (&str, &[u8]),
        now_ns: i64,
        inject: &mut Vec<u8>,
    ) -> Result<(String, usize, bool), Refusal> {
        let pending = |name: &str| self.path(name, "lua.pending");
        let loadable = control::loadable(config, pending, &self.limits)?;
        let (slot, replaces) = self.slot_for(&loadable.name)?;
        let expression = loadable.matcher.as_deref().unwrap_or("FALSE");
        let matcher = crate::matcher::compile(expression, self.dialect)
            .map_err(|error| Refusal::BadConfig(format!("message_matcher: {error}")))?;
        let storage = |error: std::io::Error| Refusal::Storage(error.to_string());
        let script = &loadable.config.filename;
        std::fs::write(script, source).map_err(storage)?;
        if replaces {
            if let Some(old) = self.slots.borrow_mut()[slot].as_mut() {
                self.stop_filter(old, now_ns, inject);
            }
        }
        let full_name = self.full_name(&loadable.name);
        let filter = match SandboxFilter::new(&full_name, &loadable.config, &self.host) {
            Ok(filter) => filter,
            Err(error) => {
                let _ = std::fs::remove_file(script);
                return Err(Refusal::NotStarted(error.to_string()));
            }
        };
        std::fs::rename(script, self.path(&loadable.name, "lua")).map_err(storage)?;
        write_atomically(&self.path(&loadable.name, "toml"), config.as_bytes()).map_err(storage)?;
        let ticker = match filter.ticker_interval_s() {
            0 => None,
            seconds => Some(Duration::from_secs(seconds)),
        };
        let loaded = Loaded {
            name: loadable.name.clone(),
            filter,
            ticker,
            next_tick: Instant::now() + ticker.unwrap_or(SLOT_TICK),
        };
        // The state is in place before any core can match for it.
        self.slots.borrow_mut()[slot] = Some(loaded);
        self.board.publish(slot, Some(Arc::new(matcher)));
        Ok((loadable.name, slot, replaces))
    }

    /// Unloads `name`: its matcher first, then it is stopped as at a clean shutdown (its
    /// last `timer_event` if `timer_event_on_shutdown`, whose injections go to `inject`; its
    /// state saved if `preserve_data`), then its files are removed. The saved state is kept:
    /// a later load of the name with `preserve_data` starts from it.
    fn unload(&self, name: &str, now_ns: i64, inject: &mut Vec<u8>) -> Result<usize, Refusal> {
        let slot = self
            .slots
            .borrow()
            .iter()
            .position(|slot| matches!(slot, Some(loaded) if loaded.name == name))
            .ok_or(Refusal::NotLoaded)?;
        if let Some(mut loaded) = self.retire(slot) {
            self.stop_filter(&mut loaded, now_ns, inject);
        }
        Ok(slot)
    }

    /// Stops a loaded filter as the daemon's clean stop does: a last `timer_event` if it
    /// asked for one, then its state saved if `preserve_data`. A state that cannot be saved
    /// is logged and lost, as at a stop.
    fn stop_filter(&self, loaded: &mut Loaded, now_ns: i64, inject: &mut Vec<u8>) {
        if let Err(error) = loaded.filter.shutdown(now_ns, inject) {
            tracing::error!(
                manager = %self.name, filter = %loaded.name, %error,
                "the loaded filter's state could not be saved"
            );
        }
    }

    /// Empties `slot`: publishes "matches nothing", takes the state out, removes the files.
    fn retire(&self, slot: usize) -> Option<Loaded> {
        self.board.publish(slot, None);
        let loaded = self.slots.borrow_mut()[slot].take();
        if let Some(loaded) = &loaded {
            for extension in ["toml", "lua"] {
                let _ = std::fs::remove_file(self.path(&loaded.name, extension));
            }
        }
        loaded
    }

    /// Loads again every filter kept in the working directory (at start).
    fn restore(&self) {
        let Ok(entries) = std::fs::read_dir(&self.directory) else {
            return;
        };
        let prefix = format!("{}-", self.name);
        let mut configs: Vec<PathBuf> = entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "toml")
            })
            .filter(|path| {
                let stem = path.file_stem().and_then(|stem| stem.to_str());
                stem.is_some_and(|stem| stem.starts_with(&prefix))
            })
            .collect();
        configs.sort();
        for path in configs {
            let restored = std::fs::read_to_string(&path)
                .and_then(|config| Ok((config, std::fs::read(path.with_extension("lua"))?)))
                .map_err(|error| Refusal::Storage(error.to_string()))
                .and_then(|(config, source)| {
                    // Nothing runs in a slot yet: no replace, nothing injected.
                    let now_ns = crate::message::now_ns();
                    self.load((&config, &source), now_ns, &mut Vec::new())
                });
            match restored {
                Ok((name, slot, _)) => {
                    tracing::info!(manager = %self.name, filter = %name, slot, "filter restored");
                }
                Err(error) => tracing::error!(
                    manager = %self.name, file = %path.display(), %error,
                    "a kept filter could not be loaded again"
                ),
            }
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// The manager itself: it acts on control messages.
struct Manager {
    core: Rc<ManagerCore>,
}

impl Manager {
    fn act(&self, message: &MessageView<'_>, inject: &mut Vec<u8>) -> Result<(), Refusal> {
        let core = &self.core;
        // How long this core was busy with the command: it is the manager's host core's
        // pause, which no ingest core shares unless it hosts the manager.
        let started = Instant::now();
        let now_ns = crate::message::now_ns();
        match control::parse(message, now_ns)? {
            Command::Load { config, source } => {
                let (name, slot, replaced) = core.load((config, source), now_ns, inject)?;
                let action = if replaced { "replaced" } else { "loaded" };
                let micros = started.elapsed().as_micros() as u64;
                tracing::info!(manager = %core.name, filter = %name, slot, micros, "filter {action}");
            }
            Command::Unload { name } => {
                let slot = core.unload(name, now_ns, inject)?;
                let micros = started.elapsed().as_micros() as u64;
                tracing::info!(manager = %core.name, filter = %name, slot, micros, "filter unloaded");
            }
        }
        Ok(())
    }
}

impl Filter for Manager {
    fn process(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome {
        match self.act(message, &mut emitted.inject) {
            Ok(()) => Outcome::Ok,
            Err(refusal) => {
                tracing::warn!(
                    manager = %self.core.name, code = refusal.code(), %refusal,
                    "control message refused"
                );
                Outcome::Failed
            }
        }
    }
}

/// One dynamic slot on its host core: runs what is loaded into it.
struct Slot {
    core: Rc<ManagerCore>,
    slot: usize,
}

impl Slot {
    /// Ends a filter that terminated: its `heka.sandbox-terminated` message is routed, the
    /// slot is emptied and its files removed (it would only terminate again at the next start).
    fn terminated(&self, emitted: &mut Emitted) -> Outcome {
        let slots = self.core.slots.borrow();
        if let Some(loaded) = &slots[self.slot] {
            tracing::warn!(
                manager = %self.core.name, filter = %loaded.name,
                error = loaded.filter.last_error(), "loaded filter terminated; unloaded"
            );
            if let Some(message) = loaded.filter.termination_message() {
                super::push_record(&mut emitted.inject, &message);
            }
        }
        drop(slots);
        // Its state is not saved: a terminated state is not trusted (as at a stop).
        drop(self.core.retire(self.slot));
        Outcome::Failed
    }
}

impl Filter for Slot {
    fn process(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome {
        let mut slots = self.core.slots.borrow_mut();
        let Some(loaded) = slots[self.slot].as_mut() else {
            // Matched by a core before it saw the unload.
            return Outcome::Dropped;
        };
        let status = loaded.filter.process_message(message, &mut emitted.inject);
        drop(slots);
        match status {
            Ok(CallStatus::Failed) => Outcome::Failed,
            Ok(_) => Outcome::Ok,
            Err(_) => self.terminated(emitted),
        }
    }

    fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        let mut slots = self.core.slots.borrow_mut();
        let Some(loaded) = slots[self.slot].as_mut() else {
            return Outcome::Ok;
        };
        let Some(ticker) = loaded.ticker else {
            return Outcome::Ok;
        };
        let now = Instant::now();
        if now < loaded.next_tick {
            return Outcome::Ok;
        }
        loaded.next_tick = now + ticker;
        let status = loaded.filter.timer_event(now_ns, &mut emitted.inject);
        drop(slots);
        match status {
            Ok(()) => Outcome::Ok,
            Err(_) => self.terminated(emitted),
        }
    }

    fn shutdown(&mut self, now_ns: i64, emitted: &mut Emitted) {
        let mut slots = self.core.slots.borrow_mut();
        if let Some(loaded) = slots[self.slot].as_mut() {
            if let Err(error) = loaded.filter.shutdown(now_ns, &mut emitted.inject) {
                tracing::error!(filter = %loaded.name, %error, "loaded filter shutdown failed");
            }
        }
    }

    fn ticker_interval(&self) -> Option<Duration> {
        Some(SLOT_TICK)
    }

    fn sandbox_usage(&self) -> Option<super::SandboxUsage> {
        let slots = self.core.slots.borrow();
        let loaded = slots[self.slot].as_ref();
        // An empty slot uses nothing.
        Some(loaded.map_or_else(Default::default, |loaded| {
            crate::filter::sandbox::usage_of(loaded.filter.stats())
        }))
    }
}
