//! Boot-time instrumentation for a capture kernel: the command-line additions that make the
//! kernel record, before any userspace exists, what the SMMUv3 reset and the error paths did.
//!
//! Built-in SMMUv3 probes at `device_initcall`; `kprobe_event=` probes are registered at
//! `fs_initcall` and `trace_event=` events at `early_initcall`, so both are armed in time. The
//! records wait in the tracefs ring buffer until the daemon harvests them
//! (`sources::boot_trace`); `ftrace_dump_on_oops` prints them on the console if the capture
//! kernel dies first.
//!
//! Every kprobe is checked against kallsyms of the running kernel (the capture kernel is
//! normally the same build): a missing symbol is left out, an ambiguous one refused, and the
//! reason is reported.
use super::kallsyms::{Kallsyms, Unplaced};

/// Group of every boot-time kprobe event (`/sys/kernel/tracing/events/kdo/`).
pub const GROUP: &str = "kdo";

/// One boot-time kprobe event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootProbe {
    /// Event name inside [`GROUP`].
    pub event: &'static str,
    /// Kernel function.
    pub symbol: &'static str,
    /// Fetch arguments (`name=FETCHARG[:TYPE]`), kernel syntax.
    pub fetch: &'static [&'static str],
    /// Why it is there.
    pub purpose: &'static str,
}

/// The boot-time kprobes, in the order they are emitted.
///
/// `arm_smmu_write_reg_sync(smmu, val, reg_off, ack_off)` is SMMUv3-only and not inlined in
/// Debian's 6.1 and 6.12 builds (the reset function itself is). `struct arm_smmu_device` starts
/// with `struct device *dev`, whose embedded kobject starts with the name pointer, so
/// `+0(+0(+0($arg1))):string` is the device name (`9050000.smmuv3`).
pub const BOOT_PROBES: &[BootProbe] = &[
    BootProbe {
        event: "kdo_smmu_write",
        symbol: "arm_smmu_write_reg_sync",
        fetch: &[
            "smmu=+0(+0(+0($arg1))):string",
            "val=$arg2:x32",
            "reg=$arg3:x32",
        ],
        purpose: "SMMUv3 CR0/IRQ_CTRL writes of the reset, per instance",
    },
    BootProbe {
        event: "kdo_smmu_gbpa",
        symbol: "arm_smmu_update_gbpa",
        fetch: &[
            "smmu=+0(+0(+0($arg1))):string",
            "set=$arg2:x32",
            "clr=$arg3:x32",
        ],
        purpose: "GBPA=ABORT of the reset (inlined on 6.12, a symbol on 6.1)",
    },
    BootProbe {
        event: "kdo_sea",
        symbol: "do_sea",
        fetch: &["far=$arg1:x64", "esr=$arg2:x64"],
        purpose: "synchronous external abort",
    },
    BootProbe {
        event: "kdo_serror",
        symbol: "do_serror",
        fetch: &["esr=$arg2:x64"],
        purpose: "SError",
    },
    BootProbe {
        event: "kdo_serror_panic",
        symbol: "arm64_serror_panic",
        fetch: &["esr=$arg2:x64"],
        purpose: "fatal SError",
    },
    BootProbe {
        event: "kdo_ghes_panic",
        symbol: "__ghes_panic",
        fetch: &[],
        purpose: "firmware-first fatal error",
    },
    BootProbe {
        event: "kdo_dpc",
        symbol: "dpc_process_error",
        fetch: &[],
        purpose: "downstream port containment",
    },
    BootProbe {
        event: "kdo_panic",
        symbol: "panic",
        fetch: &["msg=+0($arg1):string"],
        purpose: "kernel panic (with ftrace_dump_on_oops, the trace reaches the console)",
    },
];

/// Tracepoints enabled at boot (`trace_event=`), when the kernel has them: every RAS record
/// the kernel emits while the capture kernel boots (AER, firmware sections, memory errors).
pub const BOOT_TRACEPOINTS: &[(&str, &str)] = &[
    ("ras", "aer_event"),
    ("ras", "arm_event"),
    ("ras", "non_standard_event"),
    ("ras", "mc_event"),
];

/// Per-CPU trace buffer for the capture kernel: small (capture kernels run with little memory
/// and usually one CPU) but far more than a boot's worth of these events.
pub const TRACE_BUF_SIZE: &str = "512K";

/// What [`plan`] decided for one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub event: &'static str,
    pub symbol: &'static str,
    /// `None`: included; `Some(reason)`: left out.
    pub excluded: Option<String>,
}

/// The command-line additions and what was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Space-separated parameters to append to the capture kernel's command line.
    pub cmdline: String,
    pub decisions: Vec<Decision>,
}

/// Plans the boot instrumentation against `kallsyms` and the tracepoints `has_tracepoint`
/// reports as present.
pub fn plan(kallsyms: &Kallsyms, has_tracepoint: impl Fn(&str, &str) -> bool) -> Plan {
    let mut decisions = Vec::new();
    let mut probes = Vec::new();
    for probe in BOOT_PROBES {
        let anchors = if probe.event.starts_with("kdo_smmu") {
            crate::smmu::SMMUV3_ANCHORS
        } else {
            &[]
        };
        let (location, excluded) = match kallsyms.place(probe.symbol, anchors) {
            // Named relative to a unique symbol when the name is ambiguous: survives KASLR.
            Ok(p) if p.offset == 0 => (p.base, None),
            Ok(p) => (format!("{}+{:#x}", p.base, p.offset), None),
            Err(Unplaced::Absent) => (
                String::new(),
                Some("not present on this kernel (inlined or not built)".to_owned()),
            ),
            Err(Unplaced::Ambiguous(why)) => (String::new(), Some(format!("ambiguous: {why}"))),
        };
        if excluded.is_none() {
            let mut def = format!("p:{GROUP}/{},{location}", probe.event);
            for arg in probe.fetch {
                def.push(',');
                def.push_str(arg);
            }
            probes.push(def);
        }
        decisions.push(Decision {
            event: probe.event,
            symbol: probe.symbol,
            excluded,
        });
    }
    let mut params = Vec::new();
    if !probes.is_empty() {
        params.push(format!("kprobe_event={}", probes.join(";")));
    }
    let tracepoints: Vec<String> = BOOT_TRACEPOINTS
        .iter()
        .filter(|(c, n)| has_tracepoint(c, n))
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    if !tracepoints.is_empty() {
        params.push(format!("trace_event={}", tracepoints.join(",")));
    }
    // The trace clock the daemon's eBPF timestamps use (CLOCK_MONOTONIC), so one clock rules.
    params.push("trace_clock=mono".into());
    params.push(format!("trace_buf_size={TRACE_BUF_SIZE}"));
    // Let the daemon mirror its timeline into the kernel log without the writer rate limit.
    params.push("printk.devkmsg=on".into());
    params.push("ftrace_dump_on_oops".into());
    Plan {
        cmdline: params.join(" "),
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn kallsyms(text: &str) -> Kallsyms {
        Kallsyms::parse(Path::new("k"), text).unwrap()
    }

    #[test]
    fn debian_612_shape() {
        // 6.12: arm_smmu_update_gbpa is inlined (no symbol); do_serror etc. exist once.
        let k = kallsyms(
            "ffff800080a853d0 t arm_smmu_write_reg_sync\n\
             ffff800080100000 T do_sea\n\
             ffff800080100100 T do_serror\n\
             ffff800080100200 T arm64_serror_panic\n\
             ffff800080200000 t __ghes_panic\n\
             ffff800080300000 T dpc_process_error\n\
             ffff800080001000 T panic\n",
        );
        let plan = plan(&k, |c, n| (c, n) == ("ras", "aer_event"));
        assert!(plan.cmdline.starts_with(
            "kprobe_event=p:kdo/kdo_smmu_write,arm_smmu_write_reg_sync,smmu=+0(+0(+0($arg1))):string,val=$arg2:x32,reg=$arg3:x32;p:kdo/kdo_sea,do_sea,"
        ), "{}", plan.cmdline);
        assert!(!plan.cmdline.contains("arm_smmu_update_gbpa"));
        assert!(plan.cmdline.contains(" trace_event=ras:aer_event "));
        assert!(plan.cmdline.contains("trace_clock=mono"));
        assert!(plan.cmdline.ends_with("ftrace_dump_on_oops"));
        let gbpa = plan
            .decisions
            .iter()
            .find(|d| d.event == "kdo_smmu_gbpa")
            .unwrap();
        assert!(gbpa.excluded.as_deref().unwrap().starts_with("not present"));
        // Kernel parameters are split at spaces: the whole kprobe list is one parameter.
        let first = plan.cmdline.split(' ').next().unwrap();
        assert_eq!(first.matches("p:kdo/").count(), 7);
    }

    #[test]
    fn an_ambiguous_smmu_symbol_is_named_from_its_driver_neighbour() {
        // A kernel where SMMUv2 also had an `arm_smmu_write_reg_sync`: the SMMUv3 copy sits
        // among the SMMUv3 anchors and is named relative to one (KASLR-proof).
        let k = kallsyms(
            "ffff800080a00000 t arm_smmu_write_reg_sync\n\
             ffff800080a85200 t arm_smmu_cmdq_poll_until_sync\n\
             ffff800080a853d0 t arm_smmu_write_reg_sync\n\
             ffff800080a86000 t arm_smmu_evtq_thread\n\
             ffff800080a88400 t arm_smmu_cmdq_init\n",
        );
        let plan = plan(&k, |_, _| false);
        assert!(
            plan.cmdline.starts_with(
                "kprobe_event=p:kdo/kdo_smmu_write,arm_smmu_cmdq_poll_until_sync+0x1d0,"
            ),
            "{}",
            plan.cmdline
        );
        assert!(plan.decisions[0].excluded.is_none());
    }

    #[test]
    fn ambiguous_symbols_are_refused() {
        let k = kallsyms("1 t arm_smmu_write_reg_sync\n2 t arm_smmu_write_reg_sync\n");
        let plan = plan(&k, |_, _| false);
        assert!(!plan.cmdline.contains("kprobe_event"));
        let d = &plan.decisions[0];
        assert!(
            d.excluded.as_deref().is_some_and(
                |why| why.starts_with("ambiguous: 2 copies of arm_smmu_write_reg_sync")
            ),
            "{:?}",
            d.excluded
        );
    }
}
