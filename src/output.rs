//! Every file wgrec writes goes through here. An output is checked when its command starts (before data
//! is loaded or a model trained); a regular file or a new path is written to a uniquely named temp file
//! beside it, synced and renamed over it (a symlink is followed and its target replaced); a character
//! device, a FIFO or `-` (stdout) is written to directly, never renamed over. The outputs of one command
//! are staged first and committed together, so a failure leaves every output as it was.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A checked output of a command: the flag that named it, the path as given and where bytes will go.
#[derive(Clone, Debug)]
pub struct Output {
    flag: String,
    shown: PathBuf,
    dest: Dest,
    /// A directory to create (with its missing parents) before the file is staged.
    mkdir: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
enum Dest {
    Stdout,
    /// A character device or FIFO (or a link into /proc, such as /dev/stdout): opened and written.
    Stream(PathBuf),
    /// A regular file, or a path that does not exist yet: replaced through a temp file and a rename.
    File(PathBuf),
}

/// How many symlinks are followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Output {
    /// Checks `path`, given with `flag`: `-` is stdout; a symlink is followed; a character device or
    /// FIFO is written directly; otherwise the file's directory must exist and be writable, and the path
    /// must not be a directory. Errors name the flag and the path.
    pub fn check(flag: &str, path: &Path) -> Result<Self> {
        let out = Self {
            flag: flag.to_string(),
            shown: path.to_path_buf(),
            dest: resolve(path).map_err(|e| anyhow!("{flag} {}: {e}", path.display()))?,
            mkdir: None,
        };
        if let Dest::File(p) = &out.dest {
            let dir = parent(p);
            match fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!(
                    "{flag} {}: {} is not a directory",
                    path.display(),
                    dir.display()
                ),
                Err(_) => bail!(
                    "{flag} {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            }
            probe_writable(dir).map_err(|e| {
                anyhow!(
                    "{flag} {}: cannot write in directory {}: {e}",
                    path.display(),
                    dir.display()
                )
            })?;
        }
        Ok(out)
    }

    /// `check` of an optional flag.
    pub fn check_opt(flag: &str, path: Option<&Path>) -> Result<Option<Self>> {
        path.map(|p| Self::check(flag, p)).transpose()
    }

    /// Checks the file `name` in the output directory `dir` (given with `flag`): `dir` may be missing,
    /// and is then created (with its parents) when the file is staged; an existing `dir` must be a
    /// directory.
    pub fn check_in_dir(flag: &str, dir: &Path, name: &str) -> Result<Self> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => Self::check(flag, &dir.join(name)),
            Ok(_) => bail!("{flag} {}: it exists and is not a directory", dir.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut anc = parent(dir);
                while !anc.exists() {
                    anc = parent(anc);
                }
                if !anc.is_dir() {
                    bail!(
                        "{flag} {}: {} is not a directory",
                        dir.display(),
                        anc.display()
                    );
                }
                probe_writable(anc).map_err(|e| {
                    anyhow!(
                        "{flag} {}: cannot create it in {}: {e}",
                        dir.display(),
                        anc.display()
                    )
                })?;
                Ok(Self {
                    flag: flag.to_string(),
                    shown: dir.join(name),
                    dest: Dest::File(dir.join(name)),
                    mkdir: Some(dir.to_path_buf()),
                })
            }
            Err(e) => bail!("{flag} {}: {e}", dir.display()),
        }
    }

    /// The path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Writes `bytes` now (stage and commit).
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        self.stage(bytes)?.commit()
    }

    /// Prepares `bytes` for the output without touching it: a synced temp file beside a file target,
    /// the bytes themselves for a stream.
    pub fn stage(&self, bytes: &[u8]) -> Result<Staged> {
        self.stage_with(|w| w.write_all(bytes))
    }

    /// As `stage`, with the content streamed by `body`.
    pub fn stage_with(
        &self,
        body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Staged> {
        let what = || format!("{} {}", self.flag, self.shown.display());
        match &self.dest {
            Dest::Stdout | Dest::Stream(_) => {
                let mut bytes = Vec::new();
                body(&mut bytes).with_context(what)?;
                Ok(Staged(Some(Pending::Stream {
                    dest: self.dest.clone(),
                    shown: self.shown.clone(),
                    bytes,
                })))
            }
            Dest::File(path) => {
                if let Some(dir) = &self.mkdir {
                    fs::create_dir_all(dir)
                        .with_context(|| format!("{}: creating {}", what(), dir.display()))?;
                }
                remove_stale_temps(path);
                let (tmp, file) = create_temp(path).with_context(what)?;
                // From here on the temp file is removed on every error path (Staged's Drop).
                let staged = Staged(Some(Pending::File {
                    tmp: tmp.clone(),
                    dest: path.clone(),
                }));
                if let Ok(m) = fs::metadata(path) {
                    // Keep the permissions of the file being replaced, as editors and `install` do.
                    let _ = file.set_permissions(m.permissions());
                }
                let mut w = BufWriter::with_capacity(1 << 20, file);
                let written = body(&mut w)
                    .and_then(|_| w.into_inner().map_err(|e| e.into_error()))
                    .and_then(|f| f.sync_all());
                written.with_context(|| format!("{}: writing {}", what(), tmp.display()))?;
                Ok(staged)
            }
        }
    }
}

/// Fails when two outputs are the same file (through symlinks and hard links too), or both stdout.
/// Character devices are exempt: writing /dev/null twice harms nothing.
pub fn distinct<'a>(outputs: impl IntoIterator<Item = &'a Output>) -> Result<()> {
    let outs: Vec<&Output> = outputs.into_iter().collect();
    let ids: Vec<Option<Identity>> = outs.iter().map(|o| identity(o)).collect();
    for i in 0..outs.len() {
        for j in 0..i {
            if let (Some(a), Some(b)) = (&ids[i], &ids[j]) {
                if a == b {
                    bail!(
                        "{} {} and {} {} are the same file: give each output its own path",
                        outs[j].flag,
                        outs[j].shown.display(),
                        outs[i].flag,
                        outs[i].shown.display()
                    );
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
enum Identity {
    Stdout,
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(o: &Output) -> Option<Identity> {
    match &o.dest {
        Dest::Stdout => Some(Identity::Stdout),
        Dest::Stream(p) => {
            let m = fs::metadata(p).ok()?;
            if is_char_device(&m) {
                return None;
            }
            inode(&m)
        }
        Dest::File(p) => match fs::metadata(p) {
            Ok(m) => inode(&m),
            Err(_) => {
                let dir = o.mkdir.as_deref().unwrap_or_else(|| parent(p));
                let name = p.file_name()?;
                // A missing directory cannot be canonicalised: compare it as given, made absolute.
                let dir = fs::canonicalize(dir).unwrap_or_else(|_| absolute(dir));
                Some(Identity::Path(dir.join(name)))
            }
        },
    }
}

#[cfg(unix)]
fn inode(m: &fs::Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity::Inode(m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> Option<Identity> {
    None
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// A staged output: committed with `commit`, discarded (its temp file removed) when dropped.
#[must_use = "a staged output is discarded unless committed"]
pub struct Staged(Option<Pending>);

enum Pending {
    File {
        tmp: PathBuf,
        dest: PathBuf,
    },
    Stream {
        dest: Dest,
        shown: PathBuf,
        bytes: Vec<u8>,
    },
}

impl Staged {
    /// Puts the staged content in place: renames the temp file over its target (then syncs the
    /// directory), or writes the bytes to the stream. A reader that went away (`| head`) is not an error.
    pub fn commit(mut self) -> Result<()> {
        match self.0.take().expect("committed once") {
            Pending::File { tmp, dest } => {
                if let Err(e) = fs::rename(&tmp, &dest) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e).with_context(|| {
                        format!("renaming {} to {}", tmp.display(), dest.display())
                    });
                }
                if let Ok(d) = File::open(parent(&dest)) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            Pending::Stream { dest, shown, bytes } => {
                let written = match &dest {
                    Dest::Stdout => {
                        let mut out = io::stdout().lock();
                        out.write_all(&bytes).and_then(|_| out.flush())
                    }
                    Dest::Stream(p) => OpenOptions::new()
                        .write(true)
                        .open(p)
                        .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.flush())),
                    Dest::File(_) => unreachable!("files are staged as temp files"),
                };
                match written {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    r => r.with_context(|| format!("writing {}", shown.display())),
                }
            }
        }
    }

    /// Whether committing writes to a stream (stdout, a device, a FIFO).
    fn is_stream(&self) -> bool {
        matches!(self.0, Some(Pending::Stream { .. }))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(Pending::File { tmp, .. }) = &self.0 {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The staged outputs of one command, committed together at its end: streams first (a full device is
/// the likeliest failure at this point, and then no file has been replaced yet), then the renames.
#[derive(Default)]
pub struct Commit(Vec<Staged>);

impl Commit {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, staged: Staged) {
        self.0.push(staged);
    }

    pub fn extend(&mut self, staged: impl IntoIterator<Item = Staged>) {
        self.0.extend(staged);
    }

    /// Stages `bytes` for `out` and keeps it for `finish`.
    pub fn stage(&mut self, out: &Output, bytes: &[u8]) -> Result<()> {
        self.add(out.stage(bytes)?);
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        let (streams, files): (Vec<Staged>, Vec<Staged>) =
            self.0.into_iter().partition(Staged::is_stream);
        streams
            .into_iter()
            .chain(files)
            .try_for_each(Staged::commit)
    }
}

/// Where the bytes for `path` go; errors are the problem alone (the caller adds flag and path).
fn resolve(path: &Path) -> Result<Dest> {
    if path.as_os_str() == "-" {
        return Ok(Dest::Stdout);
    }
    if path.as_os_str().is_empty() {
        bail!("an empty path");
    }
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Dest::File(p)),
            Err(e) => bail!("{e}"),
        };
        let t = m.file_type();
        if t.is_symlink() {
            let target = fs::read_link(&p)?;
            // /dev/stdout and /dev/fd/N lead into /proc's magic links, whose targets ("pipe:[…]")
            // are no paths: open the link itself.
            if target.starts_with("/proc") {
                return Ok(Dest::Stream(path.to_path_buf()));
            }
            p = if target.is_absolute() {
                target
            } else {
                parent(&p).join(target)
            };
            continue;
        }
        if t.is_dir() {
            bail!("it is a directory");
        }
        if t.is_file() {
            return Ok(Dest::File(p));
        }
        if is_char_device(&m) || is_fifo(&m) {
            return Ok(Dest::Stream(p));
        }
        bail!("not a regular file, character device or FIFO");
    }
    bail!("too many levels of symbolic links")
}

#[cfg(unix)]
fn is_char_device(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device()
}

#[cfg(unix)]
fn is_fifo(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_char_device(_: &fs::Metadata) -> bool {
    false
}

#[cfg(not(unix))]
fn is_fifo(_: &fs::Metadata) -> bool {
    false
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `.NAME.tmp-PID-N`: unique per process and write, so two processes (or two writes) never share one.
fn temp_name(dest: &Path, n: u64) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(dest).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Creates a new temp file beside `dest` (never opening an existing file).
fn create_temp(dest: &Path) -> io::Result<(PathBuf, File)> {
    loop {
        let tmp = temp_name(dest, TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Creating (and removing) a temp file is the only test of writability that sees read-only mounts,
/// ACLs and root alike.
fn probe_writable(dir: &Path) -> io::Result<()> {
    let (tmp, f) = create_temp(&dir.join("probe"))?;
    drop(f);
    fs::remove_file(tmp)
}

/// Removes `.NAME.tmp-PID[-N]` files beside `dest` whose process no longer runs (a write killed before
/// its rename). Only where /proc tells which processes run.
fn remove_stale_temps(dest: &Path) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent(dest)) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let regular = e.file_type().is_ok_and(|t| t.is_file());
        if regular && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wgrec-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_a_file_and_leaves_no_temp() {
        let d = tmp_dir("replace");
        let p = d.join("m.json");
        fs::write(&p, "old").unwrap();
        Output::check("--metrics-out", &p)
            .unwrap()
            .write(b"new")
            .unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinks_and_keeps_them() {
        let d = tmp_dir("link");
        fs::write(d.join("real.csv"), "old").unwrap();
        std::os::unix::fs::symlink("real.csv", d.join("link.csv")).unwrap();
        std::os::unix::fs::symlink("link.csv", d.join("link2.csv")).unwrap();
        let out = Output::check("--out", &d.join("link2.csv")).unwrap();
        out.write(b"new").unwrap();
        assert!(fs::symlink_metadata(d.join("link2.csv"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(d.join("link.csv"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(d.join("real.csv")).unwrap(), "new");
        // A dangling link creates its target.
        std::os::unix::fs::symlink("new.csv", d.join("dangling.csv")).unwrap();
        Output::check("--out", &d.join("dangling.csv"))
            .unwrap()
            .write(b"x")
            .unwrap();
        assert_eq!(fs::read_to_string(d.join("new.csv")).unwrap(), "x");
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("loop-b", d.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", d.join("loop-b")).unwrap();
        let err = Output::check("--out", &d.join("loop-a")).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic links"), "{err:#}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_directories_and_missing_directories_naming_the_flag() {
        let d = tmp_dir("dirs");
        let err = format!("{:#}", Output::check("--save", &d).unwrap_err());
        assert!(
            err.starts_with("--save ") && err.contains("is a directory"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Output::check("--metrics-out", &d.join("missing/m.json")).unwrap_err()
        );
        assert!(
            err.contains("--metrics-out") && err.contains("does not exist"),
            "{err}"
        );
        fs::write(d.join("file"), "").unwrap();
        let err = format!(
            "{:#}",
            Output::check_in_dir("--out", &d.join("file"), "results.csv").unwrap_err()
        );
        assert!(err.contains("not a directory"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_output_directory_is_created_when_staged() {
        let d = tmp_dir("mkdir");
        let out = Output::check_in_dir("--out", &d.join("a/b"), "results.csv").unwrap();
        assert!(!d.join("a").exists(), "checking creates nothing");
        out.write(b"r").unwrap();
        assert_eq!(fs::read_to_string(d.join("a/b/results.csv")).unwrap(), "r");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_dropped_stage_leaves_the_target_and_no_temp() {
        let d = tmp_dir("drop");
        let p = d.join("x.safetensors");
        fs::write(&p, "good").unwrap();
        let out = Output::check("--save", &p).unwrap();
        let staged = out.stage(b"new").unwrap();
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            2,
            "a temp file beside it"
        );
        drop(staged);
        let failed = out.stage_with(|w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(format!("{:#}", failed.err().unwrap()).contains("disk on fire"));
        assert_eq!(fs::read_to_string(&p).unwrap(), "good");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn same_file_twice_is_refused() {
        let d = tmp_dir("same");
        let a = Output::check("--save", &d.join("x")).unwrap();
        let b = Output::check("--metrics-out", &d.join("./x")).unwrap();
        let err = format!("{:#}", distinct([&a, &b]).unwrap_err());
        assert!(
            err.contains("--save") && err.contains("--metrics-out"),
            "{err}"
        );
        let c = Output::check("--plot", &d.join("y")).unwrap();
        distinct([&a, &c]).unwrap();
        let o1 = Output::check("--out", Path::new("-")).unwrap();
        let o2 = Output::check("--metrics-out", Path::new("-")).unwrap();
        assert!(distinct([&o1, &o2]).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let d = tmp_dir("stale");
        let p = d.join("m.json");
        // PID 4194304 is above Linux's largest pid_max, so no process has it.
        let stale = d.join(".m.json.tmp-4194304-0");
        let mine = d.join(format!(".m.json.tmp-{}-999999", std::process::id()));
        let other = d.join(".other.json.tmp-4194304-0");
        for f in [&stale, &mine, &other] {
            fs::write(f, "").unwrap();
        }
        Output::check("--metrics-out", &p)
            .unwrap()
            .write(b"{}")
            .unwrap();
        assert!(!stale.exists());
        assert!(mine.exists() && other.exists());
        fs::remove_dir_all(&d).unwrap();
    }
}

/// `value` as the pretty-printed JSON every wgrec JSON output holds.
pub fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    s.push('\n');
    s.into_bytes()
}

/// Writes `value` as JSON to `out` (see `output`: never a partial file, never over a device).
pub fn write_json(out: &Output, value: &serde_json::Value) -> Result<()> {
    out.write(&json_bytes(value))
}
