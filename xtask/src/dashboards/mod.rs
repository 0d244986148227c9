//! `cargo xtask dashboards-test`: the Grafana dashboard and the Prometheus alert rules in
//! `dashboards/`, proven on real parts.
//!
//! Recorded captures are served by `kdump-dma-observer replay`; `kdump-dma-observer recover`
//! publishes a textfile that Debian's node_exporter serves; a real Prometheus (Debian's
//! package) scrapes them all and loads the alert rules. Then every panel expression of the
//! dashboard and every alert expression is evaluated through the HTTP API and must return
//! data, and the alerts must fire for the inputs that deserve them. Along the way promtool
//! checks the expositions, checks the rules and runs their unit tests.
//!
//! The fleet dashboard gets its own fleet: four platforms, each a node_exporter serving the
//! textfile `recover` made from a recorded capture with that platform's identity
//! ([`fleet`]); its panels must group them exactly as expected.
//!
//! Everything listens on 127.0.0.1, every wait is bounded, and every process started here is
//! stopped (and the temporary folder removed) whatever happens.
use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs::File,
    io::Write as _,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::cmd;

mod fleet;

#[derive(clap::Args)]
pub(crate) struct DashboardsArgs {
    /// Keep the temporary folder (Prometheus config, logs, TSDB, textfile) and print its path.
    #[arg(long)]
    pub keep_temp: bool,
}

/// Longest wait for anything: a process to listen, scrapes to accumulate, an alert to fire.
const WAIT: Duration = Duration::from_mins(1);
/// Scrapes of every target before expressions are evaluated (`scrape_interval` is 1s).
const MIN_SCRAPES: u64 = 4;
/// Debian packages that provide `prometheus`, `promtool` and `prometheus-node-exporter`.
const PACKAGES: [(&str, &str); 3] = [
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("prometheus-node-exporter", "prometheus-node-exporter"),
];
/// Concrete values for Grafana's built-in variables (the dashboard's own variables become
/// `.*`, their "All" value).
const GRAFANA_BUILTINS: [(&str, &str); 6] = [
    ("$__rate_interval", "1m"),
    ("${__rate_interval}", "1m"),
    ("$__interval", "15s"),
    ("${__interval}", "15s"),
    ("$__range", "1h"),
    ("${__range}", "1h"),
];
const DASHBOARD: &str = "dashboards/kdump-dma-observer.json";
const RULES: &str = "dashboards/alert-rules.yml";
const RULE_TESTS: &str = "dashboards/alert-rules.test.yml";
/// The `input` label of the node_exporter target.
const TEXTFILE_INPUT: &str = "recover-textfile";

/// A recorded input served by `kdump-dma-observer replay`.
struct Input {
    /// The `input` label Prometheus puts on its series.
    label: &'static str,
    /// Relative to the workspace root.
    path: &'static str,
}

const FLAGGED: &str = "kdump-aer-capture";
const DEGRADED: &str = "kdump-degraded-capture";
const CONSOLE: &str = "qemu-kdump-612-console";
const INPUTS: [Input; 3] = [
    // A capture kernel of the QEMU lab: SMMU reset, then correctable, non-fatal and fatal AER.
    Input {
        label: FLAGGED,
        path: "dashboards/testdata/kdump-aer-capture.timeline.jsonl",
    },
    // The lab's plain kdump capture with a required probe absent and ring buffer drops.
    Input {
        label: DEGRADED,
        path: "dashboards/testdata/kdump-degraded-capture.timeline.jsonl",
    },
    // A serial console log (crash, capture boot, reset, no fatal error): no probe series.
    Input {
        label: CONSOLE,
        path: "observer/tests/data/logs/qemu-kdump-612.console.log",
    },
];

/// Which inputs an alert must and must not fire for, and the state it must reach there.
struct AlertExpectation {
    alert: &'static str,
    fires_for: &'static [&'static str],
    quiet_for: &'static [&'static str],
    /// `firing`, or `pending` for alerts with a `for:` longer than the test.
    state: &'static str,
}

const ALERTS: [AlertExpectation; 3] = [
    AlertExpectation {
        alert: "KdumpDmaObserverCaptureFlagged",
        // The textfile's latest capture is the flagged one.
        fires_for: &[FLAGGED, TEXTFILE_INPUT, fleet::AMPERE],
        quiet_for: &[
            DEGRADED,
            CONSOLE,
            fleet::KUNPENG,
            fleet::GRACE,
            fleet::SUPERCHIP,
        ],
        state: "firing",
    },
    AlertExpectation {
        alert: "KdumpDmaObserverEventsLost",
        fires_for: &[DEGRADED, fleet::GRACE],
        quiet_for: &[
            FLAGGED,
            CONSOLE,
            TEXTFILE_INPUT,
            fleet::AMPERE,
            fleet::KUNPENG,
        ],
        state: "firing",
    },
    AlertExpectation {
        alert: "KdumpDmaObserverRequiredProbeMissing",
        fires_for: &[DEGRADED, fleet::GRACE],
        quiet_for: &[FLAGGED, fleet::AMPERE, fleet::KUNPENG],
        state: "pending",
    },
];

pub(crate) fn run(root: &Path, args: &DashboardsArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut findings = Findings::default();
    ensure_packages()?;
    let observer = crate::build::build_observer(root)?;

    let mut tmp = tempfile::Builder::new()
        .prefix("kdump-dma-observer-dashboards-")
        .tempdir()
        .context("creating a temporary folder")?;
    if args.keep_temp {
        tmp.disable_cleanup(true);
        eprintln!("dashboards-test: keeping {}", tmp.path().display());
    }
    let mut procs = Processes::default();

    // promtool on the rules first: nothing else is meaningful if they do not load.
    let rules = root.join(RULES);
    let out = promtool(&["check", "rules", RULES], root, None)?;
    ensure!(
        out.code == Some(0),
        "promtool check rules {RULES} failed:\n{}",
        out.text
    );
    let out = promtool(&["test", "rules", RULE_TESTS], root, None)?;
    if out.code != Some(0) {
        findings.fail(format!(
            "promtool test rules {RULE_TESTS} failed:\n{}",
            out.text
        ));
    }

    // The recorded inputs, live.
    let mut replays = Vec::new();
    for input in &INPUTS {
        let path = root.join(input.path);
        ensure!(
            path.is_file(),
            "recorded input {} is missing",
            path.display()
        );
        let addr = procs.start_replay(&observer, &path, input.label, tmp.path())?;
        eprintln!("replay {:<24} {} on http://{addr}", input.label, input.path);
        replays.push((input, addr));
    }

    // The textfile hand-off: two captures in a dump directory, `recover`, node_exporter.
    let textfile = publish_textfile(root, &observer, tmp.path())?;
    let node = procs.start_node_exporter(&textfile, tmp.path())?;
    eprintln!(
        "node_exporter on http://{node} (textfile directory {})",
        textfile.display()
    );
    let fleet_nodes = fleet::publish(root, &observer, &mut procs, tmp.path())?;

    // promtool check metrics reads the Prometheus text format on stdin.
    for (input, addr) in &replays {
        let (status, body) = http_get(*addr, "/metrics", &[])?;
        ensure!(status == 200, "GET http://{addr}/metrics: HTTP {status}");
        check_metrics(
            &format!("/metrics of replay {}", input.label),
            &body,
            &mut findings,
        )?;
    }
    let prom_file = textfile.join("kdump-dma-observer.prom");
    let prom_text = std::fs::read_to_string(&prom_file)
        .with_context(|| format!("reading {}", prom_file.display()))?;
    check_metrics(
        "the textfile written by `recover`",
        &prom_text,
        &mut findings,
    )?;

    // A real Prometheus scraping all of them, with the alert rules loaded.
    let prometheus = procs.start_prometheus(&replays, node, &fleet_nodes, &rules, tmp.path())?;
    eprintln!("prometheus on http://{prometheus}");
    let api = Api { addr: prometheus };
    let mut targets: Vec<&str> = INPUTS.iter().map(|i| i.label).collect();
    targets.push(TEXTFILE_INPUT);
    targets.extend(fleet_nodes.iter().map(|(label, _)| *label));
    api.wait_for_scrapes(&targets)?;

    check_textfile_accepted(&api, &procs, &mut findings)?;

    let mut table = Vec::new();
    check_dashboard(root, &api, &mut table, &mut findings)?;
    fleet::check_dashboard(root, &api, &mut table, &mut findings)?;
    check_alerts(&api, &mut table, &mut findings)?;
    fleet::check_alert_labels(&api, &mut findings)?;
    print_table(&table);

    let elapsed = started.elapsed().as_secs_f64();
    drop(procs);
    drop(tmp);
    for w in &findings.warnings {
        eprintln!("warning: {w}");
    }
    if findings.failures.is_empty() {
        eprintln!(
            "dashboards-test: {} expressions returned data, {} warnings, in {elapsed:.1} s",
            table.len(),
            findings.warnings.len()
        );
        return Ok(());
    }
    let mut msg = format!(
        "dashboards-test: {} check(s) failed (after {elapsed:.1} s):",
        findings.failures.len()
    );
    for f in &findings.failures {
        let _ = write!(msg, "\n- {}", f.replace('\n', "\n  "));
    }
    bail!(msg)
}

/// Problems found: failures make the run fail at the end (after every check ran), warnings
/// are only printed.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    fn fail(&mut self, msg: String) {
        eprintln!("FAIL: {msg}");
        self.failures.push(msg);
    }
    fn warn(&mut self, msg: String) {
        eprintln!("warning: {msg}");
        self.warnings.push(msg);
    }
}

// ---- packages and builds ------------------------------------------------------------------

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.len() > 0)
        })
    })
}

/// Installs Debian's `prometheus` (prometheus, promtool) and `prometheus-node-exporter` if a
/// program is missing; `apt-get update` only if apt does not know the packages yet.
fn ensure_packages() -> anyhow::Result<()> {
    let programs: Vec<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(program, _)| *program)
        .collect();
    if programs.is_empty() {
        return Ok(());
    }
    let packages: BTreeSet<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| programs.contains(program))
        .map(|(_, package)| *package)
        .collect();
    let list: Vec<&str> = packages.into_iter().collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    ensure!(
        root,
        "missing Debian package(s) {}: run `sudo apt-get install {}`",
        list.join(" "),
        list.join(" ")
    );
    eprintln!(
        "{} not found: installing Debian package(s) {} with apt-get",
        programs.join(", "),
        list.join(" ")
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&list)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .context("cannot run apt-get")
    };
    let out = install()?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let no_lists = stderr.contains("Unable to locate package")
        || stderr.contains("has no installation candidate");
    ensure!(
        no_lists,
        "apt-get install {} failed: {}\n{stderr}",
        list.join(" "),
        out.status
    );
    eprintln!("apt does not know them yet: apt-get update, then again");
    cmd::run(Path::new("/"), Command::new("apt-get").arg("update"))?;
    let out = install()?;
    ensure!(
        out.status.success(),
        "apt-get install {} failed: {}\n{}",
        list.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Lays out a dump directory with two captures (a complete dump of a capture that reset the
/// SMMU without fatal errors, then an incomplete dump of a flagged capture), runs `recover`
/// on it and returns the textfile directory it published to.
fn publish_textfile(root: &Path, observer: &Path, tmp: &Path) -> anyhow::Result<PathBuf> {
    let crash = tmp.join("crash");
    let textfile = tmp.join("textfile");
    let first = crash.join("202611240900");
    let second = crash.join("202611241003");
    for dir in [&first, &second, &textfile] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let copy = |from: &str, to: PathBuf| {
        std::fs::copy(root.join(from), &to)
            .with_context(|| format!("copying {from} to {}", to.display()))
    };
    copy(INPUTS[2].path, first.join("dmesg.202611240900"))?;
    std::fs::write(
        first.join("dump.202611240900"),
        b"stand-in for a complete dump\n",
    )?;
    copy(INPUTS[0].path, second.join("timeline.jsonl"))?;
    std::fs::write(second.join("dump-incomplete"), b"")?;
    cmd::run(
        root,
        Command::new(observer)
            .arg("recover")
            .arg("--dump-dir")
            .arg(&crash)
            .arg("--pstore")
            .arg(tmp.join("no-pstore"))
            .arg("--textfile-dir")
            .arg(&textfile)
            .arg("--state")
            .arg(tmp.join("recover-state.json")),
    )?;
    let prom = textfile.join("kdump-dma-observer.prom");
    ensure!(prom.is_file(), "recover did not write {}", prom.display());
    Ok(textfile)
}

// ---- promtool -----------------------------------------------------------------------------

struct ToolOutput {
    code: Option<i32>,
    /// stdout then stderr.
    text: String,
}

/// Runs `promtool ARGS` in `dir`, feeding `stdin` if given; echoes what it says.
fn promtool(args: &[&str], dir: &Path, stdin: Option<&str>) -> anyhow::Result<ToolOutput> {
    let shown = format!("promtool {}", args.join(" "));
    eprintln!(
        "+ {shown}{}",
        if stdin.is_some() { " < exposition" } else { "" }
    );
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("writing to `{shown}`"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{shown}`"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines() {
        eprintln!("  | {line}");
    }
    Ok(ToolOutput {
        code: out.status.code(),
        text: text.trim_end().to_owned(),
    })
}

/// `promtool check metrics` on an exposition: exit 0 is clean, 3 means lint problems only
/// (warnings), anything else means promtool could not parse it (a failure). Its words are
/// reported as they are; nothing is stripped from the exposition.
fn check_metrics(what: &str, exposition: &str, findings: &mut Findings) -> anyhow::Result<()> {
    let out = promtool(&["check", "metrics"], Path::new("/"), Some(exposition))?;
    match out.code {
        Some(0) => {}
        Some(3) => findings.warn(format!(
            "promtool check metrics on {what}: lint problems:\n{}",
            out.text
        )),
        code => {
            let line = out
                .text
                .split("parsing error in line ")
                .nth(1)
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| exposition.lines().nth(n.saturating_sub(1)))
                .map(|l| format!("\n  the line: {l}"))
                .unwrap_or_default();
            findings.fail(format!(
                "promtool check metrics rejected {what} ({}): {}{line}",
                code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
                out.text
            ));
        }
    }
    Ok(())
}

// ---- processes ----------------------------------------------------------------------------

/// A child process with its combined output in a log file; stopped on drop.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", cmd.get_program().display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of its log, for error messages.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An error if it has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); its log ({}):\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid; it has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Processes(Vec<Process>);

impl Processes {
    fn get(&self, name: &str) -> Option<&Process> {
        self.0.iter().find(|p| p.name == name)
    }

    /// `kdump-dma-observer replay INPUT --listen 127.0.0.1:0`; returns the address it bound
    /// (from its `replaying ... on http://ADDR` line).
    fn start_replay(
        &mut self,
        observer: &Path,
        input: &Path,
        label: &str,
        tmp: &Path,
    ) -> anyhow::Result<SocketAddr> {
        let name = format!("replay-{label}");
        self.0.push(Process::spawn(
            &name,
            Command::new(observer)
                .arg("replay")
                .arg(input)
                .args(["--listen", "127.0.0.1:0"]),
            tmp,
        )?);
        let proc = self.0.last_mut().expect("just pushed");
        wait_until(&format!("{name} to listen"), || {
            proc.check_alive()?;
            Ok(proc
                .log_text()
                .lines()
                .find_map(|l| l.split(" on http://").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse::<SocketAddr>().ok()))
        })
    }

    fn start_node_exporter(&mut self, textfile: &Path, tmp: &Path) -> anyhow::Result<SocketAddr> {
        let addr = free_loopback_port()?;
        self.0.push(Process::spawn(
            "node_exporter",
            Command::new("prometheus-node-exporter")
                .arg(format!("--web.listen-address={addr}"))
                .args([
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    "--web.disable-exporter-metrics",
                ])
                .arg(format!(
                    "--collector.textfile.directory={}",
                    textfile.display()
                )),
            tmp,
        )?);
        let proc = self.0.last_mut().expect("just pushed");
        wait_until("node_exporter to serve /metrics", || {
            proc.check_alive()?;
            Ok(http_get(addr, "/metrics", &[])
                .ok()
                .filter(|(status, _)| *status == 200))
        })?;
        Ok(addr)
    }

    fn start_prometheus(
        &mut self,
        replays: &[(&Input, SocketAddr)],
        node: SocketAddr,
        fleet_nodes: &[(&str, SocketAddr)],
        rules: &Path,
        tmp: &Path,
    ) -> anyhow::Result<SocketAddr> {
        let addr = free_loopback_port()?;
        let quote = |s: &str| Value::from(s).to_string();
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: kdump-dma-observer-replay\n    static_configs:\n",
            quote(&rules.display().to_string())
        );
        for (input, target) in replays {
            let _ = write!(
                config,
                "      - targets: [{}]\n        labels: {{input: {}}}\n",
                quote(&target.to_string()),
                quote(input.label)
            );
        }
        let _ = write!(
            config,
            "  - job_name: node\n    static_configs:\n      - targets: [{}]\n        labels: {{input: {}}}\n",
            quote(&node.to_string()),
            quote(TEXTFILE_INPUT)
        );
        let _ = writeln!(
            config,
            "  - job_name: {}\n    static_configs:",
            quote(fleet::JOB)
        );
        for (label, target) in fleet_nodes {
            let _ = write!(
                config,
                "      - targets: [{}]\n        labels: {{input: {}}}\n",
                quote(&target.to_string()),
                quote(label)
            );
        }
        let config_path = tmp.join("prometheus.yml");
        std::fs::write(&config_path, &config)?;
        self.0.push(Process::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    tmp.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address={addr}")),
            tmp,
        )?);
        let proc = self.0.last_mut().expect("just pushed");
        wait_until("prometheus to be ready", || {
            proc.check_alive()?;
            Ok(http_get(addr, "/-/ready", &[])
                .ok()
                .filter(|(status, _)| *status == 200))
        })?;
        Ok(addr)
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Polls `probe` until it returns a value, fails, or [`WAIT`] passes.
fn wait_until<T>(
    what: &str,
    mut probe: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        ensure!(
            Instant::now() < deadline,
            "timed out after {} s waiting for {what}",
            WAIT.as_secs()
        );
        sleep(Duration::from_millis(200));
    }
}

// ---- HTTP ---------------------------------------------------------------------------------

/// `GET path?query` on a loopback address (ureq: no proxy, bounded waits); returns the status
/// and the body.
fn http_get(addr: SocketAddr, path: &str, query: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
    ensure!(addr.ip().is_loopback(), "{addr} is not a loopback address");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(20)))
        .user_agent("cargo-xtask-dashboards-test")
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let mut answer = agent
        .get(&url)
        .query_pairs(query.iter().copied())
        .call()
        .with_context(|| format!("GET {url}"))?;
    let body = answer
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer to GET {url}"))?;
    Ok((answer.status().as_u16(), body))
}

// ---- the Prometheus HTTP API --------------------------------------------------------------

struct Api {
    addr: SocketAddr,
}

impl Api {
    /// `GET /api/v1/<path>?<query>`; the `data` of a `success` answer.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let (status, body) = http_get(self.addr, &format!("/api/v1/{path}"), query)?;
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("/api/v1/{path}: HTTP {status}, not JSON: {body}"))?;
        if json["status"] != "success" {
            bail!(
                "{}: {}",
                json["errorType"].as_str().unwrap_or("error"),
                json["error"].as_str().unwrap_or(&body)
            );
        }
        Ok(json["data"].clone())
    }

    /// Evaluates an instant query; returns its vector (or the scalar/string as one element).
    fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let data = self.get("query", &[("query", expr)])?;
        Ok(match &data["result"] {
            Value::Array(v) if data["resultType"] == "vector" || data["resultType"] == "matrix" => {
                v.clone()
            }
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        })
    }

    /// Waits until every target (by its `input` label) is up and scraped [`MIN_SCRAPES`] times.
    fn wait_for_scrapes(&self, inputs: &[&str]) -> anyhow::Result<()> {
        let started = Instant::now();
        let deadline = started + WAIT;
        loop {
            let counts = self.query("count_over_time(up[5m])")?;
            let up = self.query("up")?;
            let ready = inputs.iter().all(|input| {
                let scrapes = counts
                    .iter()
                    .find(|s| s["metric"]["input"] == *input)
                    .and_then(sample_value)
                    .unwrap_or(0.0);
                let is_up = up
                    .iter()
                    .find(|s| s["metric"]["input"] == *input)
                    .and_then(sample_value)
                    == Some(1.0);
                #[expect(clippy::cast_precision_loss, reason = "a handful of scrapes")]
                let enough = scrapes >= MIN_SCRAPES as f64;
                is_up && enough
            });
            if ready {
                eprintln!(
                    "every target up and scraped {MIN_SCRAPES}+ times after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                let targets = self.get("targets", &[]).unwrap_or(Value::Null);
                let mut states = String::new();
                for t in targets["activeTargets"].as_array().into_iter().flatten() {
                    let _ = write!(
                        states,
                        "\n  {} {}: {} {}",
                        t["labels"]["input"].as_str().unwrap_or("?"),
                        t["scrapeUrl"].as_str().unwrap_or("?"),
                        t["health"].as_str().unwrap_or("?"),
                        t["lastError"].as_str().unwrap_or("")
                    );
                }
                bail!(
                    "timed out after {} s waiting for {MIN_SCRAPES} scrapes of every target:{states}",
                    WAIT.as_secs()
                );
            }
            sleep(Duration::from_millis(250));
        }
    }
}

fn sample_value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

/// node_exporter reports a textfile it could not parse with `node_textfile_scrape_error 1`
/// (and exports none of its series); its log says why.
fn check_textfile_accepted(
    api: &Api,
    procs: &Processes,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let result = api.query(&format!(
        "node_textfile_scrape_error{{input=\"{TEXTFILE_INPUT}\"}}"
    ))?;
    match result.first().and_then(sample_value) {
        Some(0.0) => eprintln!("node_exporter accepted the textfile written by `recover`"),
        Some(_) => {
            let why = procs
                .get("node_exporter")
                .map(|p| {
                    p.log_text()
                        .lines()
                        .rev()
                        .find(|l| l.contains("textfile") && l.contains("level=error"))
                        .unwrap_or("(no error in its log)")
                        .to_owned()
                })
                .unwrap_or_default();
            findings.fail(format!(
                "node_exporter rejected the textfile written by `recover` (node_textfile_scrape_error 1), so none of its series reach Prometheus:\n{why}"
            ));
        }
        None => findings.fail("node_exporter exported no node_textfile_scrape_error".into()),
    }
    Ok(())
}

// ---- the dashboard and the alerts ---------------------------------------------------------

/// One evaluated expression, for the table.
struct Row {
    source: String,
    expr: String,
    series: Option<usize>,
}

fn print_table(table: &[Row]) {
    println!("\n{:>6}  {:<58}  expression", "series", "source");
    for row in table {
        let series = row
            .series
            .map_or_else(|| "ERROR".to_owned(), |n| n.to_string());
        println!("{series:>6}  {:<58}  {}", row.source, row.expr);
    }
    println!();
}

/// Evaluates `expr`, records it in the table, and fails if it errs or returns nothing.
fn evaluate(
    api: &Api,
    source: String,
    expr: String,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) -> Option<Vec<Value>> {
    match api.query(&expr) {
        Ok(result) => {
            if result.is_empty() {
                findings.fail(format!("{source} returned no data: {expr}"));
            }
            table.push(Row {
                source,
                expr,
                series: Some(result.len()),
            });
            Some(result)
        }
        Err(e) => {
            findings.fail(format!("{source} failed to evaluate: {e:#}\n{expr}"));
            table.push(Row {
                source,
                expr,
                series: None,
            });
            None
        }
    }
}

/// Grafana's variables, replaced by concrete values to evaluate expressions outside Grafana:
/// the built-in intervals by [`GRAFANA_BUILTINS`], the dashboard's own variables by `.*`
/// (their "All" value).
struct Variables {
    /// The dashboard's variable names, longest first (so `$job` cannot eat `$job_name`).
    names: Vec<String>,
}

impl Variables {
    fn of(dashboard: &Value) -> Self {
        let mut names: Vec<String> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        names.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Self { names }
    }

    fn concrete(&self, expr: &str) -> anyhow::Result<String> {
        let mut out = expr.to_owned();
        for (var, value) in GRAFANA_BUILTINS {
            out = out.replace(var, value);
        }
        for name in &self.names {
            out = out
                .replace(&format!("${{{name}}}"), ".*")
                .replace(&format!("${name}"), ".*");
        }
        let leftover = out.char_indices().any(|(i, c)| {
            c == '$'
                && out[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|n| n == '{' || n == '_' || n.is_ascii_alphabetic())
        });
        ensure!(!leftover, "unknown Grafana variable in {expr:?}");
        Ok(out)
    }
}

/// Every panel query and every `label_values` variable query of the dashboard must return
/// data.
fn check_dashboard(
    root: &Path,
    api: &Api,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let dashboard = load_dashboard(root, DASHBOARD)?;
    ensure!(
        dashboard["__inputs"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["name"] == "DS_PROMETHEUS")),
        "{DASHBOARD}: no DS_PROMETHEUS in __inputs"
    );
    let variables = Variables::of(&dashboard);
    let queries = queries(&dashboard);
    let count = queries.len();
    for q in queries {
        let source = format!("panel {:?} [{}]", q.title, q.ref_id);
        let datasource_ok = |v: &Value| v["uid"] == "${DS_PROMETHEUS}";
        if !datasource_ok(&q.panel["datasource"]) || !datasource_ok(&q.target["datasource"]) {
            findings.fail(format!("{source}: datasource is not ${{DS_PROMETHEUS}}"));
        }
        match variables.concrete(q.expr) {
            Ok(expr) => {
                evaluate(api, source, expr, table, findings);
            }
            Err(e) => findings.fail(format!("{source}: {e}")),
        }
    }
    ensure!(count >= 6, "{DASHBOARD}: only {count} panel queries");
    check_variable_queries(&dashboard, &variables, api, table, findings);
    Ok(())
}

/// A dashboard file of the workspace (`rel` from the root), parsed.
fn load_dashboard(root: &Path, rel: &str) -> anyhow::Result<Value> {
    let path = root.join(rel);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// One query of a dashboard panel.
struct Query<'a> {
    title: &'a str,
    ref_id: &'a str,
    panel: &'a Value,
    target: &'a Value,
    expr: &'a str,
}

/// Every non-empty query of the dashboard's panels, rows' panels included, in order.
fn queries(dashboard: &Value) -> Vec<Query<'_>> {
    let mut panels = Vec::new();
    collect_panels(&dashboard["panels"], &mut panels);
    panels
        .into_iter()
        .flat_map(|panel| {
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |target| {
                    let expr = target["expr"].as_str().filter(|e| !e.trim().is_empty())?;
                    Some(Query {
                        title: panel["title"].as_str().unwrap_or("(untitled)"),
                        ref_id: target["refId"].as_str().unwrap_or("?"),
                        panel,
                        target,
                        expr,
                    })
                })
        })
        .collect()
}

/// `label_values(SELECTOR, LABEL)` variable queries: the selector must return series with
/// that label.
fn check_variable_queries(
    dashboard: &Value,
    variables: &Variables,
    api: &Api,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) {
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &var["query"] {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or_default(),
            _ => continue,
        };
        let Some((selector, label)) = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|inner| inner.rsplit_once(','))
        else {
            continue;
        };
        let label = label.trim();
        let source = format!(
            "variable ${} (label {label})",
            var["name"].as_str().unwrap_or("?")
        );
        let selector = match variables.concrete(selector.trim()) {
            Ok(selector) => selector,
            Err(e) => {
                findings.fail(format!("{source}: {e}"));
                continue;
            }
        };
        if let Some(result) = evaluate(api, source.clone(), selector, table, findings)
            && !result.iter().any(|s| s["metric"][label].is_string())
        {
            findings.fail(format!("{source}: no series has the label"));
        }
    }
}

/// Panels, including those nested in rows.
fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for panel in panels.as_array().into_iter().flatten() {
        out.push(panel);
        collect_panels(&panel["panels"], out);
    }
}

/// Every alert expression Prometheus loaded must return data; each alert must fire for the
/// inputs that deserve it and only those, and reach its state.
fn check_alerts(api: &Api, table: &mut Vec<Row>, findings: &mut Findings) -> anyhow::Result<()> {
    let groups = api.get("rules", &[("type", "alert")])?;
    let mut loaded = Vec::new();
    for group in groups["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if rule["type"] == "alerting" {
                loaded.push((
                    rule["name"].as_str().unwrap_or("?").to_owned(),
                    rule["query"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    ensure!(
        !loaded.is_empty(),
        "Prometheus loaded no alerting rule from {RULES}"
    );
    // (alert, input) pairs whose expression returned that input: they must become active.
    let mut due: Vec<(&AlertExpectation, &str)> = Vec::new();
    for (name, expr) in &loaded {
        let source = format!("alert {name}");
        let Some(result) = evaluate(api, source.clone(), expr.clone(), table, findings) else {
            continue;
        };
        let got = inputs_of(&result);
        let Some(expect) = ALERTS.iter().find(|a| a.alert == name) else {
            findings.warn(format!(
                "{source}: no expectation in xtask/src/dashboards/mod.rs (ALERTS)"
            ));
            continue;
        };
        for input in expect.fires_for {
            if got.contains(*input) {
                due.push((expect, input));
            } else {
                findings.fail(format!(
                    "{source} returns no data for input {input} (got {got:?}): {expr}"
                ));
            }
        }
        for input in expect.quiet_for {
            if got.contains(*input) {
                findings.fail(format!(
                    "{source} returns data for input {input}, which does not deserve it: {expr}"
                ));
            }
        }
    }
    for expect in &ALERTS {
        if !loaded.iter().any(|(name, _)| name == expect.alert) {
            findings.fail(format!("alert {} is not in {RULES}", expect.alert));
        }
    }

    // The rule evaluation itself: Prometheus must hold each due alert in its expected state.
    let outcome = wait_until("the alerts to reach their states", || {
        let alerts = api.get("alerts", &[])?;
        let list = alerts["alerts"].as_array().cloned().unwrap_or_default();
        let reached = due.iter().all(|(e, input)| {
            list.iter().any(|a| {
                a["labels"]["alertname"] == e.alert
                    && a["labels"]["input"] == *input
                    && a["state"] == e.state
            })
        });
        Ok(reached.then_some(()))
    });
    match outcome {
        Ok(()) => {
            for (e, input) in &due {
                eprintln!("alert {} is {} for {input}", e.alert, e.state);
            }
        }
        Err(e) => findings.fail(format!(
            "{e:#}: expected {} (see /api/v1/alerts)",
            due.iter()
                .map(|(e, input)| format!("{} {} for {input}", e.alert, e.state))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    Ok(())
}

/// `input` labels (set on every scrape target here) of a query result.
fn inputs_of(result: &[Value]) -> BTreeSet<String> {
    result
        .iter()
        .filter_map(|s| s["metric"]["input"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_become_concrete() {
        let dashboard = serde_json::json!({"templating": {"list": [
            {"name": "job"}, {"name": "job_name"}, {"name": "instance"}
        ]}});
        let vars = Variables::of(&dashboard);
        assert_eq!(
            vars.concrete(
                r#"rate(x{job=~"$job",a=~"${job_name}",i=~"$instance"}[$__rate_interval])"#
            )
            .unwrap(),
            r#"rate(x{job=~".*",a=~".*",i=~".*"}[1m])"#
        );
        assert_eq!(
            vars.concrete(r#"x{f=~".*fatal$"}[$__range]"#).unwrap(),
            r#"x{f=~".*fatal$"}[1h]"#
        );
        let e = vars.concrete("x[$__unknown]").unwrap_err().to_string();
        assert!(e.contains("unknown Grafana variable"), "{e}");
    }

    #[test]
    fn panels_in_rows_are_found() {
        let v: Value = serde_json::json!([
            {"title": "a", "panels": []},
            {"title": "row", "type": "row", "panels": [{"title": "b"}]}
        ]);
        let mut out = Vec::new();
        collect_panels(&v, &mut out);
        let titles: Vec<&str> = out.iter().filter_map(|p| p["title"].as_str()).collect();
        assert_eq!(titles, ["a", "row", "b"]);
    }
}
