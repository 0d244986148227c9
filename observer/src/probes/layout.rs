//! Turning a tracefs format into the offsets an eBPF program reads.
use observer_common::TracepointLayout;

use crate::kernel::trace_format::EventFormat;

/// The layout of `format` for a program that copies the string field `text` and up to three
/// integer `fields` (in this order). Fields the kernel does not have are marked absent; a field
/// of an unusable shape is an error naming it.
pub fn tracepoint_layout(
    format: &EventFormat,
    text: Option<&str>,
    fields: &[&str],
) -> Result<TracepointLayout, String> {
    let mut layout = TracepointLayout::EMPTY;
    if let Some(text) = text {
        let field = format
            .field(text)
            .ok_or_else(|| format!("{} has no field `{text}`", format.name))?;
        if !field.is_data_loc() {
            return Err(format!(
                "{}.{text} is `{}`, expected a __data_loc string",
                format.name, field.c_type
            ));
        }
        layout.text_loc = field.offset;
    }
    for (slot, name) in fields.iter().take(3).enumerate() {
        let Some(field) = format.field(name) else {
            continue;
        };
        if !matches!(field.size, 1 | 2 | 4 | 8) || field.array_len.is_some() {
            return Err(format!(
                "{}.{name} has size {} (expected a 1, 2, 4 or 8 byte integer)",
                format.name, field.size
            ));
        }
        layout.fields[slot] = field.offset;
        #[expect(clippy::cast_possible_truncation, reason = "checked to be 1..=8 above")]
        let size = field.size as u8;
        layout.sizes[slot] = size;
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn format(fields: &str) -> EventFormat {
        let text = format!("name: ev\nID: 7\nformat:\n{fields}");
        EventFormat::parse(Path::new("f"), &text).unwrap()
    }

    #[test]
    fn offsets_follow_the_kernel() {
        // 7.1 inserted a second string (`bus_type`) before the integers.
        let f = format(
            "\tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:0;\n\
             \tfield:__data_loc char[] bus_type;\toffset:12;\tsize:4;\tsigned:0;\n\
             \tfield:u32 status;\toffset:16;\tsize:4;\tsigned:0;\n\
             \tfield:u8 severity;\toffset:20;\tsize:1;\tsigned:0;\n",
        );
        let l = tracepoint_layout(
            &f,
            Some("dev_name"),
            &["status", "severity", "tlp_header_valid"],
        )
        .unwrap();
        assert_eq!(l.text_loc, 8);
        assert_eq!(l.fields, [16, 20, TracepointLayout::ABSENT]);
        assert_eq!(l.sizes, [4, 1, 0]);
    }

    #[test]
    fn text_field_must_be_a_string() {
        let f = format("\tfield:u32 dev_name;\toffset:8;\tsize:4;\tsigned:0;\n");
        let e = tracepoint_layout(&f, Some("dev_name"), &[]).unwrap_err();
        assert!(e.contains("expected a __data_loc string"), "{e}");
    }

    #[test]
    fn arrays_are_not_integers() {
        let f = format("\tfield:u32 status[4];\toffset:8;\tsize:16;\tsigned:0;\n");
        assert!(tracepoint_layout(&f, None, &["status"]).is_err());
    }
}
