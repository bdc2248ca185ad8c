//! What wgrec does to the paths it writes, through the binary: files are replaced only by a complete
//! new file (symlinks followed), devices, FIFOs and stdout are written to and never replaced, every
//! output is checked before any work (exit 2, naming flag and path, nothing touched), two outputs may
//! not be one file, and temp files never collide or linger. Cases that behave differently as root run
//! with device-node stand-ins (mknod) or a dropped uid (setpriv).

mod common;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-outputs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn wgrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(args)
        .env("WGREC_DATA_DIR", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A stand-in for /dev/null or /dev/full in `dir` (mknod as root; the real node otherwise, which a
/// non-root process could not replace even if it tried).
fn char_device(dir: &Path, name: &str, minor: u32) -> PathBuf {
    if is_root() {
        let p = dir.join(name);
        let ok = Command::new("mknod")
            .arg(&p)
            .args(["c", "1", &minor.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mknod {} failed as root", p.display());
        p
    } else {
        PathBuf::from(format!("/dev/{name}"))
    }
}

fn is_char_device(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_char_device()
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Asserts a refusal before any work: exit 2, one `error:` line containing every one of `what`.
#[track_caller]
fn refused(args: &[&str], what: &[&str]) -> Duration {
    let t = Instant::now();
    let o = wgrec(args);
    let elapsed = t.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{args:?}: {err}"
    );
    for w in what {
        assert!(err.contains(w), "{args:?}: expected {w:?} in {err}");
    }
    assert!(!err.contains("Os {"), "Rust debug output in {err}");
    elapsed
}

/// A joint model trained for one epoch on the built-in sample, shared by the tests (None: no adapter).
fn model() -> Option<&'static Path> {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    common::gpu()?;
    Some(MODEL.get_or_init(|| {
        let dir = scratch("model");
        let path = dir.join("joint.safetensors");
        let o = wgrec(&[
            "train",
            "--dataset",
            "sample",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
            "--epochs",
            "1",
            "--quiet",
            "--save",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        path
    }))
}

/// `wgrec recommend --model MODEL --all-users --out OUT -q`.
fn recommend_all(model: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .arg("recommend")
        .arg("--model")
        .arg(model)
        .args(["--all-users", "--out"])
        .arg(out)
        .arg("-q")
        .env("WGREC_DATA_DIR", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const TRAIN: [&str; 8] = [
    "train",
    "--dataset",
    "sample",
    "--rating-weight",
    "1",
    "--retrieval-weight",
    "1",
    "--quiet",
];

fn train_with(extra: &[&str]) -> Vec<String> {
    TRAIN
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn recommend_writes_the_csv_to_stdout_through_dev_stdout_and_dash() {
    let Some(m) = model() else { return };
    let m = m.to_str().unwrap();
    for out in ["/dev/stdout", "-"] {
        let o = recommend_all(Path::new(m), Path::new(out));
        assert!(o.status.success(), "{out}: {}", stderr(&o));
        let csv = String::from_utf8(o.stdout).unwrap();
        assert!(
            csv.starts_with("user,rank,title,score\n"),
            "{out}: {csv:.200}"
        );
        assert_eq!(
            csv.lines().count(),
            1 + 500 * 10,
            "{out}: every user's top 10"
        );
    }
    assert!(fs::symlink_metadata("/dev/stdout")
        .unwrap()
        .file_type()
        .is_symlink());
    // A reader that goes away early (`| head -1`) is not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(["recommend", "--model", m, "--all-users", "--out", "-", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn devices_and_fifos_are_written_never_replaced() {
    let Some(m) = model() else { return };
    let m = m.to_str().unwrap();
    let dir = scratch("devices");
    let null = char_device(&dir, "null", 3);
    let full = char_device(&dir, "full", 7);
    let o = recommend_all(Path::new(m), &null);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        is_char_device(&null),
        "{} is still a device",
        null.display()
    );
    // A full device is an error, not a silent success, and it stays a device.
    let o = recommend_all(Path::new(m), &full);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert!(is_char_device(&full));
    // A FIFO gets the bytes, read by another process.
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    let o = recommend_all(Path::new(m), &fifo);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(reader.join().unwrap().starts_with("user,rank,title,score"));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // Training outputs too: the metrics JSON and the checkpoint to devices.
    let v = train_with(&[
        "--epochs",
        "1",
        "--metrics-out",
        null.to_str().unwrap(),
        "--save",
        null.to_str().unwrap(),
    ]);
    let o = wgrec(&args(&v));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_char_device(&null));
    let v = train_with(&["--epochs", "1", "--save", full.to_str().unwrap()]);
    let o = wgrec(&args(&v));
    assert_eq!(o.status.code(), Some(2), "--save to a full device fails");
    assert!(is_char_device(&full));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlinked_target_keeps_its_link_and_gets_the_new_file() {
    let Some(m) = model() else { return };
    let dir = scratch("symlink");
    let real = dir.join("real.csv");
    fs::write(&real, "stale").unwrap();
    let link = dir.join("link.csv");
    symlink("real.csv", &link).unwrap();
    let o = recommend_all(Path::new(m), &link);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real)
        .unwrap()
        .starts_with("user,rank,title,score"));
    assert_eq!(names(&dir), ["link.csv", "real.csv"], "no temp file left");
    // The same through --save: the checkpoint lands in the link's target.
    let ck = dir.join("model.safetensors");
    fs::write(&ck, "stale").unwrap();
    let ck_link = dir.join("latest.safetensors");
    symlink(&ck, &ck_link).unwrap();
    let v = train_with(&["--epochs", "1", "--save", ck_link.to_str().unwrap()]);
    let o = wgrec(&args(&v));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::symlink_metadata(&ck_link)
        .unwrap()
        .file_type()
        .is_symlink());
    wgrec::checkpoint::Checkpoint::load(&ck).expect("the link's target holds the new model");
    fs::remove_dir_all(&dir).unwrap();
}

/// Every output is checked when the command starts: these fail at once (before data is loaded: the
/// data directory does not exist either), name the flag and the path, and leave the existing
/// checkpoint alone.
#[test]
fn outputs_are_checked_before_any_work() {
    let dir = scratch("early");
    let keep = dir.join("keep.safetensors");
    fs::write(&keep, "precious").unwrap();
    let k = keep.to_str().unwrap();
    let missing = dir.join("missing-dir/m.json");
    let m = missing.to_str().unwrap();
    let file = dir.join("a-file");
    fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "train",
            "--data-dir",
            "/nonexistent",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            train(&["--save", k, "--metrics-out", m]),
            vec!["--metrics-out", m, "does not exist"],
        ),
        (
            train(&["--save", k, "--plot", m]),
            vec!["--plot", m, "does not exist"],
        ),
        (
            train(&["--save", k, "--trace", m]),
            vec!["--trace", m, "does not exist"],
        ),
        (
            train(&["--save", k, "--metrics-out", d]),
            vec!["--metrics-out", "is a directory"],
        ),
        (train(&["--save", d]), vec!["--save", "is a directory"]),
        (
            ["sweep", "--data-dir", "/nonexistent", "--out", f]
                .map(String::from)
                .to_vec(),
            vec!["--out", f, "not a directory"],
        ),
        (
            ["bench", "--out", m].map(String::from).to_vec(),
            vec!["--out", m, "does not exist"],
        ),
        (
            ["tutorial", "--data-dir", "/nonexistent", "--metrics-out", m]
                .map(String::from)
                .to_vec(),
            vec!["--metrics-out", "does not exist"],
        ),
        (
            ["recipe", "--data-dir", "/nonexistent", "--plot", m]
                .map(String::from)
                .to_vec(),
            vec!["--plot", "does not exist"],
        ),
        (
            [
                "synth",
                "--users",
                "3",
                "--movies",
                "3",
                "--ratings",
                "9",
                "--out",
                f,
            ]
            .map(String::from)
            .to_vec(),
            vec!["--out", "not a directory"],
        ),
    ];
    for (v, what) in &cases {
        let t = refused(&args(v), what);
        assert!(t < Duration::from_secs(5), "{v:?} took {t:?}");
    }
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    assert_eq!(names(&dir), ["a-file", "keep.safetensors"]);
    fs::remove_dir_all(&dir).unwrap();
}

/// A directory the process cannot write to (root ignores permissions, so as root the command runs with
/// a dropped uid) fails before training.
#[test]
fn an_unwritable_directory_fails_before_training() {
    let dir = scratch("readonly");
    let ro = dir.join("ro");
    fs::create_dir(&ro).unwrap();
    let target = ro.join("m.safetensors");
    let mut cmd;
    if is_root() {
        // Owned by root, mode 755: nobody (65534) may not create files in it.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        cmd.arg(env!("CARGO_BIN_EXE_wgrec"));
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        cmd = Command::new(env!("CARGO_BIN_EXE_wgrec"));
    }
    let o = cmd
        .args(train_with(&["--save", target.to_str().unwrap()]))
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--save") && err.contains("cannot write in directory"),
        "{err}"
    );
    assert!(!err.contains("data:"), "failed before loading data: {err}");
    assert!(names(&ro).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_outputs_may_not_be_one_file() {
    let dir = scratch("same");
    let x = dir.join("x");
    let link = dir.join("link");
    symlink(&x, &link).unwrap();
    let (x, l) = (x.to_str().unwrap(), link.to_str().unwrap());
    for v in [
        train_with(&["--save", x, "--metrics-out", x]),
        train_with(&["--save", x, "--plot", l]),
        train_with(&["--metrics-out", "-", "--trace", "-"]),
    ] {
        refused(&args(&v), &["the same file"]);
    }
    assert_eq!(names(&dir), ["link"]);
    fs::remove_dir_all(&dir).unwrap();
}

/// Temp names are unique and never an existing file: an unrelated `m.json.tmp` (the old fixed name)
/// survives, a failed write leaves no temp, and a dead process's temp is cleaned up.
#[test]
fn temp_files_never_collide_or_linger() {
    let Some(m) = model() else { return };
    let dir = scratch("temps");
    let unrelated = dir.join("m.json.tmp");
    fs::write(&unrelated, "someone else's").unwrap();
    let stale = dir.join(".m.txt.tmp-4194304-0");
    fs::write(&stale, "left by a killed run").unwrap();
    let out = dir.join("m.txt");
    let o = recommend_all(Path::new(m), &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&unrelated).unwrap(), "someone else's");
    assert_eq!(names(&dir), ["m.json.tmp", "m.txt"]);
    // Two processes writing one path at once: both succeed, the result is one whole file.
    let run = || recommend_all(m, &out);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(run);
        let b = s.spawn(run);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    assert_eq!(fs::read_to_string(&out).unwrap().lines().count(), 1 + 5000);
    assert_eq!(names(&dir), ["m.json.tmp", "m.txt"]);
    fs::remove_dir_all(&dir).unwrap();
}

/// When one of several outputs fails at the end, none is replaced: the metrics JSON to a full device
/// fails, and the checkpoint beside it keeps its old content.
#[test]
fn a_failing_output_leaves_the_others_as_they_were() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("all-or-none");
    let full = char_device(&dir, "full", 7);
    let keep = dir.join("keep.safetensors");
    fs::write(&keep, "precious").unwrap();
    let v = train_with(&[
        "--epochs",
        "1",
        "--save",
        keep.to_str().unwrap(),
        "--metrics-out",
        full.to_str().unwrap(),
    ]);
    let o = wgrec(&args(&v));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("No space left on device"));
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    let mut left = names(&dir);
    left.retain(|n| n != "full");
    assert_eq!(left, ["keep.safetensors"], "no temp file left");
    fs::remove_dir_all(&dir).unwrap();
}

/// Model files are inputs like data files: a FIFO or /dev/zero is refused at once (no hang, no
/// unbounded read), and so is a directory.
#[test]
fn model_files_must_be_regular_files() {
    let dir = scratch("models");
    let fifo = dir.join("fifo.safetensors");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let d = dir.to_str().unwrap();
    for model in [fifo.to_str().unwrap(), "/dev/zero", d] {
        for v in [
            vec!["recommend", "--model", model, "--user", "1"],
            vec!["predict", "--model", model, "--user", "1", "--movie", "x"],
        ] {
            let t = refused(&v, &[model]);
            assert!(t < Duration::from_secs(5), "{v:?} took {t:?}");
        }
    }
    refused(
        &["recommend", "--model", "/dev/zero", "--user", "1"],
        &["not a regular file"],
    );
    fs::remove_dir_all(&dir).unwrap();
}
