//! `cargo xtask setup`: install what is missing, and only that.
use std::{path::Path, process::Command};

use crate::{
    cmd::{self, output},
    toolchain::{self, AARCH64_MUSL, BPF_LINKER_VERSION, X86_64_MUSL},
};

#[derive(clap::Args)]
pub(crate) struct SetupArgs {
    /// Also set up the QEMU lab on this host (Debian 12, root): an apt source for
    /// bookworm-backports, the arm64 dpkg architecture, qemu-system-arm and qemu-system-x86
    /// >= 10, depmod (kmod).
    #[arg(long)]
    pub lab: bool,
}

/// `cargo xtask setup [--lab]`.
pub(crate) fn run_with(root: &Path, args: &SetupArgs) -> anyhow::Result<()> {
    run(root)?;
    if args.lab {
        lab()?;
    }
    Ok(())
}

/// The lab part: host packages for `cargo xtask lab` (see `lab::host`).
pub(crate) fn lab() -> anyhow::Result<()> {
    crate::lab::host::setup()
}

/// The build part: toolchains, targets, bpf-linker.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let stable = toolchain::userspace(root)?;
    let nightly = toolchain::ebpf(root)?;
    let mut actions = Vec::new();

    if !toolchain_installed(&stable) {
        install(
            root,
            &mut actions,
            format!("toolchain {stable}"),
            Command::new("rustup").args([
                "toolchain",
                "install",
                &stable,
                "--profile",
                "minimal",
                "-c",
                "clippy,rustfmt",
            ]),
        )?;
    }
    for component in ["clippy", "rustfmt"] {
        if !installed(&stable, "component", component) {
            install(
                root,
                &mut actions,
                format!("{component} for {stable}"),
                Command::new("rustup").args([
                    "component",
                    "add",
                    component,
                    "--toolchain",
                    &stable,
                ]),
            )?;
        }
    }
    for target in [AARCH64_MUSL, X86_64_MUSL] {
        if !installed(&stable, "target", target) {
            install(
                root,
                &mut actions,
                format!("target {target} for {stable}"),
                Command::new("rustup").args(["target", "add", target, "--toolchain", &stable]),
            )?;
        }
    }
    if !toolchain_installed(&nightly) {
        install(
            root,
            &mut actions,
            format!("toolchain {nightly}"),
            Command::new("rustup").args(["toolchain", "install", &nightly, "--profile", "minimal"]),
        )?;
    }
    for component in ["rust-src", "clippy"] {
        if !installed(&nightly, "component", component) {
            install(
                root,
                &mut actions,
                format!("{component} for {nightly}"),
                Command::new("rustup").args([
                    "component",
                    "add",
                    component,
                    "--toolchain",
                    &nightly,
                ]),
            )?;
        }
    }
    let linker = output(Command::new("bpf-linker").arg("--version"));
    let wanted = format!("bpf-linker {BPF_LINKER_VERSION}");
    if linker.as_deref().map(str::trim) != Some(wanted.as_str()) {
        let found = linker.map_or_else(|| "none".to_owned(), |v| v.trim().to_owned());
        install(
            root,
            &mut actions,
            format!("{wanted} (found: {found})"),
            Command::new("cargo").args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
            ]),
        )?;
    }

    if actions.is_empty() {
        eprintln!(
            "setup: everything present ({stable} + {AARCH64_MUSL} + {X86_64_MUSL}, {nightly} + rust-src, {wanted})"
        );
    } else {
        eprintln!("setup: installed {}", actions.join("; "));
    }
    Ok(())
}

fn install(
    root: &Path,
    actions: &mut Vec<String>,
    what: String,
    cmd: &mut Command,
) -> anyhow::Result<()> {
    eprintln!("setup: installing {what}");
    cmd::run(root, cmd)?;
    actions.push(what);
    Ok(())
}

fn toolchain_installed(name: &str) -> bool {
    output(Command::new("rustup").args(["toolchain", "list"])).is_some_and(|list| {
        list.lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|t| t == name || t.starts_with(&format!("{name}-")))
    })
}

/// Whether `rustup <kind> list --installed` for `toolchain` includes `name`.
fn installed(toolchain: &str, kind: &str, name: &str) -> bool {
    output(Command::new("rustup").args([kind, "list", "--installed", "--toolchain", toolchain]))
        .is_some_and(|list| {
            list.lines()
                .any(|l| l.trim() == name || l.trim().starts_with(&format!("{name}-")))
        })
}
