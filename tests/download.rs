//! `--dataset` downloads against an HTTP server on loopback that serves synthetic zips: first download,
//! cache reuse without a request, trust-on-first-use and published checksums, tampering, archives with
//! escaping entries, and a server that answers 404.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wgrec::data::{load, DataOptions};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-download-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A zip holding `entries` (name, bytes).
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Serves `files` (URL path -> body) over HTTP/1.1 on 127.0.0.1 from a background thread, 404 for
/// anything else; returns the base URL and the number of requests so far.
fn serve(files: Vec<(String, Vec<u8>)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/movielens", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
            let found = files
                .iter()
                .find(|(p, _)| format!("/movielens/{p}") == path);
            let (status, body): (&str, &[u8]) = match found {
                Some((_, body)) => ("200 OK", body),
                None => ("404 Not Found", b"not here"),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/zip\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (base, count)
}

const MOVIES: &[u8] =
    b"movieId,title,genres\n1,Toy Story (1995),Animation\n2,\"Heat, The (1995)\",Action\n";
const RATINGS: &[u8] = b"userId,movieId,rating,timestamp\n1,1,4.0,5\n2,2,3.5,6\n2,1,1.0,7\n";

fn options(name: &str, cache: &Path, mirror: &str) -> DataOptions {
    DataOptions {
        dataset: Some(name.into()),
        cache_dir: Some(cache.to_path_buf()),
        mirror: Some(mirror.into()),
        ..Default::default()
    }
}

#[test]
fn download_once_then_reuse_and_detect_tampering() {
    let archive = zip(&[
        ("ml-latest-small/README.txt", b"synthetic"),
        ("ml-latest-small/movies.csv", MOVIES),
        ("ml-latest-small/ratings.csv", RATINGS),
        (
            "ml-latest-small/tags.csv",
            b"userId,movieId,tag,timestamp\n",
        ),
    ]);
    let (base, requests) = serve(vec![("ml-latest-small.zip".into(), archive)]);
    let cache = scratch("reuse");
    let ds = load(&options("ml-latest-small", &cache, &base)).unwrap();
    assert_eq!(ds.titles.tokens, ["Heat, The (1995)", "Toy Story (1995)"]);
    assert_eq!(ds.train.len() + ds.test.len(), 3);
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // Only the two files read are unpacked, and their checksums are recorded (trust on first use).
    let dir = cache.join("ml-latest-small");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["SHA256SUMS", "movies.csv", "ratings.csv"]);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let hash = wgrec::data::download::sha256_file(&dir.join("ratings.csv")).unwrap();
    assert!(sums.contains(&format!("{hash}  ratings.csv\n")), "{sums}");
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "ml-latest-small")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The second load uses the cache: no request.
    let again = load(&options("ml-latest-small", &cache, &base)).unwrap();
    assert_eq!(again.users, ds.users);
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // A changed file no longer matches what was recorded.
    std::fs::write(dir.join("ratings.csv"), [RATINGS, b"3,1,5.0,8\n"].concat()).unwrap();
    let msg = format!(
        "{:#}",
        load(&options("ml-latest-small", &cache, &base)).unwrap_err()
    );
    assert!(
        msg.contains("ratings.csv: SHA-256") && msg.contains("does not match the recorded"),
        "{msg}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn published_checksums_reject_a_wrong_ml_100k() {
    // Well-formed ML-100K files, but not the real ones: the published SHA-256 rejects them and
    // nothing is left in the cache.
    let archive = zip(&[
        ("ml-100k/u.item", b"1|Toy Story (1995)|x\n"),
        ("ml-100k/u.data", b"1\t1\t5\t0\n"),
    ]);
    let (base, _) = serve(vec![("ml-100k.zip".into(), archive)]);
    let cache = scratch("published");
    let msg = format!(
        "{:#}",
        load(&options("ml-100k", &cache, &base)).unwrap_err()
    );
    assert!(msg.contains("does not match the published"), "{msg}");
    assert!(
        msg.contains("06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

#[test]
fn archives_with_escaping_entries_are_refused() {
    let cache = scratch("escape");
    for (i, evil) in ["../evil.txt", "/tmp/wgrec-evil.txt", "ml-1m/../../evil.txt"]
        .into_iter()
        .enumerate()
    {
        let archive = zip(&[
            (evil, b"pwned"),
            ("ml-1m/movies.dat", b"1::A::x\n"),
            ("ml-1m/ratings.dat", b"1::1::5::0\n"),
        ]);
        let (base, _) = serve(vec![("ml-1m.zip".into(), archive)]);
        let root = cache.join(format!("c{i}"));
        let msg = format!("{:#}", load(&options("ml-1m", &root, &base)).unwrap_err());
        assert!(msg.contains("refusing the archive"), "{evil}: {msg}");
        assert!(!cache.join("evil.txt").exists() && !root.join("ml-1m").exists());
    }
    assert!(!Path::new("/tmp/wgrec-evil.txt").exists());
}

#[test]
fn missing_archive_and_missing_member_are_clear_errors() {
    let (base, _) = serve(vec![(
        "ml-1m.zip".into(),
        zip(&[("ml-1m/movies.dat", b"1::A::x\n")]),
    )]);
    let cache = scratch("missing");
    let msg = format!("{:#}", load(&options("ml-1m", &cache, &base)).unwrap_err());
    assert!(
        msg.contains("the archive has no ml-1m/ratings.dat"),
        "{msg}"
    );
    let msg = format!("{:#}", load(&options("ml-25m", &cache, &base)).unwrap_err());
    assert!(
        msg.contains("could not download") && msg.contains("404"),
        "{msg}"
    );
    let msg = format!("{:#}", load(&options("ml-7m", &cache, &base)).unwrap_err());
    assert!(msg.contains("unknown dataset \"ml-7m\""), "{msg}");
}

/// The real ML-100K files (from `WGREC_DATA_DIR`, zipped here, never committed) pass the published
/// checksums and load as from `--data-dir`. Skips without the data.
#[test]
fn real_ml_100k_passes_the_published_checksums() {
    let Some(root) = std::env::var_os("WGREC_DATA_DIR").map(PathBuf::from) else {
        common::skip("WGREC_DATA_DIR is not set (the folder holding ml-100k/)");
        return;
    };
    let (Ok(item), Ok(data)) = (
        std::fs::read(root.join("ml-100k/u.item")),
        std::fs::read(root.join("ml-100k/u.data")),
    ) else {
        common::skip(&format!(
            "no ml-100k/u.item and u.data in {}",
            root.display()
        ));
        return;
    };
    let archive = zip(&[("ml-100k/u.item", &item), ("ml-100k/u.data", &data)]);
    let (base, _) = serve(vec![("ml-100k.zip".into(), archive)]);
    let cache = scratch("real");
    let ds = load(&options("ml-100k", &cache, &base)).unwrap();
    assert_eq!(
        (ds.users.tokens.len(), ds.titles.tokens.len()),
        (943, 1_664)
    );
    let local = load(&DataOptions {
        data_dir: Some(root.join("ml-100k")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((&ds.train, &ds.test), (&local.train, &local.test));
    // Published checksums are not recorded: nothing but the two files.
    assert_eq!(std::fs::read_dir(cache.join("ml-100k")).unwrap().count(), 2);
}

/// `WGREC_MIRROR=file://DIR` serves the archives from a folder (a machine without network); `offline`
/// refuses to fetch but still uses what the cache holds.
#[test]
fn file_mirror_and_offline() {
    let mirror = scratch("file-mirror");
    let archive = zip(&[
        ("ml-latest-small/movies.csv", MOVIES),
        ("ml-latest-small/ratings.csv", RATINGS),
    ]);
    std::fs::write(mirror.join("ml-latest-small.zip"), archive).unwrap();
    let base = format!("file://{}", mirror.display());
    let cache = scratch("file-cache");
    let offline = |name: &str| DataOptions {
        offline: true,
        ..options(name, &cache, &base)
    };
    let msg = format!("{:#}", load(&offline("ml-latest-small")).unwrap_err());
    assert!(
        msg.contains("downloads are off") && msg.contains("--dataset sample"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);

    let ds = load(&options("ml-latest-small", &cache, &base)).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 3);
    let again = load(&offline("ml-latest-small")).unwrap();
    assert_eq!(again.train, ds.train);

    let msg = format!("{:#}", load(&options("ml-1m", &cache, &base)).unwrap_err());
    let want = format!("could not download {base}/ml-1m.zip: opening ");
    assert!(msg.contains(&want), "{msg}");
    assert!(
        msg.contains(&format!("unzip it in {}", cache.display())),
        "{msg}"
    );
}
