//! arm64 SError lines, every spelling from 5.4 to 7.x:
//! - `arch/arm64/kernel/traps.c` `arm64_serror_panic()`: `SError Interrupt on CPU%d, code
//!   0x%016lx -- %s` (5.4: `0x%08x`), then `panic("Asynchronous SError Interrupt")`;
//! - `arch/arm64/kernel/entry-common.c` `__panic_unhandled()` (5.15+) for the error vectors:
//!   `Unhandled 64-bit el1h error exception on CPU%d, ESR 0x%016lx -- %s`, then
//!   `panic("Unhandled exception")`;
//! - `arch/arm64/kernel/traps.c` `bad_mode()` (5.4 .. 5.14): `Bad mode in Error handler
//!   detected on CPU%d, code 0x%08x -- %s`.
//!
//! A panic whose message is `Asynchronous SError Interrupt` is an SError even when the line
//! before it was lost (see [`is_serror_panic`]).
use super::num::{normalize_hex, parse_dec};
use crate::event::Detail;

/// The panic texts that only an SError produces.
const PANIC_TEXTS: [&str; 1] = ["Asynchronous SError Interrupt"];

/// Whether `Kernel panic - not syncing: <message>` is an SError panic.
pub(crate) fn is_serror_panic(message: &str) -> bool {
    PANIC_TEXTS.contains(&message.trim_end())
}

/// An SError line: the event detail and the CPU.
pub(crate) fn classify(text: &str) -> Option<(Detail, Option<u32>)> {
    if let Some(rest) = text.strip_prefix("SError Interrupt on CPU") {
        let (cpu, code) = rest.split_once(", code ")?;
        return with_code(cpu, code);
    }
    if let Some(rest) = text.strip_prefix("Unhandled ") {
        let (vector, rest) = rest.split_once(" exception on CPU")?;
        if !vector.ends_with(" error") {
            return None;
        }
        let (cpu, code) = rest.split_once(", ESR ")?;
        return with_code(cpu, code);
    }
    let rest = text.strip_prefix("Bad mode in Error handler detected on CPU")?;
    let (cpu, code) = rest.split_once(", code ")?;
    with_code(cpu, code)
}

/// `0x00000000bf000002 -- SError` after the CPU number.
fn with_code(cpu: &str, code: &str) -> Option<(Detail, Option<u32>)> {
    let (esr, class) = code.split_once(" -- ").unwrap_or((code, ""));
    Some((
        Detail::Serror {
            esr: Some(normalize_hex(esr.trim())?),
            fatal: true,
            detail: class.trim().to_owned(),
        },
        parse_dec(cpu),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr_cpu(text: &str) -> Option<(Option<String>, Option<u32>)> {
        match classify(text)? {
            (Detail::Serror { esr, .. }, cpu) => Some((esr, cpu)),
            _ => None,
        }
    }

    #[test]
    fn every_spelling() {
        assert_eq!(
            classify("SError Interrupt on CPU1, code 0x00000000bf000002 -- SError"),
            Some((
                Detail::Serror {
                    esr: Some("0xbf000002".into()),
                    fatal: true,
                    detail: "SError".into()
                },
                Some(1)
            ))
        );
        assert_eq!(
            esr_cpu("SError Interrupt on CPU0, code 0xbf000000 -- SError"),
            Some((Some("0xbf000000".into()), Some(0)))
        );
        assert_eq!(
            esr_cpu(
                "Unhandled 64-bit el1h error exception on CPU3, ESR 0x00000000bf000002 -- SError"
            ),
            Some((Some("0xbf000002".into()), Some(3)))
        );
        assert_eq!(
            esr_cpu("Bad mode in Error handler detected on CPU2, code 0xbf000000 -- SError"),
            Some((Some("0xbf000000".into()), Some(2)))
        );
        assert_eq!(
            classify(
                "Unhandled 64-bit el1h sync exception on CPU3, ESR 0x0000000096000010 -- DABT"
            ),
            None
        );
        assert_eq!(
            classify("SError Interrupt on CPU1, code nothex -- SError"),
            None
        );
    }

    #[test]
    fn serror_panic_texts() {
        assert!(is_serror_panic("Asynchronous SError Interrupt"));
        assert!(!is_serror_panic("sysrq triggered crash"));
    }
}
