//! Skips that show: a test that cannot run (no adapter, no data) calls [`skip`], which fails in CI and
//! elsewhere appends a line to `$WGREC_SKIP_LOG`; scripts/test.sh prints those lines last, because libtest
//! reports a test that returned early as `ok`. Shared by the integration tests and the library's unit tests
//! (which include this file by path).
#![allow(dead_code)]

use std::io::Write;

/// The variable naming the file skips are appended to.
pub const SKIP_LOG: &str = "WGREC_SKIP_LOG";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `binary::test`: libtest runs each test on a thread named after it.
pub fn test_name() -> String {
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash)) if hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_owned(),
            _ => s,
        })
        .unwrap_or_else(|| "?".into());
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    format!("{binary}::{test}")
}

/// Marks the running test as skipped for `reason`: a panic in CI (a skip there means the CI setup is
/// broken), else a line on stderr and one in `$WGREC_SKIP_LOG` (`name<TAB>reason`).
#[track_caller]
pub fn skip(reason: &str) {
    if in_ci() {
        panic!("CI=true, so this is a failure, not a skip: {reason}");
    }
    let name = test_name();
    eprintln!("skipped {name}: {reason}");
    let Some(path) = std::env::var_os(SKIP_LOG).filter(|p| !p.is_empty()) else {
        return;
    };
    // One short append per line: concurrent tests do not interleave within a line.
    let line = format!("{name}\t{}\n", reason.replace(['\n', '\t'], " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("recording the skip in {}: {e}", path.to_string_lossy());
    }
}
