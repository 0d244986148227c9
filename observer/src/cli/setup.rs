//! `setup`: audit the kdump configuration; with --apply, add the boot-time instrumentation.
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Write the change (default: only show it).
    #[arg(long)]
    pub apply: bool,
    /// The kdump configuration file, if not the flavour's standard one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Which kdump implementation reads the file (default: the one whose file exists).
    #[arg(long, value_parser = ["kdump-tools", "kdump-utils"])]
    pub flavor: Option<String>,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    use observer::setup::{self, audit::Level, kdump_config::Flavor};
    let flavor = match args.flavor.as_deref() {
        Some("kdump-utils") => Flavor::KdumpUtils,
        Some(_) => Flavor::KdumpTools,
        None => Flavor::detect(std::path::Path::new("/")).ok_or(setup::SetupError::NotFound)?,
    };
    let path = args.config.clone().unwrap_or_else(|| flavor.path());
    let instrumentation = super::cmdline::instrumentation_plan()?;
    let system = setup::System {
        proc_cmdline: std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
        crash_size: std::fs::read_to_string("/sys/kernel/kexec_crash_size")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        measured_peak: setup::last_measured_peak(std::path::Path::new("/var/crash")),
    };
    let plan = setup::plan(flavor, &path, &instrumentation.cmdline, &system)?;
    println!("{} ({})", path.display(), flavor.variable());
    match plan.current.line {
        Some(n) => println!("  line {n}: {}", plan.current.effective),
        None => println!("  not set; the default is: {}", plan.current.effective),
    }
    for f in &plan.findings {
        println!("{:<5} {}", f.level.word(), f.text);
    }
    let warnings = if plan.findings.iter().any(|f| f.level == Level::Warn) {
        "warnings above"
    } else {
        "no warnings"
    };
    let Some(_) = &plan.new_text else {
        println!("ok    the boot-time instrumentation is already configured ({warnings})");
        return Ok(ExitCode::SUCCESS);
    };
    println!("change {} to:\n  {}", flavor.variable(), plan.wanted);
    if args.apply {
        let stamp = observer::utc::utc_stamp(std::time::SystemTime::now());
        if let Some(backup) = setup::apply(&plan, &stamp)? {
            println!("wrote {} (backup: {})", path.display(), backup.display());
        }
        println!("reload kdump to use it: {}", flavor.reload_hint());
    } else {
        println!("dry run: nothing written; run with --apply to make the change ({warnings})");
    }
    Ok(ExitCode::SUCCESS)
}
