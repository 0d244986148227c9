//! The kdump configuration files `setup` edits: shell variable assignments, sourced by the
//! kdump scripts (and, for kdump-tools, also read by systemd's `EnvironmentFile=`).
//!
//! | flavour | file | variable | how the value reaches `kexec` |
//! |---|---|---|---|
//! | Debian kdump-tools | `/etc/default/kdump-tools` | `KDUMP_CMDLINE_APPEND` | `eval` of `--command-line="..."`: `$`, `` ` ``, `"`, `\` need a backslash |
//! | kdump-utils (Fedora, RHEL) | `/etc/sysconfig/kdump` | `KDUMP_COMMANDLINE_APPEND` | used as is |
//!
//! Values are written single-quoted, so neither the shell nor systemd expands anything in them;
//! for kdump-tools they carry the backslashes its `eval` removes.
use std::path::{Path, PathBuf};

/// Which kdump implementation the file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    KdumpTools,
    KdumpUtils,
}

impl Flavor {
    #[must_use]
    pub fn path(self) -> PathBuf {
        PathBuf::from(match self {
            Self::KdumpTools => "/etc/default/kdump-tools",
            Self::KdumpUtils => "/etc/sysconfig/kdump",
        })
    }

    #[must_use]
    pub fn variable(self) -> &'static str {
        match self {
            Self::KdumpTools => "KDUMP_CMDLINE_APPEND",
            Self::KdumpUtils => "KDUMP_COMMANDLINE_APPEND",
        }
    }

    /// What the scripts use when the variable is not set (kdump-tools 1.8.1's `kdump-config`).
    #[must_use]
    pub fn default_append(self) -> &'static str {
        match self {
            Self::KdumpTools => {
                "reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll usbcore.nousb"
            }
            Self::KdumpUtils => "",
        }
    }

    /// How to reload the configuration into the loaded crash kernel.
    #[must_use]
    pub fn reload_hint(self) -> &'static str {
        match self {
            Self::KdumpTools => {
                "systemctl restart kdump-tools (or: kdump-config unload; kdump-config load)"
            }
            Self::KdumpUtils => "kdumpctl restart",
        }
    }

    /// The flavour whose file exists under `root` (kdump-tools first).
    #[must_use]
    pub fn detect(root: &Path) -> Option<Self> {
        [Self::KdumpTools, Self::KdumpUtils].into_iter().find(|f| {
            root.join(f.path().strip_prefix("/").unwrap_or(&f.path()))
                .is_file()
        })
    }
}

/// Problems with the file's content, with the line they are on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("line {line}: {what}; edit {variable} by hand")]
    Unsupported {
        line: usize,
        variable: &'static str,
        what: String,
    },
    #[error("the new value contains a single quote, which cannot be written single-quoted")]
    Quote,
}

/// The variable's assignment in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based line of the last (effective) assignment, `None` when unset.
    pub line: Option<usize>,
    /// The command-line text the kdump script ends up using (after its `eval`, if any).
    pub effective: String,
}

/// Finds the effective assignment of the flavour's variable in `text`.
pub fn read(flavor: Flavor, text: &str) -> Result<Assignment, ConfigError> {
    let var = flavor.variable();
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        if let Some(raw) = trimmed.strip_prefix(var).and_then(|r| r.strip_prefix('=')) {
            found = Some((i + 1, raw));
        }
    }
    let Some((line, raw)) = found else {
        return Ok(Assignment {
            line: None,
            effective: flavor.default_append().to_owned(),
        });
    };
    let unsupported = |what: &str| ConfigError::Unsupported {
        line,
        variable: var,
        what: what.to_owned(),
    };
    let sourced = unquote(raw).map_err(|what| unsupported(&what))?;
    let effective = match flavor {
        Flavor::KdumpTools => unescape_eval(&sourced).map_err(|what| unsupported(&what))?,
        Flavor::KdumpUtils => sourced,
    };
    Ok(Assignment {
        line: Some(line),
        effective,
    })
}

/// `text` with the variable set so that the scripts use `effective`: the effective line
/// replaced, else the assignment appended (with a comment saying who added it).
pub fn write(flavor: Flavor, text: &str, effective: &str) -> Result<String, ConfigError> {
    let current = read(flavor, text)?;
    let value = match flavor {
        Flavor::KdumpTools => escape_eval(effective),
        Flavor::KdumpUtils => effective.to_owned(),
    };
    if value.contains('\'') {
        return Err(ConfigError::Quote);
    }
    let assignment = format!("{}='{value}'", flavor.variable());
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Some(n) = current.line {
        lines[n - 1] = assignment;
    } else {
        lines.push(format!(
            "# Added by kdump-dma-observer setup: {} default plus boot-time instrumentation.",
            match flavor {
                Flavor::KdumpTools => "kdump-tools'",
                Flavor::KdumpUtils => "kdump-utils'",
            }
        ));
        lines.push(assignment);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

/// What `sh` assigns for the right-hand side `raw` (quotes and backslashes resolved). Shell
/// expansions cannot be evaluated here and are refused.
fn unquote(raw: &str) -> Result<String, String> {
    let raw = strip_comment(raw.trim_end());
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('$' | '`' | '"' | '\\')) => out.push(c),
                        Some('\n') => {}
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unterminated double quote".into()),
                    },
                    Some('$' | '`') => {
                        return Err("the value uses shell expansion ($ or `)".into());
                    }
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote".into()),
                }
            },
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            '$' | '`' => return Err("the value uses shell expansion ($ or `)".into()),
            c if c.is_whitespace() => {
                return Err("an unquoted space ends the assignment early".into());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A trailing ` # comment` outside quotes.
fn strip_comment(raw: &str) -> &str {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut prev_space = true;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && !single && !double && prev_space {
            return raw[..i].trim_end();
        }
        prev_space = c.is_whitespace();
    }
    raw
}

/// kdump-tools' `eval` of `--command-line="$KDUMP_CMDLINE"`: inside double quotes a backslash
/// before `$`, `` ` ``, `"` or `\` is removed; an unescaped `$` or `` ` `` would expand.
fn unescape_eval(sourced: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = sourced.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(c @ ('$' | '`' | '"' | '\\')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => out.push('\\'),
            },
            '$' | '`' => {
                return Err(
                    "the value has an unescaped $ or `, which kdump-config's eval expands (write \\$)"
                        .into(),
                );
            }
            '"' => {
                return Err(
                    "the value has an unescaped \", which ends kdump-config's quoting".into(),
                );
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn escape_eval(effective: &str) -> String {
    let mut out = String::with_capacity(effective.len() + 8);
    for c in effective.chars() {
        if matches!(c, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    const WANT: &str = "reset_devices nr_cpus=1 kprobe_event=p:kdo/kdo_smmu_write,\
                        arm_smmu_write_reg_sync,smmu=+0(+0(+0($arg1))):string,val=$arg2:x32";

    /// What the real shell makes of the file, the way kdump-config 1.8.1 uses it: source it,
    /// then `eval` a command with `--command-line="$VAR"`.
    fn through_kdump_config(file: &str) -> String {
        let script = "set -e; . \"$1\"; KEXEC_CMD=\"printf %s --command-line=\\\"$KDUMP_CMDLINE_APPEND\\\"\"; eval $KEXEC_CMD";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdump-tools");
        std::fs::write(&path, file).unwrap();
        let out = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .strip_prefix("--command-line=")
            .unwrap()
            .to_owned()
    }

    /// kdump-utils: source, use as is.
    fn through_kdumpctl(file: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdump");
        std::fs::write(&path, file).unwrap();
        let out = Command::new("sh")
            .args([
                "-c",
                ". \"$1\"; printf %s \"$KDUMP_COMMANDLINE_APPEND\"",
                "sh",
            ])
            .arg(&path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn kdump_tools_value_survives_source_and_eval() {
        let debian =
            "# Defaults for kdump-tools\nUSE_KDUMP=1\n#KDUMP_CMDLINE_APPEND=\"reset_devices\"\n";
        let unset = read(Flavor::KdumpTools, debian).unwrap();
        assert_eq!(unset.line, None);
        assert_eq!(unset.effective, Flavor::KdumpTools.default_append());

        let edited = write(Flavor::KdumpTools, debian, WANT).unwrap();
        assert!(
            edited.starts_with(debian),
            "the rest of the file is untouched"
        );
        assert_eq!(through_kdump_config(&edited), WANT);
        let back = read(Flavor::KdumpTools, &edited).unwrap();
        assert_eq!(back.effective, WANT);
        assert_eq!(back.line, Some(5));
        // Replacing keeps one assignment.
        let again = write(Flavor::KdumpTools, &edited, "nr_cpus=1").unwrap();
        assert_eq!(again.matches("KDUMP_CMDLINE_APPEND=").count(), 2, "{again}");
        assert_eq!(through_kdump_config(&again), "nr_cpus=1");
    }

    #[test]
    fn kdump_utils_value_is_used_as_is() {
        let fedora =
            "KDUMP_COMMANDLINE_APPEND=\"irqpoll nr_cpus=1 reset_devices\"\nKEXEC_ARGS=\"-s\"\n";
        let current = read(Flavor::KdumpUtils, fedora).unwrap();
        assert_eq!(
            (current.line, current.effective.as_str()),
            (Some(1), "irqpoll nr_cpus=1 reset_devices")
        );
        let edited = write(Flavor::KdumpUtils, fedora, WANT).unwrap();
        assert_eq!(through_kdumpctl(&edited), WANT);
        assert!(edited.ends_with("KEXEC_ARGS=\"-s\"\n"));
    }

    #[test]
    fn existing_escaped_values_read_back_as_kdump_config_sees_them() {
        let file = "KDUMP_CMDLINE_APPEND=\"nr_cpus=1 kprobe_event=p:x/y,f,a=\\\\\\$arg1\" # mine\n";
        let read = read(Flavor::KdumpTools, file).unwrap();
        assert_eq!(read.effective, through_kdump_config(file));
    }

    #[test]
    fn shell_expansions_are_refused_with_the_line() {
        let file = "USE_KDUMP=1\nKDUMP_CMDLINE_APPEND=\"$(cat /etc/extra) nr_cpus=1\"\n";
        let err = read(Flavor::KdumpTools, file).unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        let unescaped = "KDUMP_COMMANDLINE_APPEND=\"a=$HOME\"\n";
        assert!(read(Flavor::KdumpUtils, unescaped).is_err());
    }
}
