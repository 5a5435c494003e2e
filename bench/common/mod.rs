//! What every bench program shares: the machine's facts, the run mode, and the report.
//!
//! Each bench includes this file with `#[path = "common/mod.rs"] mod common;` and ends by
//! publishing its [`Section`]: the section is printed to the terminal and replaces that bench's
//! own part of the dated report `bench/results/<machine>-<YYYY-MM-DD>.md`, between the markers
//! `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. A report that does not exist yet is created
//! with a header naming the machine, its cores, the kernel and the date. Sections are kept in
//! [`SECTION_ORDER`] whatever order the benches run in, so `cargo bench` (all of them) or any
//! single `cargo bench --bench NAME` leaves one coherent report; a bench run again on the
//! same day replaces its section and leaves the others alone.
//!
//! Modes ([`Mode`]):
//! - `cargo bench`: the full run (the default must stay under 10 minutes on 2 cores);
//! - `GYGES_BENCH_QUICK=1 cargo bench`: small counts, for CI (the whole run under a minute);
//!   its report goes to `…-quick.md` so a smoke run never overwrites a real record;
//! - `cargo test --all-targets` runs bench programs too, without the `--bench` argument: they
//!   then run a smoke pass with the smallest counts and write no report.
//!
//! Limits: the report is read and rewritten whole (a few KiB); two benches publishing at the
//! same instant could lose one section, which `cargo bench` never does (it runs them in turn).

#![allow(dead_code)]

pub mod pki;
pub mod rsyslog;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The order sections take in a report; a section not listed goes after these.
pub const SECTION_ORDER: &[&str] = &[
    "splitter",
    "view",
    "fluent",
    "matcher",
    "sandbox",
    "stats",
    "ring",
    "queue",
    "flood",
    "e2e",
    "delivery",
    "elasticsearch",
    "sandbox_manager",
    "notes",
];

/// The longest machine slug, in characters.
const SLUG_CHARS_MAX: usize = 48;

/// How much work a bench does, and whether it writes the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: the real measurement.
    Full,
    /// `GYGES_BENCH_QUICK=1 cargo bench`: small counts, report to `…-quick.md`.
    Quick,
    /// Run by `cargo test` (no `--bench` argument): tiny counts, no report file.
    Smoke,
}

impl Mode {
    /// The mode of this process, from its arguments and `GYGES_BENCH_QUICK`.
    pub fn detect() -> Mode {
        let benching = std::env::args().any(|argument| argument == "--bench");
        let quick = std::env::var("GYGES_BENCH_QUICK")
            .map(|value| !value.is_empty() && value != "0")
            .unwrap_or(false);
        match (benching, quick) {
            (false, _) => Mode::Smoke,
            (true, true) => Mode::Quick,
            (true, false) => Mode::Full,
        }
    }

    /// One of three values, by mode.
    pub fn pick<T>(self, full: T, quick: T, smoke: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
            Mode::Smoke => smoke,
        }
    }

    pub fn name(self) -> &'static str {
        self.pick("full", "quick", "smoke (cargo test)")
    }
}

/// The facts a report is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    /// Online cores (what the process may use).
    pub cores: usize,
    pub kernel: String,
}

impl Machine {
    /// Reads /proc and the environment. Anything unreadable reads as "unknown".
    pub fn detect() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = cpu_model_from(&read("/proc/cpuinfo")).unwrap_or("unknown CPU".into());
        let hostname = read("/proc/sys/kernel/hostname").trim().to_string();
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        Machine {
            hostname: if hostname.is_empty() {
                "unknown".into()
            } else {
                hostname
            },
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            kernel: if kernel.is_empty() {
                "unknown".into()
            } else {
                kernel
            },
        }
    }

    /// A short file-name-safe name: hostname, CPU model without its trademarks and clock,
    /// and the core count, e.g. `vm-amd-epyc-2c`.
    pub fn slug(&self) -> String {
        let noise = ["", "cpu", "processor"];
        let cpu: Vec<String> = self
            .cpu_model
            .split_whitespace()
            .map(|word| {
                word.to_ascii_lowercase()
                    .replace("(r)", "")
                    .replace("(tm)", "")
            })
            .take_while(|word| !word.starts_with('@'))
            .filter(|word| !noise.contains(&word.as_str()) && !word.ends_with("ghz"))
            .collect();
        let text = format!("{}-{}-{}c", self.hostname, cpu.join("-"), self.cores);
        slugify(&text, SLUG_CHARS_MAX)
    }

    /// The report's header, written once when the report is created.
    pub fn header(&self, date: &str, mode: Mode) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# gyges bench report: {}, {date}\n", self.slug());
        let _ = writeln!(out, "- machine: `{}`, {}", self.hostname, self.cpu_model);
        let _ = writeln!(out, "- cores: {}", self.cores);
        let _ = writeln!(out, "- kernel: {}", self.kernel);
        let _ = writeln!(out, "- date: {date} (UTC)");
        let _ = writeln!(out, "- mode: {}", mode.name());
        let _ = writeln!(
            out,
            "\nEach section below is written by one bench program (`cargo bench --bench NAME`) \
             and replaced when that bench runs again; see `bench/README.md`.\n"
        );
        out
    }
}

/// The `model name` of the first processor in /proc/cpuinfo's text.
pub fn cpu_model_from(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

/// Lower-case ASCII letters and digits, other runs turned into one `-`, at most `chars_max`
/// characters, no `-` at either end.
pub fn slugify(text: &str, chars_max: usize) -> String {
    let mut slug = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(chars_max);
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "machine".into()
    } else {
        slug
    }
}

/// The civil (proleptic Gregorian) date of a day counted from 1970-01-01 (gyges's own
/// calendar arithmetic, `src/calendar.rs`).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    gyges::calendar::civil_from_days(days)
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let (year, month, day) = civil_date(seconds.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// The repository's root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the report of `machine` on `date` lives; quick runs write their own file.
/// `GYGES_BENCH_REPORT` overrides the path.
pub fn report_path(machine: &Machine, date: &str, mode: Mode) -> PathBuf {
    if let Some(path) = std::env::var_os("GYGES_BENCH_REPORT").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let suffix = if mode == Mode::Quick { "-quick" } else { "" };
    repo_root()
        .join("bench")
        .join("results")
        .join(format!("{}-{date}{suffix}.md", machine.slug()))
}

fn begin_marker(name: &str) -> String {
    format!("<!-- bench:{name} -->")
}

fn end_marker(name: &str) -> String {
    format!("<!-- /bench:{name} -->")
}

fn order_rank(name: &str) -> usize {
    SECTION_ORDER
        .iter()
        .position(|known| *known == name)
        .unwrap_or(SECTION_ORDER.len())
}

/// The names of the sections in `report`, in the order they appear.
pub fn section_names(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("<!-- bench:")?
                .strip_suffix(" -->")
        })
        .collect()
}

/// `report` with section `name`'s body set to `body`: replaced in place when the section is
/// there, otherwise inserted before the first section that [`SECTION_ORDER`] puts after it
/// (or at the end). Everything else is kept byte for byte.
pub fn replace_section(report: &str, name: &str, body: &str) -> String {
    let (begin, end) = (begin_marker(name), end_marker(name));
    let mut block = format!("{begin}\n{body}");
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&end);
    block.push('\n');
    if let Some(start) = report.find(&begin) {
        if let Some(end_at) = report[start..].find(&end).map(|at| start + at + end.len()) {
            // Swallow the end marker's newline, which the block brings back.
            let after = report[end_at..]
                .strip_prefix('\n')
                .unwrap_or(&report[end_at..]);
            return format!("{}{block}{after}", &report[..start]);
        }
        // A begin marker without its end: the rest of the file was this section.
        return format!("{}{block}", &report[..start]);
    }
    let rank = order_rank(name);
    let later = section_names(report)
        .into_iter()
        .find(|other| order_rank(other) > rank)
        .and_then(|other| report.find(&begin_marker(other)));
    match later {
        Some(at) => format!("{}{block}\n{}", &report[..at], &report[at..]),
        None => {
            let mut out = report.to_string();
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
            }
            out.push_str(&block);
            out
        }
    }
}

/// One bench's part of the report.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: &'static str,
    pub mode: Mode,
    body: String,
}

impl Section {
    /// A section headed `## title`, with a line saying when and how it was measured.
    pub fn new(name: &'static str, title: &str, mode: Mode) -> Section {
        Section::with_command(name, &format!("cargo bench --bench {name}"), title, mode)
    }

    /// A section written by a bench program not named `name` (`command` runs it).
    pub fn with_command(name: &'static str, command: &str, title: &str, mode: Mode) -> Section {
        let mut body = format!("## {title}\n\n");
        let _ = writeln!(
            body,
            "_`{command}`, mode {}, commit {}, at {} UTC, load average {}._\n",
            mode.name(),
            git_commit(),
            time_of_day_utc(),
            load_average()
        );
        Section { name, mode, body }
    }

    /// Appends one line of text.
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.body.push_str(text.as_ref());
        self.body.push('\n');
    }

    /// Appends a table followed by a blank line.
    pub fn table(&mut self, table: &Table) {
        self.body.push_str(&table.render());
        self.body.push('\n');
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    /// Prints the section and, unless this is a smoke run, writes it into the report.
    /// A report that cannot be written is said on stderr; the bench still succeeds.
    pub fn publish(&self) {
        println!("\n{}", self.body);
        if self.mode == Mode::Smoke {
            println!("(smoke run under `cargo test`: no report written)");
            return;
        }
        let machine = Machine::detect();
        let date = today_utc();
        let path = report_path(&machine, &date, self.mode);
        match write_section(&path, &machine, &date, self) {
            Ok(()) => println!("report: {}", path.display()),
            Err(error) => eprintln!("bench: cannot write {}: {error}", path.display()),
        }
    }
}

fn write_section(
    path: &Path,
    machine: &Machine,
    date: &str,
    section: &Section,
) -> std::io::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let report = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            machine.header(date, section.mode)
        }
        Err(error) => return Err(error),
    };
    let updated = replace_section(&report, section.name, &section.body);
    // Write beside, then rename: a crash mid-write never leaves half a report.
    let temporary = path.with_extension("md.tmp");
    std::fs::write(&temporary, updated)?;
    std::fs::rename(&temporary, path)
}

/// A Markdown table whose columns are padded, so it also reads well in a terminal.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|cell| cell.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `value` with an SI prefix and `digits` decimals: `12.35 M`.
pub fn si(value: f64, digits: usize) -> String {
    let (scaled, prefix) = if value.abs() >= 1e9 {
        (value / 1e9, " G")
    } else if value.abs() >= 1e6 {
        (value / 1e6, " M")
    } else if value.abs() >= 1e3 {
        (value / 1e3, " k")
    } else {
        (value, " ")
    };
    format!("{scaled:.digits$}{prefix}").trim_end().to_string()
}

/// Wall times of several passes of the same work, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The median pass (the lower middle one for an even count).
    pub median: f64,
    pub fastest: f64,
    pub slowest: f64,
}

impl Timing {
    /// Of `seconds` (at least one).
    pub fn of(mut seconds: Vec<f64>) -> Timing {
        seconds.sort_by(f64::total_cmp);
        Timing {
            median: seconds[(seconds.len() - 1) / 2],
            fastest: seconds[0],
            slowest: seconds[seconds.len() - 1],
        }
    }

    /// The spread (slowest - fastest) as a share of the median, e.g. "4 %".
    pub fn spread(&self) -> String {
        format!(
            "{:.0} %",
            (self.slowest - self.fastest) / self.median.max(1e-12) * 100.0
        )
    }
}

/// Runs `pass` `passes` times and returns their wall times (the median is the figure to
/// report, never the fastest), with the value the last pass returned (pass it through
/// `black_box` inside).
pub fn median_of<T>(passes: usize, mut pass: impl FnMut() -> T) -> (Timing, T) {
    let mut timed = || {
        let started = std::time::Instant::now();
        let value = std::hint::black_box(pass());
        (started.elapsed().as_secs_f64(), value)
    };
    let (first, mut last) = timed();
    let mut seconds = vec![first];
    for _ in 1..passes {
        let (elapsed, value) = timed();
        seconds.push(elapsed);
        last = value;
    }
    (Timing::of(seconds), last)
}

/// The short commit of the working tree, with `+` when it has changes, or "unknown".
pub fn git_commit() -> String {
    let run = |arguments: &[&str]| {
        std::process::Command::new("git")
            .args(arguments)
            .current_dir(repo_root())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let Some(commit) = run(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    if dirty {
        format!("{commit}+")
    } else {
        commit
    }
}

/// The 1-minute load average from /proc/loadavg (how busy a shared machine was), or "?".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn time_of_day_utc() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let of_day = seconds % 86_400;
    format!("{:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime in seconds of each thread of process `pid`, by thread name
/// (/proc/PID/task/TID/stat; threads of the same name are summed).
pub fn thread_cpu_seconds(pid: u32, ticks_per_second: f64) -> Vec<(String, f64)> {
    let mut threads: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name is between the first '(' and the last ')'; fields are counted after it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
        let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
            continue;
        };
        let seconds = (utime + stime) / ticks_per_second;
        match threads.iter_mut().find(|(known, _)| *known == name) {
            Some((_, total)) => *total += seconds,
            None => threads.push((name, seconds)),
        }
    }
    threads
}

/// Stops a child with SIGTERM and waits up to `timeout` for it (then SIGKILL): whether it
/// exited cleanly.
pub fn stop_gracefully(mut child: std::process::Child, timeout: std::time::Duration) -> bool {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
