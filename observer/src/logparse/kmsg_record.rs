//! `/dev/kmsg` record framing (`Documentation/ABI/testing/dev-kmsg`).
//!
//! ```text
//! 6,339,5140900,-,caller=T1;pcieport 0000:00:03.0: AER: enabled with IRQ 23
//!  SUBSYSTEM=pci
//!  DEVICE=+pci:0000:00:03.0
//! ```
//! Header `<prio>,<seq>,<ts_usec>,<flags>[,more]`; prio = facility << 3 | level; flags `-` or
//! `c` (continuation fragment). Text bytes below 0x20, from 0x7f, and `\` are escaped `\xNN`.
//! Each `read()` of the device returns exactly one record with its continuation lines.
use super::{MAX_LINE_BYTES, num::parse_dec};

/// Longest header looked at before giving up on finding its `;`.
const MAX_HEADER: usize = 256;

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsgRecord {
    /// Log level, 0 (emerg) .. 7 (debug).
    pub level: u8,
    /// Syslog facility (0 kernel, 1 user: written through `/dev/kmsg`).
    pub facility: u32,
    /// Sequence number; consecutive records differ by one, so a gap is lost records.
    pub seq: u64,
    /// Kernel monotonic timestamp, microseconds.
    pub ts_usec: u64,
    /// Flag `c`: a fragment of a line continued in the next record.
    pub continuation: bool,
    /// The message, unescaped (lossy UTF-8), at most [`MAX_LINE_BYTES`]. The ` KEY=value`
    /// dictionary lines after it (`SUBSYSTEM=pci`, `DEVICE=+pci:...`) and the header's
    /// `caller=` are not kept: every parser works from the message, which names the device.
    pub text: String,
}

impl KmsgRecord {
    /// The timestamp in nanoseconds (the timeline's unit).
    #[must_use]
    pub fn ts_ns(&self) -> u64 {
        self.ts_usec.saturating_mul(1000)
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("kmsg record has no ';' ending its header")]
    NoHeaderEnd,
    #[error("kmsg record header field `{0}` is missing or not a number")]
    BadField(&'static str),
}

/// Decodes one record: its header line plus any ` KEY=value` continuation lines.
pub fn parse_record(bytes: &[u8]) -> Result<KmsgRecord, RecordError> {
    let head_end = bytes
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b';')
        .ok_or(RecordError::NoHeaderEnd)?;
    let header =
        std::str::from_utf8(&bytes[..head_end]).map_err(|_| RecordError::BadField("prio"))?;
    let mut fields = header.split(',');
    let mut number = |name: &'static str| {
        fields
            .next()
            .and_then(parse_dec::<u64>)
            .ok_or(RecordError::BadField(name))
    };
    let prio = number("prio")?;
    let seq = number("seq")?;
    let ts_usec = number("ts_usec")?;
    let continuation = fields.next().is_some_and(|flags| flags.starts_with('c'));
    let body = &bytes[head_end + 1..];
    let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = unescape_line(line);
    Ok(KmsgRecord {
        level: u8::try_from(prio & 7).unwrap_or(7),
        facility: u32::try_from(prio >> 3).unwrap_or(u32::MAX),
        seq,
        ts_usec,
        continuation,
        text,
    })
}

/// Splits a dump of records (a file of what `/dev/kmsg` reads returned) into records: each
/// starts at a line not beginning with a space and takes the space-led lines after it.
pub fn split_records(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        // Skip empty lines and orphan continuation lines before a record.
        loop {
            if rest.is_empty() {
                return None;
            }
            if rest[0] == b'\n' || rest[0] == b' ' {
                rest = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(&[], |nl| &rest[nl + 1..]);
            } else {
                break;
            }
        }
        // The record ends at the first newline not followed by a continuation line.
        let mut end = 0;
        while let Some(nl) = rest[end..].iter().position(|&b| b == b'\n') {
            end += nl + 1;
            if rest.get(end) != Some(&b' ') {
                break;
            }
        }
        if !rest[..end].ends_with(b"\n") {
            end = rest.len();
        }
        let (record, tail) = rest.split_at(end);
        rest = tail;
        Some(record)
    })
}

/// Undoes `\xNN` escaping (other backslashes are kept as they are), drops a trailing CR,
/// caps at [`MAX_LINE_BYTES`] and decodes lossily.
fn unescape_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::with_capacity(line.len().min(MAX_LINE_BYTES));
    let mut i = 0;
    while i < line.len() && out.len() < MAX_LINE_BYTES {
        if line[i] == b'\\'
            && line.get(i + 1) == Some(&b'x')
            && let Some(byte) = line.get(i + 2..i + 4).and_then(hex_byte)
        {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    // One copy in the common case (valid UTF-8 within the cap).
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if text.len() <= MAX_LINE_BYTES {
        text
    } else {
        super::cap(&text, MAX_LINE_BYTES).to_owned()
    }
}

fn hex_byte(digits: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let value = digit(digits[0])? * 16 + digit(*digits.get(1)?)?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_with_dictionary() {
        let rec = parse_record(
            b"6,339,5140900,-,caller=T1;pcieport 0000:00:03.0: AER: enabled with IRQ 23\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:03.0\n",
        )
        .unwrap();
        assert_eq!(rec.level, 6);
        assert_eq!(rec.facility, 0);
        assert_eq!(rec.seq, 339);
        assert_eq!(rec.ts_usec, 5_140_900);
        assert_eq!(rec.ts_ns(), 5_140_900_000);
        assert!(!rec.continuation);
        assert_eq!(
            rec.text, "pcieport 0000:00:03.0: AER: enabled with IRQ 23",
            "the dictionary lines are not part of the message"
        );
    }

    #[test]
    fn user_facility_and_continuation_flag() {
        let rec = parse_record(b"13,7,100,c;user text").unwrap();
        assert_eq!((rec.facility, rec.level), (1, 5));
        assert!(rec.continuation);
        assert_eq!(rec.text, "user text");
    }

    #[test]
    fn escapes_are_undone() {
        let rec =
            parse_record(b"6,1,2,-;arm-smmu-v3 9050000.smmuv3: \\x090x0000000000000010\\x5c\\xq")
                .unwrap();
        assert_eq!(
            rec.text,
            "arm-smmu-v3 9050000.smmuv3: \t0x0000000000000010\\\\xq"
        );
        // UTF-8 arrives byte-escaped; invalid sequences are replaced.
        let rec = parse_record(b"6,1,2,-;caf\\xc3\\xa9 \\xff").unwrap();
        assert_eq!(rec.text, "caf\u{e9} \u{fffd}");
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        assert_eq!(parse_record(b"6,339,16"), Err(RecordError::NoHeaderEnd));
        assert_eq!(parse_record(b""), Err(RecordError::NoHeaderEnd));
        assert_eq!(
            parse_record(b"6,339;x"),
            Err(RecordError::BadField("ts_usec"))
        );
        assert_eq!(parse_record(b";x"), Err(RecordError::BadField("prio")));
        assert_eq!(
            parse_record(b"6,-1,2,-;x"),
            Err(RecordError::BadField("seq"))
        );
        assert_eq!(
            parse_record(b"\xff,1,2,-;x"),
            Err(RecordError::BadField("prio"))
        );
        // Header without flags, and a record cut right after the header.
        let rec = parse_record(b"6,1,2;").unwrap();
        assert_eq!(rec.text, "");
        // A trailing lone backslash or half escape.
        assert_eq!(parse_record(b"6,1,2,-;a\\x4").unwrap().text, "a\\x4");
        assert_eq!(parse_record(b"6,1,2,-;a\\").unwrap().text, "a\\");
    }

    #[test]
    fn huge_text_is_capped() {
        let mut rec = b"6,1,2,-;".to_vec();
        rec.extend(std::iter::repeat_n(b'y', 2 * MAX_LINE_BYTES));
        assert_eq!(parse_record(&rec).unwrap().text.len(), MAX_LINE_BYTES);
        let mut escaped = b"6,1,2,-;".to_vec();
        for _ in 0..MAX_LINE_BYTES {
            escaped.extend_from_slice(b"\\xff");
        }
        assert!(parse_record(&escaped).unwrap().text.len() <= MAX_LINE_BYTES);
    }

    #[test]
    fn dump_splits_into_records_with_their_dictionaries() {
        let dump = b" orphan\n\n6,1,10,-;first\n SUBSYSTEM=pci\n6,2,20,-;second\n6,3,30,-;last";
        let records: Vec<&[u8]> = split_records(dump).collect();
        assert_eq!(
            records,
            [
                &b"6,1,10,-;first\n SUBSYSTEM=pci\n"[..],
                &b"6,2,20,-;second\n"[..],
                &b"6,3,30,-;last"[..]
            ]
        );
        assert_eq!(split_records(b"").count(), 0);
        assert_eq!(split_records(b"\n\n \n").count(), 0);
    }
}
