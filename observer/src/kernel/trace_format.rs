//! Parser for tracefs `events/<category>/<event>/format` files.
//!
//! Field layouts change between kernel versions (`ras:aer_event` is the standing example), so the
//! daemon never hard-codes an offset it can read from the running kernel.
use std::path::{Path, PathBuf};

/// One `field:` line of a format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The C declaration without the name, e.g. `u32`, `__data_loc char[]`, `u32 tlp_header[4]`
    /// keeps its array suffix in `array_len`.
    pub c_type: String,
    /// Field name.
    pub name: String,
    /// Byte offset within the raw record.
    pub offset: u16,
    /// Size in bytes.
    pub size: u16,
    /// Whether the type is signed.
    pub signed: bool,
    /// `N` for a fixed array `name[N]`.
    pub array_len: Option<u16>,
}

impl Field {
    /// Whether this is a `__data_loc` (dynamic, in-record) field.
    #[must_use]
    pub fn is_data_loc(&self) -> bool {
        self.c_type.starts_with("__data_loc")
    }
}

/// A parsed format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    /// `name:` line.
    pub name: String,
    /// `ID:` line.
    pub id: u32,
    /// Every field, common ones included, in file order.
    pub fields: Vec<Field>,
}

impl EventFormat {
    /// The field called `name`, if the event has one.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Parses the text of a format file read from `path` (used in error messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, FormatError> {
        let err = |line: usize, expected: &'static str, found: &str| FormatError {
            path: path.to_path_buf(),
            line,
            expected,
            found: found.chars().take(120).collect(),
        };
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = Some(
                    rest.trim()
                        .parse()
                        .map_err(|_| err(line_no, "a decimal event ID", rest))?,
                );
            } else if line.starts_with("field:") {
                fields.push(parse_field(line).ok_or_else(|| {
                    err(
                        line_no,
                        "field:<decl>; offset:<n>; size:<n>; signed:<0|1>;",
                        line,
                    )
                })?);
            }
        }
        Ok(Self {
            name: name.ok_or_else(|| err(1, "a `name:` line", ""))?,
            id: id.ok_or_else(|| err(1, "an `ID:` line", ""))?,
            fields,
        })
    }
}

fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("field:") {
            decl = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl?;
    // The name is the last identifier of the declaration, before any `[N]`.
    let (head, array_len) = match decl.strip_suffix(']') {
        Some(d) => {
            let open = d.rfind('[')?;
            let len = &d[open + 1..];
            (
                &d[..open],
                if len.is_empty() {
                    None
                } else {
                    len.parse().ok()
                },
            )
        }
        None => (decl, None),
    };
    let split = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    // The separator may be a multi-byte character in a corrupt file: skip all of it.
    let name = &head[split + head[split..].chars().next()?.len_utf8()..];
    if name.is_empty() {
        return None;
    }
    Some(Field {
        c_type: head[..split].trim().to_owned(),
        name: name.to_owned(),
        offset: offset?,
        size: size?,
        signed,
        array_len,
    })
}

/// A format file that does not say what the parser expects.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: expected {expected}, found {found:?}", path = path.display())]
pub struct FormatError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What the parser wanted.
    pub expected: &'static str,
    /// What it found (truncated).
    pub found: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ras:aer_event` as printed by a 6.12 kernel (4 TLP header words).
    const AER_612: &str = "name: aer_event
ID: 1520
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:0;
\tfield:u32 status;\toffset:12;\tsize:4;\tsigned:0;
\tfield:u8 severity;\toffset:16;\tsize:1;\tsigned:0;
\tfield:u8 tlp_header_valid;\toffset:17;\tsize:1;\tsigned:0;
\tfield:u32 tlp_header[4];\toffset:20;\tsize:16;\tsigned:0;

print fmt: \"%s PCIe Bus Error: severity=%s, %s, TLP Header=%s\", ...
";

    #[test]
    fn parses_aer_event_fields() {
        let f = EventFormat::parse(Path::new("format"), AER_612).unwrap();
        assert_eq!(f.name, "aer_event");
        assert_eq!(f.id, 1520);
        let dev = f.field("dev_name").unwrap();
        assert!(dev.is_data_loc());
        assert_eq!((dev.offset, dev.size), (8, 4));
        assert_eq!(f.field("severity").unwrap().offset, 16);
        let tlp = f.field("tlp_header").unwrap();
        assert_eq!(tlp.array_len, Some(4));
        assert_eq!(tlp.c_type, "u32");
        assert!(f.field("common_pid").unwrap().signed);
        assert!(f.field("bus_type").is_none());
    }

    #[test]
    fn bad_field_line_names_file_and_line() {
        let text = "name: x\nID: 3\nformat:\n\tfield:int a;\toffset:zz;\tsize:4;\tsigned:1;\n";
        let e = EventFormat::parse(Path::new("/t/format"), text).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.to_string().starts_with("/t/format:4: expected field:"),
            "{e}"
        );
    }

    #[test]
    fn multibyte_garbage_in_a_field_is_an_error_not_a_panic() {
        // Found by the trace_format fuzz target.
        let text = "name: x\nID: 3\nformat:\n\tfield:`hned\u{3db}\u{160}999\n";
        let e = EventFormat::parse(Path::new("f"), text).unwrap_err();
        assert_eq!(e.line, 4);
        let text = "name: x\nID: 3\n\tfield:u32 \u{3db}a;\toffset:0;\tsize:4;\tsigned:0;\n";
        let f = EventFormat::parse(Path::new("f"), text).unwrap();
        assert_eq!(f.fields[0].name, "a");
    }

    #[test]
    fn missing_id_is_an_error() {
        let e = EventFormat::parse(Path::new("f"), "name: x\n").unwrap_err();
        assert_eq!(e.expected, "an `ID:` line");
    }
}
