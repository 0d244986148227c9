//! Loading the eBPF object and attaching every probe this kernel offers.
//!
//! A missing or refused probe is reported, never fatal: the daemon runs with what remains.
use std::{io, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    programs::{KProbe, ProgramError, TracePoint},
};
use observer_common::{TracepointLayout, names};

use super::{
    catalog::{self, CATALOG, ProbeSpec, Program, Target},
    decode::Decoder,
    layout::tracepoint_layout,
    name_check::{self, KprobePoint, NameCheck, Refusal},
};
use crate::{
    event::{ProbeReport, ProbeState},
    kernel::{build_id, kallsyms::Kallsyms, tracefs::Tracefs},
};

/// Where kprobe names are checked: the first kernel's check on the command line, or this
/// kernel's kallsyms.
#[derive(Debug)]
pub enum KprobeNames {
    /// The first kernel's check (`kdump_dma_observer.kprobes=`), same build: no kallsyms read.
    Checked(NameCheck),
    /// `/proc/kallsyms` of this kernel; the string says why the check was not used.
    Kallsyms(Kallsyms, String),
    /// Neither is usable: why.
    Unavailable(String),
}

impl KprobeNames {
    /// One line for the status and the log.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Checked(c) => format!(
                "checked in the first kernel, same build {} (kallsyms not read)",
                c.build_id()
            ),
            Self::Kallsyms(_, why) => format!("read from /proc/kallsyms: {why}"),
            Self::Unavailable(why) => format!("unavailable: {why}"),
        }
    }

    /// Decides, without reading anything more, where `symbol` goes.
    fn locate(&self, symbol: &str, anchors: &[&str]) -> Result<KprobePoint, Refusal> {
        match self {
            Self::Checked(check) => check.locate(symbol),
            Self::Kallsyms(kallsyms, _) => name_check::locate(kallsyms, symbol, anchors),
            Self::Unavailable(why) => Err((ProbeState::Unsupported, why.clone())),
        }
    }

    /// The first kernel's check when it applies to this kernel, else this kernel's kallsyms.
    fn find(cmdline: &str, build_id: Option<&str>) -> Self {
        let why = match NameCheck::from_cmdline(cmdline) {
            Some(Ok(check)) => match check.applies_to(build_id) {
                Ok(()) => return Self::Checked(check),
                Err(why) => why,
            },
            Some(Err(e)) => e.to_string(),
            None => format!("no {} on the command line", name_check::PARAM),
        };
        let wanted = super::catalog::wanted_symbols();
        match Kallsyms::load_only(Path::new(crate::kernel::kallsyms::KALLSYMS), &wanted) {
            Ok(k) => Self::Kallsyms(k, why),
            Err(e) => {
                tracing::warn!(error = %e, "kprobes are disabled");
                Self::Unavailable(format!("kallsyms is not readable: {e}"))
            }
        }
    }
}

/// What the planner knows about the running kernel.
#[derive(Debug, Default)]
pub struct KernelView {
    /// tracefs, if mounted (needed for tracepoints).
    pub tracefs: Option<Tracefs>,
    /// Why tracefs is unavailable, for the status of every tracepoint.
    pub tracefs_error: Option<String>,
    /// How kprobe names are placed; `None` when the kernel has no kprobes.
    pub kprobe_names: Option<KprobeNames>,
}

impl KernelView {
    /// Looks at the running kernel. `tracefs` is the result of finding or mounting it.
    #[must_use]
    pub fn probe_running_kernel(tracefs: Result<Tracefs, String>) -> Self {
        let (tracefs, tracefs_error) = match tracefs {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e)),
        };
        let kprobes_supported = Path::new("/sys/bus/event_source/devices/kprobe").exists()
            || tracefs.as_ref().is_some_and(Tracefs::has_kprobe_events);
        // Placing kprobes needs kallsyms or the first kernel's check of it; neither is looked
        // at when there are no kprobes.
        let kprobe_names = kprobes_supported.then(|| {
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            let build_id = build_id::read(Path::new(build_id::NOTES)).ok().flatten();
            KprobeNames::find(&cmdline, build_id.as_deref())
        });
        if let Some(names) = &kprobe_names {
            tracing::info!(kprobe_names = %names.describe(), "kprobe placement");
        }
        Self {
            tracefs,
            tracefs_error,
            kprobe_names,
        }
    }
}

/// Options of a load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Size of the ring buffer in bytes (a power of two, at least one page).
    pub ring_buffer_bytes: u32,
    /// Record `getpgid(2)` calls of this thread group (pipeline self-test).
    pub self_test_tgid: Option<u32>,
}

/// Loaded programs, their status, and how to decode their records.
pub struct Attached {
    /// Keeps programs and links alive; maps are taken out of it by the sources.
    pub ebpf: Ebpf,
    pub reports: Vec<ProbeReport>,
    pub decoder: Decoder,
}

/// The eBPF object could not be loaded at all (as opposed to one probe failing).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("--ring-buffer-bytes {0} must be a power of two and at least the page size")]
    RingSize(u32),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
}

/// Loads the object and attaches every probe the kernel offers.
pub fn load_and_attach(
    object: &[u8],
    options: &LoadOptions,
    kernel: &KernelView,
) -> Result<Attached, LoadError> {
    let page = page_size();
    let ring = options.ring_buffer_bytes;
    if !ring.is_power_of_two() || u64::from(ring) < page {
        return Err(LoadError::RingSize(ring));
    }
    let layouts = Layouts::read(kernel);
    let tgid = options.self_test_tgid.unwrap_or(0);
    // No kernel BTF: the programs read every kernel-version-dependent offset from globals, so
    // there is nothing to relocate. aya >= 0.16 parses /sys/kernel/btf/vmlinux only when the
    // object has BTF relocations or typed ksyms; ours has neither, so the ~14 MiB transient
    // parse of 0.14 is gone.
    let object_started = std::time::Instant::now();
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(names::EVENTS_MAP, ring)
        .override_global(names::SELFTEST_TGID, &tgid, true)
        .override_global(names::AER_LAYOUT, &layouts.aer, true)
        .override_global(names::IOMMU_ATTACH_LAYOUT, &layouts.iommu_attach, true)
        .override_global(names::IOMMU_GROUP_LAYOUT, &layouts.iommu_group, true)
        .override_global(names::ARM_EVENT_LAYOUT, &layouts.arm_event, true)
        .override_global(names::NON_STANDARD_LAYOUT, &layouts.non_standard, true)
        .override_global(names::MC_EVENT_LAYOUT, &layouts.mc_event, true)
        .override_global(names::MCE_LAYOUT, &layouts.mce, true)
        .load(object)?;
    tracing::debug!(
        ms = object_started.elapsed().as_secs_f64() * 1e3,
        "eBPF object loaded (maps created)"
    );

    let mut reports = Vec::new();
    let self_test = options
        .self_test_tgid
        .is_some()
        .then_some(catalog::SELF_TEST);
    for spec in self_test.iter().chain(CATALOG) {
        let report = match plan(spec, kernel, &layouts) {
            Ok(point) => match attach(&mut ebpf, spec, point.as_ref()) {
                Ok(()) => {
                    let note = point
                        .filter(|p| p.offset != 0)
                        .map(|p| {
                            format!(
                                "ambiguous name; attached to the copy beside its driver at {}+{:#x}",
                                p.base, p.offset
                            )
                        })
                        .unwrap_or_default();
                    report(spec, ProbeState::Attached, note, None)
                }
                Err(e) => report(spec, ProbeState::Refused, e.to_string(), errno_of(&e)),
            },
            Err((state, reason)) => report(spec, state, reason, None),
        };
        reports.push(report);
    }
    if options.self_test_tgid.is_none() {
        reports.insert(
            0,
            report(
                &catalog::SELF_TEST,
                ProbeState::Disabled,
                "enable with --self-test-pid".into(),
                None,
            ),
        );
    }
    Ok(Attached {
        ebpf,
        reports,
        decoder: Decoder,
    })
}

/// Tracepoint layouts of the running kernel (empty where the event is absent or unusable).
struct Layouts {
    aer: TracepointLayout,
    iommu_attach: TracepointLayout,
    iommu_group: TracepointLayout,
    arm_event: TracepointLayout,
    non_standard: TracepointLayout,
    mc_event: TracepointLayout,
    mce: TracepointLayout,
    /// Per-tracepoint reasons a layout could not be used.
    problems: Vec<(&'static str, String)>,
}

impl Layouts {
    fn read(kernel: &KernelView) -> Self {
        let mut problems = Vec::new();
        let mut get = |category: &'static str, name: &'static str, text, fields: &[&str]| {
            let Some(tracefs) = kernel
                .tracefs
                .as_ref()
                .filter(|t| t.has_event(category, name))
            else {
                return TracepointLayout::EMPTY;
            };
            let layout = tracefs
                .format(category, name)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    let mut layout = tracepoint_layout(&f, text, fields)?;
                    if name == "non_standard_event" {
                        layout.fields[2] = guid_offset(&f, "sec_type")?;
                        layout.sizes[2] = 16;
                    }
                    Ok(layout)
                });
            layout.unwrap_or_else(|e| {
                problems.push((name, e));
                TracepointLayout::EMPTY
            })
        };
        let aer = get(
            "ras",
            "aer_event",
            Some("dev_name"),
            &["status", "severity", "tlp_header_valid"],
        );
        // `sev` exists on kernels with the full ARM processor record (it is absent before).
        let arm_event = get("ras", "arm_event", None, &["mpidr", "midr", "sev"]);
        let non_standard = get(
            "ras",
            "non_standard_event",
            Some("fru_text"),
            &["sev", "len"],
        );
        let mc_event = get(
            "ras",
            "mc_event",
            Some("label"),
            &["error_type", "error_count", "address"],
        );
        let iommu_attach = get("iommu", "attach_device_to_domain", Some("device"), &[]);
        let iommu_group = get("iommu", "add_device_to_group", Some("device"), &["gid"]);
        // include/trace/events/mce.h (5.4 .. 7.x): `u64 status`, `u64 addr`, `u8 bank`.
        let mce = get("mce", "mce_record", None, &["status", "addr", "bank"]);
        let self_test = get("syscalls", "sys_enter_getpgid", None, &["pid"]);
        // The self-test program reads `pid` at a fixed offset; refuse it if the kernel differs.
        if self_test != TracepointLayout::EMPTY
            && (self_test.fields[0], self_test.sizes[0]) != (16, 8)
        {
            problems.push((
                "sys_enter_getpgid",
                "`pid` is not a u64 at offset 16".into(),
            ));
        }
        Self {
            aer,
            iommu_attach,
            iommu_group,
            arm_event,
            non_standard,
            mc_event,
            mce,
            problems,
        }
    }
}

/// The offset of a 16-byte GUID array field (`char sec_type[16]` of `ras:non_standard_event`).
fn guid_offset(
    format: &crate::kernel::trace_format::EventFormat,
    name: &str,
) -> Result<u16, String> {
    let field = format
        .field(name)
        .ok_or_else(|| format!("{} has no field `{name}`", format.name))?;
    if field.size != 16 {
        return Err(format!(
            "{}.{name} has size {} (expected a 16-byte GUID)",
            format.name, field.size
        ));
    }
    Ok(field.offset)
}

/// Decides whether `spec` can be attached here: `Ok(kprobe point)` (none for tracepoints) or
/// why not.
fn plan(
    spec: &ProbeSpec,
    kernel: &KernelView,
    layouts: &Layouts,
) -> Result<Option<KprobePoint>, Refusal> {
    if !spec.arch.is_native() {
        return Err((
            ProbeState::Absent,
            format!(
                "{} only; this build is for {}",
                spec.arch,
                std::env::consts::ARCH
            ),
        ));
    }
    match spec.target {
        Target::Tracepoint { category, name } => {
            let Some(tracefs) = &kernel.tracefs else {
                let why = kernel.tracefs_error.clone().unwrap_or_default();
                return Err((ProbeState::Unsupported, format!("no tracefs: {why}")));
            };
            if !tracefs.has_event(category, name) {
                return Err((ProbeState::Absent, String::new()));
            }
            if let Some((_, problem)) = layouts.problems.iter().find(|(n, _)| *n == name) {
                return Err((ProbeState::Refused, format!("unexpected layout: {problem}")));
            }
            Ok(None)
        }
        Target::Kprobe { symbol } => {
            let Some(names) = &kernel.kprobe_names else {
                return Err((
                    ProbeState::Unsupported,
                    "this kernel has no kprobes (no kprobe PMU, no kprobe_events)".into(),
                ));
            };
            names.locate(symbol, spec.anchors).map(Some)
        }
    }
}

fn attach(
    ebpf: &mut Ebpf,
    spec: &ProbeSpec,
    point: Option<&KprobePoint>,
) -> Result<(), ProgramError> {
    let name = spec.program.object_name();
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| ProgramError::UnexpectedProgramType)?;
    let started = std::time::Instant::now();
    let loaded;
    match (spec.target, spec.program) {
        (Target::Tracepoint { category, name }, _) => {
            let tp: &mut TracePoint = program.try_into()?;
            if tp.fd().is_err() {
                tp.load()?;
            }
            loaded = started.elapsed();
            tp.attach(category, name)?;
        }
        (Target::Kprobe { symbol }, Program::Function(_)) => {
            let kp: &mut KProbe = program.try_into()?;
            if kp.fd().is_err() {
                kp.load()?;
            }
            loaded = started.elapsed();
            match point {
                Some(p) => kp.attach(&p.base, p.offset)?,
                None => kp.attach(symbol, 0)?,
            };
        }
        (Target::Kprobe { .. }, _) => return Err(ProgramError::UnexpectedProgramType),
    }
    // Where start-up time goes, probe by probe (`--log debug`).
    tracing::debug!(
        probe = spec.name,
        load_ms = loaded.as_secs_f64() * 1e3,
        attach_ms = started.elapsed().saturating_sub(loaded).as_secs_f64() * 1e3,
        "attached"
    );
    Ok(())
}

fn report(spec: &ProbeSpec, state: ProbeState, reason: String, errno: Option<i32>) -> ProbeReport {
    ProbeReport {
        name: spec.name.to_owned(),
        target: match spec.target {
            Target::Tracepoint { category, name } => format!("tracepoint:{category}/{name}"),
            Target::Kprobe { symbol } => format!("kprobe:{symbol}"),
        },
        // A probe of another architecture is never required here.
        required: spec.required && spec.arch.is_native(),
        state,
        reason,
        errno,
    }
}

/// The OS error number somewhere in an error's source chain.
fn errno_of(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(code) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(code);
        }
        current = e.source();
    }
    None
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_layouts() -> Layouts {
        Layouts {
            aer: TracepointLayout::EMPTY,
            iommu_attach: TracepointLayout::EMPTY,
            iommu_group: TracepointLayout::EMPTY,
            arm_event: TracepointLayout::EMPTY,
            non_standard: TracepointLayout::EMPTY,
            mc_event: TracepointLayout::EMPTY,
            mce: TracepointLayout::EMPTY,
            problems: Vec::new(),
        }
    }

    #[test]
    fn probes_of_another_architecture_are_absent_and_never_required() {
        let kernel = KernelView::default();
        let foreign: Vec<&ProbeSpec> = CATALOG.iter().filter(|s| !s.arch.is_native()).collect();
        assert!(
            !foreign.is_empty(),
            "each build has the other arch's probes"
        );
        assert!(
            foreign.iter().any(|s| s.required),
            "some are required on their own arch"
        );
        for spec in foreign {
            let (state, reason) = plan(spec, &kernel, &no_layouts()).unwrap_err();
            assert_eq!(state, ProbeState::Absent, "{}", spec.name);
            assert!(reason.contains("only; this build is for"), "{reason}");
            assert!(!report(spec, state, reason, None).required, "{}", spec.name);
        }
        // A native required probe on a kernel without tracefs/kprobes: unsupported, required.
        let native = CATALOG
            .iter()
            .find(|s| s.arch.is_native() && s.required)
            .unwrap();
        let (state, reason) = plan(native, &kernel, &no_layouts()).unwrap_err();
        assert_eq!(state, ProbeState::Unsupported);
        assert!(report(native, state, reason, None).required);
    }

    #[test]
    fn kprobes_are_placed_by_the_first_kernels_check_without_kallsyms() {
        let first_kernel = Kallsyms::parse(Path::new("k"), "ffff800080001000 T panic\n").unwrap();
        let kernel = KernelView {
            kprobe_names: Some(KprobeNames::Checked(NameCheck::run(&first_kernel, "ab12"))),
            ..KernelView::default()
        };
        let spec = |name| CATALOG.iter().find(|s| s.name == name).unwrap();
        let point = plan(spec("panic"), &kernel, &no_layouts())
            .unwrap()
            .unwrap();
        assert_eq!((point.base.as_str(), point.offset), ("panic", 0));
        // Every other native kprobe was absent from the first kernel's kallsyms.
        for other in CATALOG.iter().filter(|s| {
            s.arch.is_native() && s.name != "panic" && matches!(s.target, Target::Kprobe { .. })
        }) {
            let (state, _) = plan(other, &kernel, &no_layouts()).unwrap_err();
            assert_eq!(state, ProbeState::Absent, "{}", other.name);
        }
        assert!(
            kernel
                .kprobe_names
                .unwrap()
                .describe()
                .contains("kallsyms not read"),
            "the status says where the names came from"
        );
    }
}
