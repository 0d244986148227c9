//! printk's own framing: `[%5lu.%06lu]` (`kernel/printk/printk.c` `print_time()`), optionally
//! after a `<N>` priority (`dmesg -r`, pstore) and followed by a `[    T1]` / `[  C12]` caller
//! id (`CONFIG_PRINTK_CALLER`, `print_caller()`, 5.1+).
//!
//! ```text
//! [    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
//! <4>[    1.637153] ...
//! [    1.637153][    T1] ...
//! ```
use super::super::num::parse_dec;

/// `<6>` (syslog priority; the level is its low three bits).
pub(crate) fn split_level(text: &str) -> (Option<u8>, &str) {
    let Some(inner) = text.strip_prefix('<') else {
        return (None, text);
    };
    let Some((digits, rest)) = inner.split_once('>') else {
        return (None, text);
    };
    match parse_dec::<u32>(digits) {
        Some(prio) if digits.len() <= 4 => (u8::try_from(prio & 7).ok(), rest),
        _ => (None, text),
    }
}

/// `[    1.637153]` → nanoseconds and the rest. Exactly six fractional digits, as printk
/// prints them; seconds up to 12 digits.
pub(crate) fn split_timestamp(text: &str) -> Option<(u64, &str)> {
    let inner = text.strip_prefix('[')?;
    let (stamp, rest) = inner.split_once(']')?;
    let (secs, micros) = stamp.trim_start_matches(' ').split_once('.')?;
    if secs.len() > 12 || micros.len() != 6 {
        return None;
    }
    let secs: u64 = parse_dec(secs)?;
    let micros: u64 = parse_dec(micros)?;
    let ns = secs
        .checked_mul(1_000_000_000)?
        .checked_add(micros.checked_mul(1000)?)?;
    Some((ns, rest))
}

/// `[    T1]` / `[  C12]` right after the timestamp (`CONFIG_PRINTK_CALLER`).
pub(crate) fn split_caller(text: &str) -> &str {
    let Some(inner) = text.strip_prefix('[') else {
        return text;
    };
    let Some((caller, rest)) = inner.split_once(']') else {
        return text;
    };
    let caller = caller.trim_start_matches(' ');
    let is_caller = caller
        .strip_prefix(['T', 'C'])
        .is_some_and(|id| parse_dec::<u32>(id).is_some());
    if is_caller { rest } else { text }
}

/// A whole printk-framed line: level, nanoseconds, and the message after the caller id.
pub(crate) fn frame(text: &str) -> Option<(Option<u8>, u64, &str)> {
    let (level, rest) = split_level(text);
    let (ts_ns, rest) = split_timestamp(rest)?;
    Some((level, ts_ns, message_after_stamp(rest)))
}

/// What follows the timestamp: the optional caller id, one space, the message.
pub(crate) fn message_after_stamp(rest: &str) -> &str {
    let rest = split_caller(rest);
    rest.strip_prefix(' ').unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_timestamp_and_caller() {
        assert_eq!(
            frame("<4>[   12.000001][    T1] hello"),
            Some((Some(4), 12_000_001_000, "hello"))
        );
        assert_eq!(
            frame("[ 3.500000][  C0] irq text"),
            Some((None, 3_500_000_000, "irq text"))
        );
        assert_eq!(
            frame("[    0.000000] [Firmware Bug]: x"),
            Some((None, 0, "[Firmware Bug]: x"))
        );
        assert_eq!(frame("[1.5] too short"), None);
        assert_eq!(frame("[-1.000000] signed"), None);
        assert_eq!(frame("[99999999999999.000000] too long"), None);
    }
}
