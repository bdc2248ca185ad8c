//! Feedback while a person waits: progress bars, spinners and the notes that go with them. One switch for
//! the whole process: the binary turns it on unless `--quiet`; the library alone (tests, other programs)
//! stays silent. Bars and spinners are drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static ON: AtomicBool = AtomicBool::new(false);

/// Shows progress and notes from here on (the binary calls this once, unless `--quiet`).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether notes are printed: progress was enabled.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether bars are drawn: enabled, and stderr is a terminal (a log file gets no carriage returns).
pub fn drawn() -> bool {
    enabled() && std::io::stderr().is_terminal()
}

/// A note on stderr, when enabled.
pub fn note(msg: impl AsRef<str>) {
    if enabled() {
        eprintln!("{}", msg.as_ref());
    }
}

fn target() -> ProgressDrawTarget {
    if drawn() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

/// A bar over `len` steps, e.g. the batches of an epoch or the runs of a sweep.
pub fn bar(len: u64, prefix: impl Into<Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(style(
        "{prefix} {pos:>3}/{len} [{bar:30}] {elapsed_precise} {msg}",
    ));
    bar.set_prefix(prefix);
    bar
}

/// A bar over bytes (a download); a spinner with the byte count when the length is unknown.
pub fn bytes(len: Option<u64>, msg: impl Into<Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, target());
    bar.set_style(match len {
        Some(_) => style("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"),
        None => style("{spinner} {msg} {bytes} {bytes_per_sec}"),
    });
    bar.set_message(msg);
    bar
}

/// A spinner for a step of unknown length; cleared when dropped (the step's own log line says how it went).
pub fn spinner(msg: impl Into<Cow<'static, str>>) -> Spinner {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(style("{spinner} {msg} {elapsed}"));
    bar.set_message(msg);
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    Spinner(bar)
}

/// A spinning [`spinner`]; clears itself when dropped.
pub struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_unless_enabled() {
        // Tests never call enable(): every bar is hidden, whatever stderr is.
        assert!(!drawn());
        assert!(bar(3, "x").is_hidden());
        assert!(bytes(None, "x").is_hidden());
        assert!(spinner("x").0.is_hidden());
    }
}
