//! The stateful line parser shared by both framings.
//!
//! Each line is classified once. If it continues the pending group (same device, same GHES
//! record, ...), it is folded in; otherwise a line that makes an event first emits the pending
//! group, so events come out in log order. Lines that match nothing change nothing (an
//! unrelated line printed between an AER source line and its details does not split them).
use super::{
    MAX_LINE_BYTES,
    aer::{self, AerLine},
    append_raw,
    boot::{self, BootLine},
    cap,
    cper_aer::{self, CperAerLine},
    device,
    dpc::{self, DpcLine},
    dump_tool::{self, DumpToolKind, DumpToolLine, DumpTools},
    edac,
    ghes::{self, GhesLine, OpenRecords},
    mirror::is_mirrored_line,
    platform, ras, serror,
    smmu::{self, SmmuLine},
    x86_iommu,
};
use crate::event::{Detail, Event, FirmwareFirst, Source, hex};

/// Most error-bit names, SMMU record lines or GHES parts kept for one group.
const MAX_GROUP_PARTS: usize = 32;

/// Turns kernel log lines into events; see the module documentation of `logparse`.
#[derive(Debug, Default)]
pub struct LogParser {
    pending: Option<Group>,
    /// GHES records, kept apart from `pending`: their lines interleave with others.
    ghes: OpenRecords,
    dump_tools: DumpTools,
    /// This boot's `platform_name` was emitted (oopses repeat `Hardware name:`).
    platform_named: bool,
    /// This boot logged an SError line (its panic then is not a second SError).
    serror_seen: bool,
}

/// One classified line.
enum Line<'a> {
    Boot(BootLine<'a>),
    Smmu(&'a str, SmmuLine<'a>),
    Aer(AerLine<'a>),
    Dpc(DpcLine<'a>),
    Ghes(GhesLine<'a>),
    CperAer(CperAerLine<'a>),
    DumpTool(DumpToolLine<'a>),
    Platform(&'static str, &'a str),
    Serror(Detail, Option<u32>),
    Simple(Detail, Option<u32>),
}

/// A multi-line event being assembled.
#[derive(Debug)]
struct Group {
    event: Event,
    kind: GroupKind,
    /// A folded line did not fit in `raw`; later ones are not recorded either.
    raw_full: bool,
}

#[derive(Debug)]
enum GroupKind {
    /// `Booting Linux ...`, waiting for `Linux version`.
    Boot,
    Aer {
        device: String,
        bus_error_seen: bool,
    },
    SmmuFault {
        smmu: String,
        dwords: Vec<String>,
        decoded: Vec<String>,
    },
    /// Firmware-first AER lines (`aer_status: ...`) of `device`.
    CperAer {
        device: String,
        status: u64,
        mask: u64,
        severity_mask: Option<u64>,
        /// The severity of the GHES record this error came with, if found.
        record_severity: Option<String>,
    },
    Dpc {
        device: String,
    },
}

impl LogParser {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a multi-line group is waiting for more lines (or a [`flush`](Self::flush)).
    #[must_use]
    pub fn has_pending(&self) -> bool {
        self.pending.is_some() || !self.ghes.is_empty()
    }

    /// Feeds one message text (no timestamp, no record header) logged at `ts_ns`; appends any
    /// events it completes to `out`. Lines of this daemon's own mirror are ignored.
    pub fn push(&mut self, ts_ns: u64, source: Source, text: &str, out: &mut Vec<Event>) {
        let text = cap(text, MAX_LINE_BYTES);
        if is_mirrored_line(text) {
            return;
        }
        self.ghes.expire(ts_ns, out);
        let Some(line) = classify(text) else {
            return;
        };
        if let Line::Ghes(line) = line {
            self.ghes.push(line, ts_ns, source, text, out);
            return;
        }
        if let Some(group) = &mut self.pending
            && group.fold(&line)
        {
            group.append_raw(text);
            return;
        }
        self.act(line, ts_ns, source, text, out);
    }

    /// Emits the pending group and the open GHES records, if any.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        self.flush_group(out);
        self.ghes.flush(out);
    }

    fn flush_group(&mut self, out: &mut Vec<Event>) {
        if let Some(group) = self.pending.take() {
            out.push(group.finish());
        }
    }

    /// A new kernel starts: records, dump-tool state and per-boot marks start over.
    fn new_boot(&mut self, out: &mut Vec<Event>) {
        self.flush_group(out);
        self.ghes.reset(out);
        self.dump_tools.reset();
        self.platform_named = false;
        self.serror_seen = false;
    }

    fn emit(&mut self, event: Event, out: &mut Vec<Event>) {
        self.flush_group(out);
        out.push(event);
    }

    fn start(&mut self, event: Event, kind: GroupKind, out: &mut Vec<Event>) {
        self.flush_group(out);
        self.pending = Some(Group {
            event,
            kind,
            raw_full: false,
        });
    }

    /// The reporting port of the pending AER error, inherited by further errors of the same
    /// message (`Multiple ...`, or details for a device below the source).
    fn pending_reporter(&self) -> Option<String> {
        match &self.pending {
            Some(Group {
                event:
                    Event {
                        detail: Detail::Aer { reporter, .. },
                        ..
                    },
                ..
            }) => reporter.clone(),
            _ => None,
        }
    }

    fn act(
        &mut self,
        line: Line<'_>,
        ts_ns: u64,
        source: Source,
        text: &str,
        out: &mut Vec<Event>,
    ) {
        let event = |detail| Event::new(ts_ns, source, detail).with_raw(text);
        match line {
            Line::Boot(BootLine::Booting) => {
                self.new_boot(out);
                self.start(
                    event(Detail::KernelBoot { version: None }),
                    GroupKind::Boot,
                    out,
                );
            }
            Line::Boot(BootLine::Version(version)) => {
                self.new_boot(out);
                self.emit(
                    event(Detail::KernelBoot {
                        version: Some(version.to_owned()),
                    }),
                    out,
                );
            }
            Line::Boot(BootLine::KdumpArmed) => self.emit(event(Detail::KdumpArmed), out),
            Line::Boot(BootLine::Cmdline {
                cmdline,
                elfcorehdr,
            }) => {
                self.emit(
                    event(Detail::KernelCmdline {
                        cmdline: cmdline.to_owned(),
                    }),
                    out,
                );
                if let Some(arg) = elfcorehdr {
                    out.push(event(Detail::CaptureKernelMarker {
                        evidence: arg.to_owned(),
                    }));
                }
            }
            Line::Boot(BootLine::ElfcorehdrReserved) => self.emit(
                event(Detail::CaptureKernelMarker {
                    evidence: text.trim_end().to_owned(),
                }),
                out,
            ),
            Line::Smmu(smmu, line) => self.act_smmu(smmu, line, event, out),
            Line::Aer(line) => self.act_aer(&line, event, out),
            Line::Dpc(DpcLine::Event {
                device,
                status,
                detail,
            }) => self.start(
                event(Detail::Dpc {
                    device: Some(device.to_owned()),
                    status: status.map(hex),
                    detail: detail.to_owned(),
                }),
                GroupKind::Dpc {
                    device: device.to_owned(),
                },
                out,
            ),
            Line::CperAer(line) => self.act_cper_aer(line, event, out),
            Line::DumpTool(line) => self.act_dump_tool(&line, event, out),
            Line::Platform(source_line, name) => {
                if !self.platform_named {
                    self.platform_named = true;
                    self.emit(
                        event(Detail::PlatformName {
                            source_line: source_line.to_owned(),
                            name: name.to_owned(),
                        }),
                        out,
                    );
                }
            }
            Line::Serror(detail, cpu) => {
                self.serror_seen = true;
                let mut e = event(detail);
                e.cpu = cpu;
                self.emit(e, out);
            }
            Line::Simple(detail, cpu) => self.act_simple(detail, cpu, event, out),
            // Continuation lines whose group is not pending (e.g. its start was lost); GHES
            // lines never get here.
            Line::Dpc(DpcLine::Reason { .. }) | Line::Ghes(_) => {}
        }
    }

    fn act_dump_tool(
        &mut self,
        line: &DumpToolLine<'_>,
        event: impl Fn(Detail) -> Event,
        out: &mut Vec<Event>,
    ) {
        let cause = self.dump_tools.cause_for(line);
        let outcome = match line.kind {
            DumpToolKind::Start => "started",
            DumpToolKind::Saved => "saved",
            DumpToolKind::Failed => "failed",
            DumpToolKind::Diagnostic => "diagnostic",
        };
        self.emit(
            event(Detail::DumpTool {
                tool: line.tool.to_owned(),
                outcome: outcome.to_owned(),
                message: line.message.to_owned(),
                cause,
            }),
            out,
        );
    }

    fn act_simple(
        &mut self,
        detail: Detail,
        cpu: Option<u32>,
        event: impl Fn(Detail) -> Event,
        out: &mut Vec<Event>,
    ) {
        if let Detail::Panic { message } = &detail {
            // A panic ends every GHES record (`__ghes_panic` prints the record, then panics).
            self.ghes.flush(out);
            // `Asynchronous SError Interrupt` whose SError line was not logged (or lost).
            if serror::is_serror_panic(message) && !self.serror_seen {
                self.serror_seen = true;
                self.emit(
                    event(Detail::Serror {
                        esr: None,
                        fatal: true,
                        detail: message.clone(),
                    }),
                    out,
                );
            }
        }
        let mut e = event(detail);
        e.cpu = cpu;
        self.emit(e, out);
    }

    fn act_cper_aer(
        &mut self,
        line: CperAerLine<'_>,
        event: impl Fn(Detail) -> Event,
        out: &mut Vec<Event>,
    ) {
        match line {
            CperAerLine::Status {
                device,
                status,
                mask,
            } => {
                let (record, record_severity) =
                    self.ghes.record_naming(device).unwrap_or((None, None));
                self.start(
                    event(Detail::Aer {
                        device: device.to_owned(),
                        severity: cper_aer::severity(status, mask, None),
                        status: Some(hex(status & !mask)),
                        error_type: None,
                        reporter: None,
                        errors: Vec::new(),
                        firmware_first: Some(FirmwareFirst {
                            ghes_record: record,
                            uncor_severity: None,
                        }),
                    }),
                    GroupKind::CperAer {
                        device: device.to_owned(),
                        status,
                        mask,
                        severity_mask: None,
                        record_severity,
                    },
                    out,
                );
            }
            CperAerLine::Recover { device, outcome } => self.emit(
                event(Detail::AerRecovery {
                    device: Some(device),
                    outcome: outcome.to_owned(),
                    channel_state: None,
                }),
                out,
            ),
            // A severity line of an error that is not pending.
            CperAerLine::UncorSeverity { .. } => {}
        }
    }

    fn act_smmu(
        &mut self,
        smmu: &str,
        line: SmmuLine<'_>,
        event: impl Fn(Detail) -> Event,
        out: &mut Vec<Event>,
    ) {
        let smmu = smmu.to_owned();
        let detail = match line {
            SmmuLine::Probe {
                ias_bits,
                oas_bits,
                features,
            } => Detail::SmmuProbe {
                smmu,
                ias_bits,
                oas_bits,
                features: hex(features),
            },
            SmmuLine::Reset => Detail::SmmuReset {
                smmu,
                writes: Vec::new(),
            },
            SmmuLine::Adopt => Detail::SmmuAdopt { smmu },
            SmmuLine::AdoptFallback(reason) => Detail::SmmuAdoptFallback {
                smmu,
                reason: reason.to_owned(),
            },
            SmmuLine::Gerror(value) => Detail::SmmuGerror {
                smmu: Some(smmu),
                gerror: Some(hex(value)),
            },
            SmmuLine::Error(message) => Detail::SmmuError {
                smmu,
                message: message.to_owned(),
            },
            SmmuLine::FaultStart(id) => {
                let kind = GroupKind::SmmuFault {
                    smmu: smmu.clone(),
                    dwords: Vec::new(),
                    decoded: Vec::new(),
                };
                let detail = Detail::SmmuFault {
                    smmu,
                    event_id: hex(id),
                    detail: String::new(),
                };
                self.start(event(detail), kind, out);
                return;
            }
            // A dump line without its `event ... received:` (or of a CMDQ error): nothing.
            SmmuLine::FaultDetail(_) => return,
        };
        self.emit(event(detail), out);
    }

    fn act_aer(
        &mut self,
        line: &AerLine<'_>,
        event: impl Fn(Detail) -> Event,
        out: &mut Vec<Event>,
    ) {
        match line {
            AerLine::Source {
                reporter,
                device,
                severity,
            } => self.start(
                event(Detail::Aer {
                    device: (*device).to_owned(),
                    severity: *severity,
                    status: None,
                    error_type: None,
                    reporter: Some((*reporter).to_owned()),
                    errors: Vec::new(),
                    firmware_first: None,
                }),
                GroupKind::Aer {
                    device: (*device).to_owned(),
                    bus_error_seen: false,
                },
                out,
            ),
            // Details without a source line for this device: the error starts here.
            AerLine::BusError {
                device,
                severity: Some(severity),
                error_type,
            } => {
                let reporter = self.pending_reporter();
                self.start(
                    event(Detail::Aer {
                        device: (*device).to_owned(),
                        severity: *severity,
                        status: None,
                        error_type: error_type.map(str::to_owned),
                        reporter,
                        errors: Vec::new(),
                        firmware_first: None,
                    }),
                    GroupKind::Aer {
                        device: (*device).to_owned(),
                        bus_error_seen: true,
                    },
                    out,
                );
            }
            AerLine::Recovery { device, outcome } => self.emit(
                event(Detail::AerRecovery {
                    device: Some((*device).to_owned()),
                    outcome: aer::recovery_outcome(outcome).to_owned(),
                    channel_state: None,
                }),
                out,
            ),
            // Detail lines of an error that is not pending: nothing to attach them to.
            AerLine::BusError { severity: None, .. }
            | AerLine::Status { .. }
            | AerLine::Bit { .. }
            | AerLine::Layer { .. }
            | AerLine::Quiet { .. } => {}
        }
    }
}

impl Group {
    /// Folds `line` into this group if it belongs to it.
    fn fold(&mut self, line: &Line<'_>) -> bool {
        match (&mut self.kind, line) {
            (GroupKind::Boot, Line::Boot(BootLine::Version(release))) => {
                match &mut self.event.detail {
                    Detail::KernelBoot { version } if version.is_none() => {
                        *version = Some((*release).to_owned());
                        true
                    }
                    _ => false,
                }
            }
            (
                GroupKind::Aer {
                    device,
                    bus_error_seen,
                },
                Line::Aer(aer_line),
            ) if aer_line.device() == device.as_str() => {
                fold_aer(&mut self.event.detail, bus_error_seen, aer_line)
            }
            // `aer_status:` lines right after a native report of the same device are that
            // error's registers, not a second error.
            (
                GroupKind::Aer { device, .. },
                Line::CperAer(CperAerLine::Status {
                    device: d,
                    status: value,
                    mask,
                }),
            ) if *d == device.as_str() => match &mut self.event.detail {
                Detail::Aer { status, .. } if status.is_none() => {
                    *status = Some(hex(value & !mask));
                    true
                }
                _ => false,
            },
            (
                GroupKind::Aer { device, .. },
                Line::CperAer(CperAerLine::UncorSeverity { device: d, .. }),
            ) if *d == device.as_str() => true,
            (
                GroupKind::SmmuFault {
                    smmu,
                    dwords,
                    decoded,
                },
                Line::Smmu(line_smmu, SmmuLine::FaultDetail(text)),
            ) if line_smmu == smmu => {
                let list = if text.starts_with("0x") && !text.contains(' ') {
                    dwords
                } else {
                    decoded
                };
                if list.len() < MAX_GROUP_PARTS {
                    list.push((*text).to_owned());
                }
                true
            }
            (
                GroupKind::CperAer { device, .. },
                Line::Aer(
                    aer_line
                    @ (AerLine::Bit { .. } | AerLine::Layer { .. } | AerLine::Quiet { .. }),
                ),
            ) if aer_line.device() == device.as_str() => {
                let mut seen = true;
                fold_aer(&mut self.event.detail, &mut seen, aer_line)
            }
            (
                GroupKind::CperAer {
                    device,
                    severity_mask,
                    ..
                },
                Line::CperAer(CperAerLine::UncorSeverity {
                    device: d,
                    severity_mask: value,
                }),
            ) if *d == device.as_str() && severity_mask.is_none() => {
                *severity_mask = Some(*value);
                if let Detail::Aer {
                    firmware_first: Some(ff),
                    ..
                } = &mut self.event.detail
                {
                    ff.uncor_severity = Some(hex(*value));
                }
                true
            }
            (GroupKind::Dpc { device }, Line::Dpc(DpcLine::Reason { device: d, reason }))
                if d == device =>
            {
                if let Detail::Dpc { detail, .. } = &mut self.event.detail {
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(reason);
                }
                true
            }
            _ => false,
        }
    }

    fn append_raw(&mut self, text: &str) {
        append_raw(&mut self.event.raw, &mut self.raw_full, text);
    }

    /// The finished event.
    fn finish(mut self) -> Event {
        match (&mut self.event.detail, self.kind) {
            (
                Detail::SmmuFault { detail, .. },
                GroupKind::SmmuFault {
                    dwords, decoded, ..
                },
            ) => {
                *detail = if decoded.is_empty() {
                    dwords.join(" ")
                } else {
                    decoded.join("; ")
                };
            }
            (
                Detail::Aer { severity, .. },
                GroupKind::CperAer {
                    status,
                    mask,
                    severity_mask,
                    record_severity,
                    ..
                },
            ) => {
                // The registers say it; without `aer_uncor_severity`, the GHES record does.
                *severity = match (severity_mask, record_severity.as_deref()) {
                    (None, Some("recoverable")) => crate::event::AerSeverity::Nonfatal,
                    (None, Some("fatal")) => crate::event::AerSeverity::Fatal,
                    _ => cper_aer::severity(status, mask, severity_mask),
                };
            }
            _ => {}
        }
        self.event
    }
}

fn fold_aer(detail: &mut Detail, bus_error_seen: &mut bool, line: &AerLine<'_>) -> bool {
    let Detail::Aer {
        status,
        error_type,
        errors,
        ..
    } = detail
    else {
        return false;
    };
    match line {
        AerLine::BusError {
            error_type: line_type,
            ..
        } if !*bus_error_seen => {
            *bus_error_seen = true;
            if let Some(t) = line_type {
                *error_type = Some((*t).to_owned());
            }
            true
        }
        AerLine::Status { status: value, .. } if status.is_none() => {
            *status = Some(hex(*value));
            true
        }
        AerLine::Bit { name, .. } => {
            if errors.len() < MAX_GROUP_PARTS {
                errors.push(name.clone());
            }
            true
        }
        AerLine::Layer { layer, .. } => {
            if error_type.is_none() {
                *error_type = Some((*layer).to_owned());
            }
            true
        }
        AerLine::Quiet { .. } => true,
        _ => false,
    }
}

fn classify(text: &str) -> Option<Line<'_>> {
    // The `<driver> <device>: ` prefix, split once for the families that need it.
    let dev = device::split_dev_line(text);
    let pci = dev.filter(|line| device::is_bdf(line.device));
    if let Some((smmu, line)) = smmu::classify(text) {
        return Some(Line::Smmu(smmu, line));
    }
    if let Some(line) = boot::classify(text) {
        return Some(Line::Boot(line));
    }
    if let Some(line) = ghes::classify(text) {
        return Some(Line::Ghes(line));
    }
    if let Some((detail, cpu)) = serror::classify(text) {
        return Some(Line::Serror(detail, cpu));
    }
    if let Some((detail, cpu)) = ras::classify(text) {
        return Some(Line::Simple(detail, cpu));
    }
    if let Some(detail) = edac::classify(text) {
        return Some(Line::Simple(detail, None));
    }
    if let Some(detail) = x86_iommu::classify_with(text, dev.as_ref()) {
        return Some(Line::Simple(detail, None));
    }
    if let Some((source_line, name)) = platform::classify(text) {
        return Some(Line::Platform(source_line, name));
    }
    if let Some(line) = dump_tool::classify(text) {
        return Some(Line::DumpTool(line));
    }
    if let Some(line) = cper_aer::classify_with(text, pci.as_ref()) {
        return Some(Line::CperAer(line));
    }
    let pci = pci?;
    if let Some(line) = aer::classify_pci(&pci) {
        return Some(Line::Aer(line));
    }
    dpc::classify_pci(&pci).map(Line::Dpc)
}
