//! Lines of the programs that write the dump in the capture kernel, as they reach a console,
//! the journal or the kernel log (`<ident>[<pid>]: <message>`):
//! - Debian/Ubuntu kdump-tools (`/usr/sbin/kdump-config`, run by `kdump-tools-dump.service`
//!   with its output on the console and in the journal): `running makedumpfile ...`,
//!   `kdump-tools: saved vmcore in %s.`, `kdump-tools: saved dmesg content in %s.`,
//!   `kdump-tools: makedumpfile --dump-dmesg failed. dmesg content will be unavailable`,
//!   `kdump-tools: failed to save vmcore in %s.`; makedumpfile's own output under the same
//!   identifier;
//! - makedumpfile (`makedumpfile.c`, `print_info.c` `ERRMSG()` = `"%s: " fmt` with the
//!   function name): `makedumpfile Completed.`, `makedumpfile Failed.`, and the diagnostics
//!   that say why, e.g. `calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not
//!   supported` (1.7.2 on 52-bit VA arm64 kernels), `vaddr_to_paddr_arm64: Can't read p4d`,
//!   `readmem: Can't convert a virtual address(%lx) to physical address.`;
//! - Fedora/RHEL kdump-utils (dracut `kdump.sh`, `dinfo`/`derror` through `kdump[<pid>]:` or
//!   `kdump: `): `saving vmcore`, `saving vmcore complete`, `saving vmcore failed,
//!   _exitcode:%d`, `failed to save vmcore`.
//!
//! A failure takes as its cause the first makedumpfile diagnostic seen since the tool last
//! started (see [`DumpTools`]).

/// One line of a dump tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DumpToolLine<'a> {
    pub tool: &'static str,
    pub kind: DumpToolKind,
    pub message: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DumpToolKind {
    /// The tool starts writing (`running makedumpfile`, `saving vmcore`).
    Start,
    /// The dump (or dmesg) was written, by the tool's own account.
    Saved,
    /// The tool says it failed.
    Failed,
    /// A makedumpfile diagnostic (`function: message`): a failure's likely cause.
    Diagnostic,
}

/// Identifiers the dump tools log under.
const IDENTS: [(&str, &str); 4] = [
    ("kdump-tools", "kdump-tools"),
    ("makedumpfile", "makedumpfile"),
    ("kdump", "kdump-utils"),
    ("kdump.sh", "kdump-utils"),
];

pub(crate) fn classify(text: &str) -> Option<DumpToolLine<'_>> {
    let (ident, message) = super::scan::split_colon_space(text)?;
    let name = ident.split_once('[').map_or(ident, |(name, pid)| {
        if pid
            .strip_suffix(']')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        {
            name
        } else {
            ""
        }
    });
    let tool = IDENTS.iter().find(|(i, _)| *i == name)?.1;
    let message = message.trim();
    let inner = message.strip_prefix("kdump-tools: ").unwrap_or(message);
    let kind = kind(inner)?;
    Some(DumpToolLine {
        tool,
        kind,
        message,
    })
}

fn kind(message: &str) -> Option<DumpToolKind> {
    let lower_failed = message.contains("failed") || message.contains("Failed");
    if message.starts_with("running makedumpfile")
        || message == "saving vmcore"
        || message.starts_with("saving vmcore-dmesg")
        || message.starts_with("saving to ")
    {
        Some(DumpToolKind::Start)
    } else if lower_failed
        && (message.contains("makedumpfile")
            || message.contains("vmcore")
            || message.contains("dmesg"))
    {
        Some(DumpToolKind::Failed)
    } else if message == "makedumpfile Completed."
        || message.starts_with("saved vmcore in ")
        || message.starts_with("saved dmesg content in ")
        || message == "saving vmcore complete"
    {
        Some(DumpToolKind::Saved)
    } else if is_diagnostic(message) {
        Some(DumpToolKind::Diagnostic)
    } else {
        None
    }
}

/// makedumpfile's `ERRMSG()`: `<c_function>: <message>`.
fn is_diagnostic(message: &str) -> bool {
    message.split_once(": ").is_some_and(|(function, rest)| {
        !rest.is_empty()
            && function.contains('_')
            && function
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            || function == "readmem"
    })
}

/// What the dump tools said so far in one boot: the cause a failure is blamed on.
#[derive(Debug, Default)]
pub(crate) struct DumpTools {
    cause: Option<String>,
    fresh: bool,
}

impl DumpTools {
    /// Reads a line; for a failure, returns the cause.
    pub(crate) fn cause_for(&mut self, line: &DumpToolLine<'_>) -> Option<String> {
        match line.kind {
            DumpToolKind::Start => {
                self.fresh = true;
                None
            }
            DumpToolKind::Diagnostic => {
                if self.fresh || self.cause.is_none() {
                    self.cause = Some(line.message.to_owned());
                    self.fresh = false;
                }
                None
            }
            DumpToolKind::Failed => self.cause.clone(),
            DumpToolKind::Saved => None,
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> Option<(&'static str, DumpToolKind)> {
        classify(text).map(|l| (l.tool, l.kind))
    }

    #[test]
    fn debian_kdump_tools_lines() {
        use DumpToolKind::*;
        for (text, want) in [
            (
                "kdump-tools[278]: running makedumpfile -F -c -d 31 /proc/vmcore | compress > /var/crash/202611240852/dump-incomplete.",
                Some(("kdump-tools", Start)),
            ),
            (
                "kdump-tools[300]: makedumpfile Completed.",
                Some(("kdump-tools", Saved)),
            ),
            (
                "kdump-tools[278]: kdump-tools: saved vmcore in /var/crash/202611240852.",
                Some(("kdump-tools", Saved)),
            ),
            (
                "kdump-tools[299]: calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported",
                Some(("kdump-tools", Diagnostic)),
            ),
            (
                "kdump-tools[299]: get_machdep_info_arm64: Can't determine platform config values",
                Some(("kdump-tools", Diagnostic)),
            ),
            (
                "kdump-tools[299]: makedumpfile Failed.",
                Some(("kdump-tools", Failed)),
            ),
            (
                "kdump-tools[282]: kdump-tools: makedumpfile --dump-dmesg failed. dmesg content will be unavailable ... failed!",
                Some(("kdump-tools", Failed)),
            ),
            (
                "kdump-tools[301]: readmem: Can't convert a virtual address(ffffaee557dbb3b8) to physical address.",
                Some(("kdump-tools", Diagnostic)),
            ),
            (
                "kdump[512]: saving vmcore failed, _exitcode:1",
                Some(("kdump-utils", Failed)),
            ),
            (
                "kdump: saving vmcore complete",
                Some(("kdump-utils", Saved)),
            ),
            ("kdump-tools[266]: loaded kdump kernel.", None),
            ("systemd[1]: makedumpfile Failed.", None),
            ("kdump-tools[x]: makedumpfile Failed.", None),
        ] {
            assert_eq!(kind_of(text), want, "{text}");
        }
    }

    #[test]
    fn a_failure_is_blamed_on_the_first_diagnostic() {
        let mut tools = DumpTools::default();
        let lines = [
            "kdump-tools[278]: running makedumpfile --dump-dmesg /proc/vmcore /var/crash/x/dmesg.x.",
            "kdump-tools[299]: calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported",
            "kdump-tools[299]: get_machdep_info_arm64: Can't determine platform config values",
            "kdump-tools[299]: makedumpfile Failed.",
        ];
        let causes: Vec<Option<String>> = lines
            .iter()
            .map(|l| tools.cause_for(&classify(l).unwrap()))
            .collect();
        assert_eq!(
            causes[3].as_deref(),
            Some("calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported")
        );
        tools.reset();
        assert_eq!(
            tools.cause_for(&classify("kdump-tools[303]: makedumpfile Failed.").unwrap()),
            None
        );
    }
}
