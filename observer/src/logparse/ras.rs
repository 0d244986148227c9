//! RAS lines: arm64 synchronous external aborts and panics. GHES records are in `ghes`,
//! SErrors in `serror`.
//!
//! Synchronous external abort (`arch/arm64/mm/fault.c` `do_sea()` →
//! `arm64_notify_die(inf->name, ...)`, 6.1 and 6.12 alike; the `fault_info[]` names that go
//! to `do_sea` are `synchronous external abort`, `level N (translation table walk)`,
//! `synchronous parity or ECC error`, `level N synchronous parity error (translation table
//! walk)`):
//! - from user space, `arch/arm64/kernel/traps.c` `arm64_show_signal()` (`pr_info`, only when
//!   `debug.exception-trace` / `show_unhandled_signals` is on, which arm64 leaves off by
//!   default): `%s[%d]: unhandled exception: ` then `%s, ESR 0x%016lx, ` (class, ESR; only
//!   when the ESR is non-zero), then the name, then ` in <vma>` (`print_vma_addr`), e.g.
//!   `devmem[94]: unhandled exception: DABT (lower EL), ESR 0x0000000092000010, synchronous
//!   external abort in busybox[400000+...]`;
//! - from the kernel, `die()` → `__die()` (`pr_emerg`): `Internal error: %s: %016lx [#%d]`
//!   followed by ` PREEMPT SMP`-style flags (6.1, 6.12: `S_PREEMPT S_SMP`), e.g.
//!   `Internal error: synchronous external abort: 0000000096000010 [#1] PREEMPT SMP`.
//!
//!   `Unable to handle kernel %s at virtual address %016lx` (`die_kernel_fault`) is only
//!   reached when the fault handler returns non-zero, which `do_sea` never does; it is still
//!   recognised (with the FAR) for kernels that route an SEA name there.
//!
//! Panic (`kernel/panic.c`): `Kernel panic - not syncing: %s` (the closing
//! `---[ end Kernel panic - not syncing: %s ]---` is not a second panic).
use super::num::normalize_hex;
use crate::event::Detail;

/// External abort and panic lines: the event detail, and the CPU when printed.
pub(crate) fn classify(text: &str) -> Option<(Detail, Option<u32>)> {
    if let Some(message) = text.strip_prefix("Kernel panic - not syncing: ") {
        return Some((
            Detail::Panic {
                message: message.trim_end().to_owned(),
            },
            None,
        ));
    }
    external_abort(text).map(|detail| (detail, None))
}

fn external_abort(text: &str) -> Option<Detail> {
    if let Some(rest) = text.strip_prefix("Internal error: ") {
        let (name, rest) = rest.split_once(": ")?;
        if !is_sea_name(name) {
            return None;
        }
        let esr = rest.split_whitespace().next().and_then(normalize_hex);
        return Some(Detail::ExternalAbort {
            far: None,
            esr,
            in_kernel: true,
            detail: name.to_owned(),
        });
    }
    if let Some(rest) = text.strip_prefix("Unable to handle kernel ") {
        let (name, address) = rest.split_once(" at virtual address ")?;
        if !is_sea_name(name) {
            return None;
        }
        return Some(Detail::ExternalAbort {
            far: address.split_whitespace().next().and_then(normalize_hex),
            esr: None,
            in_kernel: true,
            detail: name.to_owned(),
        });
    }
    let (task, rest) = super::scan::split_colon_space(text)?;
    let rest = rest.strip_prefix("unhandled exception: ")?;
    let (esr, rest) = match rest.split_once(", ESR ") {
        Some((_class, after)) => {
            let (esr, name) = after.split_once(", ")?;
            (normalize_hex(esr), name)
        }
        None => (None, rest),
    };
    let name = rest
        .split_once(" in ")
        .map_or(rest, |(name, _)| name)
        .trim_end();
    is_sea_name(name).then(|| Detail::ExternalAbort {
        far: None,
        esr,
        in_kernel: false,
        detail: format!("{task}: {name}"),
    })
}

/// The `fault_info[]` names handled by `do_sea()`.
fn is_sea_name(name: &str) -> bool {
    name == "synchronous external abort"
        || name == "synchronous parity or ECC error"
        || (name.starts_with("level ") && name.ends_with("(translation table walk)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_lines() {
        assert_eq!(
            classify("Kernel panic - not syncing: Asynchronous SError Interrupt"),
            Some((
                Detail::Panic {
                    message: "Asynchronous SError Interrupt".into()
                },
                None
            ))
        );
        assert_eq!(
            classify("---[ end Kernel panic - not syncing: Asynchronous SError Interrupt ]---"),
            None
        );
    }

    #[test]
    fn external_abort_from_user_space() {
        assert_eq!(
            classify(
                "devmem[94]: unhandled exception: DABT (lower EL), ESR 0x0000000092000010, synchronous external abort in busybox[aaaab0b40000+a2000]"
            ),
            Some((
                Detail::ExternalAbort {
                    far: None,
                    esr: Some("0x92000010".into()),
                    in_kernel: false,
                    detail: "devmem[94]: synchronous external abort".into()
                },
                None
            ))
        );
        // ESR zero: no class/ESR part.
        assert!(matches!(
            classify(
                "a.out[7]: unhandled exception: level 1 (translation table walk) in a.out[400000+1000]"
            ),
            Some((
                Detail::ExternalAbort {
                    esr: None,
                    in_kernel: false,
                    ..
                },
                None
            ))
        ));
        assert_eq!(
            classify(
                "a.out[7]: unhandled exception: DABT (lower EL), ESR 0x0000000092000006, level 2 translation fault in a.out[400000+1000]"
            ),
            None
        );
    }

    #[test]
    fn external_abort_in_the_kernel() {
        assert_eq!(
            classify(
                "Internal error: synchronous external abort: 0000000096000010 [#1] PREEMPT SMP"
            ),
            Some((
                Detail::ExternalAbort {
                    far: None,
                    esr: Some("0x96000010".into()),
                    in_kernel: true,
                    detail: "synchronous external abort".into()
                },
                None
            ))
        );
        assert!(matches!(
            classify("Internal error: synchronous parity or ECC error: 0000000096000018 [#2] SMP"),
            Some((
                Detail::ExternalAbort {
                    in_kernel: true,
                    ..
                },
                None
            ))
        ));
        assert_eq!(
            classify("Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP"),
            None
        );
        assert_eq!(
            classify(
                "Unable to handle kernel synchronous external abort at virtual address ffff800081000000"
            ),
            Some((
                Detail::ExternalAbort {
                    far: Some("0xffff800081000000".into()),
                    esr: None,
                    in_kernel: true,
                    detail: "synchronous external abort".into()
                },
                None
            ))
        );
        assert_eq!(
            classify("Unable to handle kernel paging request at virtual address dead000000000108"),
            None
        );
    }
}
