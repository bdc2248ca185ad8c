//! `--dataset NAME`: fetching a GroupLens MovieLens archive into the cache, unpacking the two files
//! wgrec reads (refusing archives with entries that would land outside the cache), and checking their
//! SHA-256 every time they are used. The mirror may be a `file://` folder for machines without network.
//!
//! Checksums: for ML-100K the SHA-256 of the official `u.data` and `u.item` are fixed below. For the other releases no SHA-256 is published (GroupLens publishes MD5s of
//! the zips, which we could not fetch from here to copy reliably), so they are trust-on-first-use: the
//! SHA-256 of each file is recorded in `SHA256SUMS` next to it on the first successful download (or
//! the first time hand-placed files are used) and checked on every later use.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::data::formats::Format;

/// Where the archives live; `WGREC_MIRROR` (or `DataOptions::mirror`) replaces it.
pub const GROUPLENS: &str = "https://files.grouplens.org/datasets/movielens";
/// The recorded checksums, one `HEX  FILE` line per file (`sha256sum` format).
const SUMS_FILE: &str = "SHA256SUMS";
/// Larger than any file of any release (ML-25M's ratings.csv is 678 MB); stops zip bombs and
/// endless downloads.
const MAX_BYTES: u64 = 4 << 30;

/// A GroupLens release wgrec can download.
#[derive(Debug)]
pub struct Release {
    /// The `--dataset` name, also the zip's base name, its top folder and the cache folder.
    pub name: &'static str,
    pub format: Format,
    /// Published SHA-256 of the files wgrec uses, as (file, hex); empty = trust on first use.
    pub published: &'static [(&'static str, &'static str)],
}

pub const RELEASES: [Release; 4] = [
    Release {
        name: "ml-100k",
        format: Format::Ml100k,
        published: &[
            (
                "u.data",
                "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            ),
            (
                "u.item",
                "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            ),
        ],
    },
    Release {
        name: "ml-1m",
        format: Format::Ml1m,
        published: &[],
    },
    Release {
        name: "ml-latest-small",
        format: Format::Csv,
        published: &[],
    },
    Release {
        name: "ml-25m",
        format: Format::Csv,
        published: &[],
    },
];

pub fn release(name: &str) -> Result<&'static Release> {
    RELEASES.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<_> = RELEASES.iter().map(|r| r.name).collect();
        anyhow!(
            "unknown dataset {name:?}; known: {}, sample",
            names.join(", ")
        )
    })
}

impl Release {
    fn files(&self) -> [&'static str; 2] {
        let (ratings, movies) = self.format.files();
        [ratings, movies]
    }
}

/// The directory holding `release`'s files under `root` (the cache), downloading them from
/// `mirror` first when they are not there (an error instead when `offline`). Either way their SHA-256 is
/// checked before use.
pub fn ensure(release: &Release, root: &Path, mirror: &str, offline: bool) -> Result<PathBuf> {
    let dir = root.join(release.name);
    let present = release.files().iter().all(|f| dir.join(f).is_file());
    if !present {
        if dir.exists() && !is_empty_dir(&dir) {
            bail!(
                "{} exists but lacks {}; move it away (or complete it) and run again",
                dir.display(),
                release.files().join(" or ")
            );
        }
        if offline {
            bail!(
                "{} is not in the cache and downloads are off (--offline or WGREC_OFFLINE)\n{}",
                release.name,
                by_hand(release, root, &url(release, mirror))
            );
        }
        fetch(release, root, mirror)?;
    } else {
        verify(release, &dir)?;
    }
    Ok(dir)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Checks every file against the published checksum, else the recorded one (recording it when
/// there is none yet).
fn verify(release: &Release, dir: &Path) -> Result<()> {
    let sums_path = dir.join(SUMS_FILE);
    let recorded = match std::fs::read_to_string(&sums_path) {
        Ok(text) => parse_sums(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", sums_path.display())),
    };
    let mut to_record = Vec::new();
    for file in release.files() {
        let path = dir.join(file);
        let got = sha256_file(&path)?;
        let (want, origin) = match release.published.iter().find(|(f, _)| *f == file) {
            Some((_, hex)) => ((*hex).to_owned(), "published"),
            None => match recorded.iter().find(|(f, _)| f == file) {
                Some((_, hex)) => (hex.clone(), "recorded on first use in SHA256SUMS"),
                None => {
                    to_record.push(format!("{got}  {file}\n"));
                    continue;
                }
            },
        };
        if got != want {
            bail!(
                "{}: SHA-256 {got} does not match the {origin} {want}; the file is damaged or not \
                 the {} release: delete {} to download it again",
                path.display(),
                release.name,
                dir.display()
            );
        }
    }
    if !to_record.is_empty() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&sums_path)
            .with_context(|| format!("recording checksums in {}", sums_path.display()))?;
        f.write_all(to_record.concat().as_bytes())
            .with_context(|| format!("writing {}", sums_path.display()))?;
    }
    Ok(())
}

/// `HEX  FILE` lines; anything else is ignored.
fn parse_sums(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (hex, file) = l.split_once("  ")?;
            (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (file.trim().to_owned(), hex.to_ascii_lowercase()))
        })
        .collect()
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where `release`'s zip is fetched from.
pub fn url(release: &Release, mirror: &str) -> String {
    format!("{}/{}.zip", mirror.trim_end_matches('/'), release.name)
}

/// What to do without network access: where to put the files by hand, or the built-in sample.
fn by_hand(release: &Release, root: &Path, url: &str) -> String {
    let dir = root.join(release.name);
    let [ratings, movies] = release.files();
    format!(
        "Without network access, either:\n  \
         - download {url} elsewhere and unzip it in {} (giving {} and {}), or unzip it anywhere and \
         pass --data-dir DIR (or set WGREC_DATA_DIR); WGREC_MIRROR=URL (http://, https:// or file://) \
         points at another copy of the archives; or\n  \
         - pass --dataset sample to run on the small synthetic sample built into wgrec, with no download",
        root.display(),
        dir.join(ratings).display(),
        dir.join(movies).display()
    )
}

/// Downloads `{mirror}/{name}.zip` next to the cache folder, unpacks the two files into a staging
/// folder and renames it into place, so an interrupted run leaves no half-filled cache folder.
fn fetch(release: &Release, root: &Path, mirror: &str) -> Result<()> {
    let url = url(release, mirror);
    let dir = root.join(release.name);
    std::fs::create_dir_all(root)
        .with_context(|| format!("creating the cache directory {}", root.display()))?;
    let pid = std::process::id();
    let zip_path = root.join(format!(".{}.zip.part-{pid}", release.name));
    let staging = root.join(format!(".{}.unpack-{pid}", release.name));
    let result = (|| {
        let t = std::time::Instant::now();
        // The cause goes before the advice: it is what the user needs first.
        let bytes = download(&url, &zip_path).map_err(|e| {
            anyhow!(
                "could not download {url}: {e:#}\n{}",
                by_hand(release, root, &url)
            )
        })?;
        crate::progress::note(format!(
            "downloaded {url} ({:.1} MB in {:.1} s); checking the SHA-256 of {}",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            release.files().join(" and ")
        ));
        unpack(release, &zip_path, &staging)?;
        // Checked (or recorded) before the files are moved into place, so a bad archive leaves
        // nothing in the cache.
        verify(release, &staging)?;
        std::fs::rename(&staging, &dir)
            .with_context(|| format!("moving {} to {}", staging.display(), dir.display()))
    })();
    let _ = std::fs::remove_file(&zip_path);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Copies `url` (http, https, or a `file://` path for an offline mirror) into `to` with a progress bar;
/// returns the bytes written.
fn download(url: &str, to: &Path) -> Result<u64> {
    let (len, body): (Option<u64>, Box<dyn Read>) = match url.strip_prefix("file://") {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
            (file.metadata().ok().map(|m| m.len()), Box::new(file))
        }
        None => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(20)))
                .timeout_recv_body(Some(Duration::from_secs(120)))
                .build()
                .into();
            let response = agent.get(url).call().map_err(|e| anyhow!("{e}"))?;
            let body = response.into_body();
            (body.content_length(), Box::new(body.into_reader()))
        }
    };
    let name = url.rsplit('/').next().unwrap_or(url).to_owned();
    let bar = crate::progress::bytes(len, format!("downloading {name}"));
    let mut body = bar.wrap_read(body.take(MAX_BYTES + 1));
    let mut file =
        std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let n = std::io::copy(&mut body, &mut file)
        .with_context(|| format!("downloading into {}", to.display()))?;
    bar.finish_and_clear();
    if n > MAX_BYTES {
        bail!("the archive is larger than {MAX_BYTES} bytes");
    }
    file.sync_all()
        .with_context(|| format!("writing {}", to.display()))?;
    Ok(n)
}

/// Unpacks `{name}/{ratings}` and `{name}/{movies}` from the zip into `staging`. Every entry name is
/// checked first: one that is absolute or climbs out with `..` makes the whole archive suspect.
pub fn unpack(release: &Release, zip_path: &Path, staging: &Path) -> Result<()> {
    let file =
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{}: not a readable zip archive", zip_path.display()))?;
    let mut wanted: Vec<(usize, &str)> = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .with_context(|| format!("{}: entry {i}", zip_path.display()))?;
        let Some(name) = entry.enclosed_name() else {
            bail!(
                "{}: refusing the archive: entry {:?} would be written outside the target folder",
                zip_path.display(),
                entry.name()
            );
        };
        for file in release.files() {
            if name == Path::new(release.name).join(file) {
                if !entry.is_file() || entry.is_symlink() {
                    bail!(
                        "{}: entry {:?} is not a regular file",
                        zip_path.display(),
                        entry.name()
                    );
                }
                wanted.push((i, file));
            }
        }
    }
    for file in release.files() {
        if !wanted.iter().any(|(_, f)| *f == file) {
            bail!(
                "{}: the archive has no {}/{file}; is it the {} release?",
                zip_path.display(),
                release.name,
                release.name
            );
        }
    }
    std::fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    for (i, file) in wanted {
        let entry = archive
            .by_index(i)
            .with_context(|| format!("{}: reading {file}", zip_path.display()))?;
        let out_path = staging.join(file);
        let mut out = std::fs::File::create(&out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let n = std::io::copy(&mut entry.take(MAX_BYTES + 1), &mut out)
            .with_context(|| format!("{}: unpacking {file}", zip_path.display()))?;
        if n > MAX_BYTES {
            bail!(
                "{}: {file} unpacks to more than {MAX_BYTES} bytes",
                zip_path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_round_trip_and_ignore_junk() {
        let text = format!("{}  ratings.csv\nnot a line\nABC  x\n", "Ab".repeat(32));
        assert_eq!(
            parse_sums(&text),
            [("ratings.csv".to_owned(), "ab".repeat(32))]
        );
        assert!(release("ml-2m").is_err());
        assert_eq!(release("ml-25m").unwrap().format, Format::Csv);
    }
}
