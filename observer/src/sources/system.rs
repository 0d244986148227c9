//! The `system_identity` event: who the machine is, collected once when `run` starts.
use std::path::Path;

use crate::{
    clock::monotonic_ns,
    event::{Detail, Event, Source},
    system::{self, Roots},
};

/// Collects the identity under `/` (with `vmcore` for the crashed kernel) as one event. Parts
/// that cannot be read are logged, one warning each, and listed in the event's `status`.
#[must_use]
pub fn identity_event(root: &Path, vmcore: &Path) -> Event {
    let id = system::collect(&Roots { root, vmcore });
    for line in &id.status {
        tracing::info!(status = %line, "system identity: part not available");
    }
    tracing::info!(
        machine = %id.machine().unwrap_or_else(|| "unknown".into()),
        cpu = %id.cpu.as_ref().map_or("unknown", |c| c.name.as_str()),
        crashed_kernel = %id.crashed_kernel.as_ref().map_or("unknown", |k| k.release.as_str()),
        "system identity"
    );
    Event::new(
        monotonic_ns(),
        Source::Observer,
        Detail::SystemIdentity(Box::new(id)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_round_trips_through_the_timeline_json() {
        let dir = tempfile::tempdir().unwrap();
        let dmi = dir.path().join("sys/class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::write(dmi.join("product_name"), "KVM Virtual Machine\n").unwrap();
        // The identity's CPU must not collide with the event's own `cpu` field.
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/cpuinfo"),
            "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n",
        )
        .unwrap();
        let e = identity_event(dir.path(), &dir.path().join("vmcore"));
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains("\"kind\":\"system_identity\""), "{line}");
        assert!(line.contains("\"sys_vendor\":\"QEMU\""), "{line}");
        assert!(
            line.contains("\"processor\":{\"midr\":\"0x410fd0c0\""),
            "{line}"
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
        let Detail::SystemIdentity(id) = back.detail else {
            panic!("kind")
        };
        assert_eq!(id.machine().as_deref(), Some("QEMU KVM Virtual Machine"));
        assert!(id.status.iter().any(|s| s.starts_with("crashed kernel:")));
    }
}
