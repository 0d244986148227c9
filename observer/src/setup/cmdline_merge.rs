//! Merging the boot-time instrumentation into an existing capture-kernel command line without
//! disturbing anything else on it.
//!
//! Parameters this tool manages are replaced in place; `kprobe_event=` keeps every probe
//! outside the tool's `kdo` group and `trace_event=` keeps every other event; everything else
//! is left as it is, in its order.
use crate::kernel::boot_instrumentation::GROUP;

/// Parameters whose value `setup` owns.
const MANAGED: &[&str] = &[
    "kprobe_event",
    "trace_event",
    "trace_clock",
    "trace_buf_size",
    "printk.devkmsg",
    "ftrace_dump_on_oops",
    crate::probes::name_check::PARAM,
];

fn key(token: &str) -> &str {
    token.split_once('=').map_or(token, |(k, _)| k)
}

fn value(token: &str) -> &str {
    token.split_once('=').map_or("", |(_, v)| v)
}

/// `existing` with `ours` merged in (both space-separated parameter lists).
#[must_use]
pub fn merge(existing: &str, ours: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut pending: Vec<&str> = ours.split_whitespace().collect();
    for token in existing.split_whitespace() {
        let k = key(token);
        if !MANAGED.contains(&k) {
            out.push(token.to_owned());
            continue;
        }
        let Some(at) = pending.iter().position(|t| key(t) == k) else {
            // A managed parameter we no longer emit: keep what is not ours.
            if let Some(kept) = combine(k, value(token), "") {
                out.push(kept);
            }
            continue;
        };
        let mine = pending.remove(at);
        if !mine.contains('=') {
            // A flag (`ftrace_dump_on_oops`).
            out.push(mine.to_owned());
        } else if let Some(combined) = combine(k, value(token), value(mine)) {
            out.push(combined);
        }
    }
    out.extend(pending.into_iter().map(str::to_owned));
    out.join(" ")
}

/// The merged token for `key` from the existing value and ours (`None`: nothing left).
fn combine(key: &str, existing: &str, ours: &str) -> Option<String> {
    let joined = match key {
        "kprobe_event" => {
            let mut defs: Vec<&str> = existing
                .split(';')
                .filter(|d| !d.is_empty() && !is_ours(d))
                .collect();
            defs.extend(ours.split(';').filter(|d| !d.is_empty()));
            defs.join(";")
        }
        "trace_event" => {
            let mut events: Vec<&str> = existing.split(',').filter(|e| !e.is_empty()).collect();
            for e in ours.split(',').filter(|e| !e.is_empty()) {
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            events.join(",")
        }
        _ if ours.is_empty() => return None,
        _ => ours.to_owned(),
    };
    if joined.is_empty() {
        return None;
    }
    Some(format!("{key}={joined}"))
}

/// `p:kdo/<event>,...` (or `p:kdo/<event> ...`).
fn is_ours(def: &str) -> bool {
    def.split_once(':')
        .is_some_and(|(_, rest)| rest.starts_with(&format!("{GROUP}/")))
}

/// Whether every parameter of `ours` is already in `existing` with the same effect.
#[must_use]
pub fn contains(existing: &str, ours: &str) -> bool {
    merge(existing, ours) == existing.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "kprobe_event=p:kdo/kdo_sea,do_sea,far=$arg1:x64 trace_event=ras:aer_event \
                        trace_clock=mono printk.devkmsg=on ftrace_dump_on_oops";

    #[test]
    fn appends_to_a_default_command_line_and_keeps_its_order() {
        let debian = "reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll";
        assert_eq!(merge(debian, OURS), format!("{debian} {OURS}"));
    }

    #[test]
    fn is_idempotent() {
        let once = merge("nr_cpus=1", OURS);
        assert_eq!(merge(&once, OURS), once);
        assert!(contains(&once, OURS));
        assert!(!contains("nr_cpus=1", OURS));
    }

    #[test]
    fn keeps_foreign_probes_and_events_and_replaces_stale_own_ones() {
        let existing = "kprobe_event=p:mine/x,foo;p:kdo/kdo_old,bar trace_event=sched:sched_switch \
                        trace_clock=global nr_cpus=1";
        let merged = merge(existing, OURS);
        assert_eq!(
            merged,
            "kprobe_event=p:mine/x,foo;p:kdo/kdo_sea,do_sea,far=$arg1:x64 \
             trace_event=sched:sched_switch,ras:aer_event trace_clock=mono nr_cpus=1 \
             printk.devkmsg=on ftrace_dump_on_oops"
        );
    }

    #[test]
    fn a_stale_managed_parameter_we_dropped_is_removed() {
        assert_eq!(
            merge("trace_buf_size=1M nr_cpus=1", "trace_clock=mono"),
            "nr_cpus=1 trace_clock=mono"
        );
    }
}
