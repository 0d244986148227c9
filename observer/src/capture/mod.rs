//! The capture lifecycle (`run --dump-dir`, and `recover` on the next boot): where a
//! capture-kernel daemon writes, when it stops, how its files reach the dump, and how each
//! capture becomes a report. This room only wires lower ones together (run, report, sinks);
//! nothing below imports it. The dump tools' file names are [`crate::dump_files`], below this
//! room, because `report` reads a capture directory too.
//!
//! - [`live_dir`]: the daemon's own directory under the dump directory, and the hand-off.
//! - [`lifecycle`]: one capture-kernel run from start to report.
//! - [`recover`]: every capture not reported yet, on the production boot after a crash.
pub mod lifecycle;
pub mod live_dir;
pub mod recover;
