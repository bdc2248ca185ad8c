//! Data loading through the library and the binary: every MovieLens format, the temporal split, the
//! synthetic generator, and hostile input (each case: one error naming file and line, exit code 2, no
//! panic, nothing written). None of these tests needs an adapter or the real MovieLens files.

use std::path::{Path, PathBuf};
use std::process::Command;
use wgrec::data::{load, DataOptions, Dataset, SplitKind};

/// A fresh directory under the system temp dir, unique per test and process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-formats-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = scratch(name);
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

fn load_dir(dir: &Path) -> anyhow::Result<Dataset> {
    load(&DataOptions {
        data_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
}

const MOVIES_CSV: &[u8] = b"movieId,title,genres\n\
1,Toy Story (1995),Adventure|Animation\n\
11,\"American President, The (1995)\",Comedy|Drama\n\
12,\"\"\"Great\"\" Performances: Cats (1998)\",Musical\n\
20,Am\xc3\xa9lie (2001),Comedy\n";
const RATINGS_CSV: &[u8] = b"userId,movieId,rating,timestamp\n\
1,1,4.0,964982703\n\
1,11,3.5,964981247\n\
2,12,0.5,964982224\n\
10,20,5.0,964983815\n\
2,1,2.5,964982931\n";

#[test]
fn csv_format_quoted_titles_half_stars_utf8() {
    let dir = fixture(
        "csv",
        &[("movies.csv", MOVIES_CSV), ("ratings.csv", RATINGS_CSV)],
    );
    let ds = load_dir(&dir).unwrap();
    assert_eq!(
        ds.titles.tokens,
        [
            "\"Great\" Performances: Cats (1998)",
            "American President, The (1995)",
            "Amélie (2001)",
            "Toy Story (1995)",
        ]
    );
    assert_eq!(ds.candidates, [4, 2, 1, 3]);
    assert_eq!(ds.users.tokens, ["1", "10", "2"]);
    let mut all: Vec<(u32, u32, f32)> = [&ds.train, &ds.test]
        .iter()
        .flat_map(|r| (0..r.len()).map(|i| (r.user[i], r.movie[i], r.rating[i])))
        .collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        all,
        [
            (1, 2, 3.5),
            (1, 4, 4.0),
            (2, 3, 5.0),
            (3, 1, 0.5),
            (3, 4, 2.5)
        ]
    );
    assert_eq!((ds.train.len(), ds.test.len()), (4, 1));
    assert!(
        ds.description.starts_with("MovieLens CSV"),
        "{}",
        ds.description
    );

    // A byte-order mark before either header changes nothing.
    let bom = fixture(
        "csv-bom",
        &[
            ("movies.csv", &[b"\xef\xbb\xbf", MOVIES_CSV].concat()),
            ("ratings.csv", &[b"\xef\xbb\xbf", RATINGS_CSV].concat()),
        ],
    );
    let with_bom = load_dir(&bom).unwrap();
    assert_eq!((&with_bom.titles, &with_bom.train), (&ds.titles, &ds.train));

    // A folder holding the release folder is found too.
    let parent = scratch("csv-parent");
    std::fs::rename(&dir, parent.join("ml-latest-small")).unwrap();
    assert_eq!(load_dir(&parent).unwrap().users, ds.users);
}

#[test]
fn ml_1m_format_is_double_colon_latin1() {
    let dir = fixture(
        "ml1m",
        &[
            (
                "movies.dat",
                b"1::Toy Story (1995)::Animation\n2::Mis\xe9rables, Les (1995)::Drama\n",
            ),
            (
                "ratings.dat",
                b"1::1::5::978300760\r\n1::2::3::978302109\n6040::2::4::978301968\n",
            ),
        ],
    );
    let ds = load_dir(&dir).unwrap();
    assert_eq!(
        ds.titles.tokens,
        ["Misérables, Les (1995)", "Toy Story (1995)"]
    );
    assert_eq!(ds.users.tokens, ["1", "6040"]);
    assert_eq!(ds.train.len() + ds.test.len(), 3);
    assert!(ds.description.starts_with("ml-1m at"), "{}", ds.description);
}

#[test]
fn temporal_split_holds_out_each_users_latest_ratings() {
    // User 1 rates movies 1..=10 at times 10, 20, ..., 100 but written newest first; user 2 rates 3.
    let mut ratings = String::from("userId,movieId,rating,timestamp\n");
    for m in (1..=10).rev() {
        ratings += &format!("1,{m},3.0,{}\n", m * 10);
    }
    for m in 1..=3 {
        ratings += &format!("2,{m},4.0,5\n");
    }
    let movies: String = std::iter::once("movieId,title,genres\n".to_string())
        .chain((1..=10).map(|m| format!("{m},M{m:02},x\n")))
        .collect();
    let dir = fixture(
        "temporal",
        &[
            ("movies.csv", movies.as_bytes()),
            ("ratings.csv", ratings.as_bytes()),
        ],
    );
    let ds = load(&DataOptions {
        data_dir: Some(dir),
        split: SplitKind::Temporal,
        ..Default::default()
    })
    .unwrap();
    // The test set: user 1's two latest (movies 10 and 9, in file order); user 2 has too few.
    let titles: Vec<&str> = ds
        .test
        .movie
        .iter()
        .map(|&m| ds.titles.token(m).unwrap())
        .collect();
    assert_eq!(titles, ["M10", "M09"]);
    assert_eq!(ds.test.user, [1, 1]);
    assert_eq!(ds.train.len(), 11);
    assert!(ds.description.contains("temporal"), "{}", ds.description);
}

#[test]
fn synth_round_trips_in_both_formats_and_is_deterministic() {
    let bin = env!("CARGO_BIN_EXE_wgrec");
    for (format, files) in [
        ("csv", &["ratings.csv", "movies.csv"][..]),
        ("ml-100k", &["u.data", "u.item", "u.user"][..]),
        ("ml-1m", &["ratings.dat", "movies.dat", "users.dat"][..]),
    ] {
        let outs: Vec<PathBuf> = (0..2)
            .map(|i| {
                let out = scratch(&format!("synth-{format}-{i}"));
                let status = Command::new(bin)
                    .args(["-q", "synth", "--users", "50", "--movies", "120"])
                    .args(["--ratings", "3000", "--seed", "7", "--format", format])
                    .arg("--out")
                    .arg(&out)
                    .status()
                    .unwrap();
                assert!(status.success(), "synth --format {format}");
                out
            })
            .collect();
        for f in files {
            let a = std::fs::read(outs[0].join(f)).unwrap();
            assert_eq!(a, std::fs::read(outs[1].join(f)).unwrap(), "{f} differs");
        }
        let ds = load_dir(&outs[0]).unwrap();
        // The users file parses with the feature reader, every rating user has its four fields, and the
        // features vary (they follow the users' factors).
        if let Some(users_file) = files.get(2) {
            use wgrec::data::features::{read_users, USER_FIELDS};
            use wgrec::data::formats::Format;
            let f = if format == "ml-1m" {
                Format::Ml1m
            } else {
                Format::Ml100k
            };
            let path = outs[0].join(users_file);
            let text = std::fs::read(&path).unwrap();
            let feats = read_users(f, &path, &text[..], &ds.users).unwrap();
            assert_eq!(feats.fields.len(), USER_FIELDS.len());
            for field in &feats.fields {
                for row in 1..ds.users.rows() {
                    let n = field.offsets[row + 1] - field.offsets[row];
                    assert_eq!(
                        n, 1,
                        "{users_file}: user row {row} has {n} {} values",
                        field.name
                    );
                }
                assert!(
                    field.vocab.rows() > 2,
                    "{users_file}: {} takes one value",
                    field.name
                );
            }
        }
        assert_eq!(ds.users.tokens.len(), 50, "every user rates at least once");
        assert_eq!(ds.candidates.len(), 120);
        assert_eq!(ds.train.len() + ds.test.len(), 3000);
        let ratings = ds.train.rating.iter().chain(&ds.test.rating);
        let mean = ratings.clone().sum::<f32>() / 3000.0;
        assert!((2.5..4.5).contains(&mean), "mean rating {mean}");
        if format == "csv" {
            assert!(ratings.clone().any(|r| r.fract() == 0.5), "half stars");
            // Titles with commas and quotes survive the CSV round trip.
            assert_ne!(ds.titles.lookup("\"Quoted\" Movie 50 (1970)"), 0);
            assert_ne!(ds.titles.lookup("Movie 10, The (1930)"), 0);
        }
        // Popularity is skewed: the most-rated movie has far more than the average 25 ratings.
        let mut counts = vec![0u32; ds.titles.rows()];
        for &m in ds.train.movie.iter().chain(&ds.test.movie) {
            counts[m as usize] += 1;
        }
        assert!(*counts.iter().max().unwrap() > 150, "{counts:?}");
    }
    // A different seed gives different data.
    let out = scratch("synth-seed");
    let status = Command::new(bin)
        .args(["-q", "synth", "--users", "50", "--movies", "120"])
        .args(["--ratings", "3000", "--seed", "8", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let other = std::fs::read(out.join("ratings.csv")).unwrap();
    let first = std::fs::read(scratch_path("synth-csv-0").join("ratings.csv")).unwrap();
    assert_ne!(other, first);
}

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wgrec-formats-{}-{name}", std::process::id()))
}

#[test]
fn built_in_sample_loads() {
    let ds = load(&DataOptions {
        dataset: Some("sample".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(ds.users.tokens.len() >= 100, "{}", ds.description);
    assert!(ds.train.len() >= 10_000, "{}", ds.description);
}

/// Runs `wgrec train` on `dir` with a metrics file and returns (exit code, stderr); asserts the
/// hostile-input contract: exit 2, exactly one `error:` line, no panic, no metrics file written.
fn train_fails(dir: &Path, extra: &[&str]) -> String {
    let metrics = dir.join("metrics.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args([
            "-q",
            "train",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
        ])
        .arg("--data-dir")
        .arg(dir)
        .arg("--metrics-out")
        .arg(&metrics)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "exit code; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(!metrics.exists(), "wrote {}", metrics.display());
    stderr
}

#[track_caller]
fn assert_mentions(stderr: &str, needles: &[&str]) {
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?} in:\n{stderr}");
    }
}

const MOVIES_DAT: &[u8] = b"1::Toy Story (1995)::Animation\n2::Heat (1995)::Action\n";
const HEADER: &str = "userId,movieId,rating,timestamp\n";

fn csv_dir(name: &str, ratings: &[u8]) -> PathBuf {
    fixture(
        name,
        &[("movies.csv", MOVIES_CSV), ("ratings.csv", ratings)],
    )
}

#[test]
fn hostile_empty_file() {
    let dir = csv_dir("empty", b"");
    let e = train_fails(&dir, &[]);
    assert_mentions(&e, &["ratings.csv:1: no ratings in the file"]);
    let dir = fixture("empty-100k", &[("u.item", b"1|A|x\n"), ("u.data", b"")]);
    assert_mentions(&train_fails(&dir, &[]), &["u.data:1: no ratings"]);
    let dir = fixture(
        "empty-movies",
        &[
            ("movies.csv", b"movieId,title,genres\n"),
            ("ratings.csv", RATINGS_CSV),
        ],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["movies.csv:2: no movies in the file (only a header)"],
    );
}

#[test]
fn hostile_missing_columns() {
    let dir = csv_dir(
        "columns",
        format!("{HEADER}1,1,4.0,5\n1,11,3.5\n").as_bytes(),
    );
    let e = train_fails(&dir, &[]);
    assert_mentions(&e, &["ratings.csv:3: expected 4 comma-separated fields as in the header, found 3: \"1,11,3.5\""]);
    let dir = csv_dir("header-columns", b"userId,movieId,rating\n1,1,4.0\n");
    assert_mentions(&train_fails(&dir, &[]), &["ratings.csv:1: expected a header naming the columns userId, movieId, rating, timestamp; no column \"timestamp\""]);
    let dir = fixture(
        "columns-1m",
        &[("movies.dat", MOVIES_DAT), ("ratings.dat", b"1::1::5\n")],
    );
    assert_mentions(&train_fails(&dir, &[]), &["ratings.dat:1: expected 4 '::'-separated fields (user, movie, rating, timestamp), found 3"]);
}

#[test]
fn hostile_non_numeric_ids() {
    let dir = fixture(
        "ids-1m",
        &[
            ("movies.dat", MOVIES_DAT),
            ("ratings.dat", b"1::1::5::0\nabc::1::5::0\n"),
        ],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.dat:2: user id \"abc\" is not a whole number"],
    );
    let dir = csv_dir("ids-csv", format!("{HEADER}1,x1,4.0,5\n").as_bytes());
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.csv:2: movie id \"x1\" is not a whole number"],
    );
    let dir = fixture(
        "ids-movies",
        &[
            ("movies.dat", b"1::A::x\none::B::x\n"),
            ("ratings.dat", b"1::1::5::0\n"),
        ],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["movies.dat:2: movie id \"one\" is not a whole number"],
    );
}

#[test]
fn hostile_ratings_out_of_range_and_nan() {
    for (name, rating) in [
        ("range", "5.5"),
        ("negative", "-1"),
        ("nan", "NaN"),
        ("inf", "inf"),
    ] {
        let dir = csv_dir(
            name,
            format!("{HEADER}1,1,4.0,5\n1,1,{rating},5\n").as_bytes(),
        );
        let e = train_fails(&dir, &[]);
        assert_mentions(
            &e,
            &[&format!(
                "ratings.csv:3: rating \"{rating}\" is not a number in [0, 5]"
            )],
        );
    }
}

#[test]
fn hostile_unknown_movie_ids() {
    let dir = csv_dir(
        "unknown",
        format!("{HEADER}1,1,4.0,5\n1,999,4.0,5\n").as_bytes(),
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.csv:3: movie id 999 is not in movies.csv"],
    );
}

#[test]
fn hostile_duplicate_headers() {
    let dir = csv_dir(
        "header-twice",
        format!("{HEADER}1,1,4.0,5\n{HEADER}").as_bytes(),
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.csv:3: the header appears again"],
    );
    let dir = csv_dir(
        "header-column-twice",
        b"userId,movieId,rating,rating,timestamp\n1,1,4,4,5\n",
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.csv:1: column \"rating\" appears twice in the header"],
    );
    let movies = b"movieId,title,genres\n1,A,x\nmovieId,title,genres\n";
    let dir = fixture(
        "movies-header-twice",
        &[("movies.csv", movies), ("ratings.csv", RATINGS_CSV)],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["movies.csv:3: the header appears again"],
    );
    let dir = fixture(
        "movies-dup-id",
        &[
            ("movies.csv", b"movieId,title,genres\n1,A,x\n1,B,y\n"),
            ("ratings.csv", RATINGS_CSV),
        ],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["movies.csv:3: movie id 1 appears more than once"],
    );
}

#[test]
fn hostile_invalid_utf8_and_broken_quotes() {
    let movies = b"movieId,title,genres\n1,Am\xe9lie (2001),Comedy\n";
    let dir = fixture(
        "utf8-movies",
        &[("movies.csv", movies), ("ratings.csv", RATINGS_CSV)],
    );
    assert_mentions(&train_fails(&dir, &[]), &["movies.csv:2: not valid UTF-8"]);
    let dir = csv_dir(
        "utf8-ratings",
        format!("{HEADER}1,1,4.0,5\n\u{1}").as_bytes(),
    );
    // A control character is valid UTF-8 (and then not an id); a lone 0xFF byte is not.
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.csv:3: expected 4 comma-separated"],
    );
    let dir = csv_dir(
        "utf8-ratings-ff",
        &[HEADER.as_bytes(), b"1,1,4.0,5\n1\xff,1,4.0,5\n"].concat(),
    );
    assert_mentions(&train_fails(&dir, &[]), &["ratings.csv:3: not valid UTF-8"]);
    let movies = b"movieId,title,genres\n1,\"Open (1995),x\n";
    let dir = fixture(
        "quote",
        &[("movies.csv", movies), ("ratings.csv", RATINGS_CSV)],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["movies.csv:2: unterminated quoted field"],
    );
}

#[test]
fn hostile_two_gigabyte_line() {
    // A sparse 2 GiB file of NUL bytes without a newline: rejected after reading 64 KiB of it.
    let dir = csv_dir("huge", b"");
    let f = std::fs::File::create(dir.join("ratings.csv")).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let e = train_fails(&dir, &[]);
    assert_mentions(&e, &["ratings.csv:1: line longer than 65536 bytes"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_directory_instead_of_a_file() {
    let dir = scratch("dir-file");
    std::fs::write(dir.join("movies.csv"), MOVIES_CSV).unwrap();
    std::fs::create_dir(dir.join("ratings.csv")).unwrap();
    let e = train_fails(&dir, &[]);
    assert_mentions(
        &e,
        &[&format!(
            "{} is not a regular file",
            dir.join("ratings.csv").display()
        )],
    );

    let good = csv_dir("dir-split", RATINGS_CSV);
    let split = scratch("dir-split-files");
    std::fs::create_dir(split.join("train.data")).unwrap();
    std::fs::write(split.join("test.data"), "1\t1\t4\t0\n").unwrap();
    let e = train_fails(&good, &["--split-dir", split.to_str().unwrap()]);
    assert_mentions(&e, &["train.data: is not a regular file"]);
}

#[test]
fn hostile_symlink_loop_and_dangling_link_are_not_reported_missing() {
    let dir = scratch("loop");
    std::fs::write(dir.join("u.item"), "1|A (1990)|x\n").unwrap();
    std::os::unix::fs::symlink("u.data", dir.join("u.data")).unwrap();
    let e = train_fails(&dir, &[]);
    assert_mentions(&e, &["u.data is a symbolic link that cannot be followed"]);
    assert!(!e.contains("but no u.data"), "{e}");
    std::fs::remove_file(dir.join("u.data")).unwrap();
    std::os::unix::fs::symlink("gone.data", dir.join("u.data")).unwrap();
    assert_mentions(
        &train_fails(&dir, &[]),
        &["u.data is a symbolic link that cannot be followed"],
    );
}

#[test]
fn hostile_overlong_user_id_and_huge_weights() {
    let dir = fixture(
        "long-id",
        &[
            ("movies.dat", MOVIES_DAT),
            ("ratings.dat", b"1::1::5::0\n12345678901::1::5::0\n"),
        ],
    );
    assert_mentions(
        &train_fails(&dir, &[]),
        &["ratings.dat:2: user id \"12345678901\" is too long: at most 10 digits"],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(["train", "--dataset", "sample", "--rating-weight", "1"])
        .args(["--retrieval-weight", "1e38"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["--retrieval-weight must be at most 10000, got 1000000000000000000000"],
    );
}

/// Users of a split directory that the ratings file lacks take the OOV row, and a note says so.
#[test]
fn split_users_missing_from_the_ratings_file_are_noted() {
    let good = csv_dir("split-oov", RATINGS_CSV);
    let split = scratch("split-oov-files");
    std::fs::write(split.join("train.data"), "1\t1\t4\t0\n77\t1\t3\t0\n").unwrap();
    std::fs::write(split.join("test.data"), "2\t1\t4\t0\n").unwrap();
    let ds = load(&DataOptions {
        data_dir: Some(good.clone()),
        split_dir: Some(split.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ds.train.user[1], 0, "user 77 is out of vocabulary");
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args([
            "-q",
            "train",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "0",
        ])
        .args(["--epochs", "0", "--batch-size", "2"])
        .arg("--data-dir")
        .arg(&good)
        .arg("--split-dir")
        .arg(&split)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_mentions(
        &err,
        &[
            "train.data: 1 users (1 ratings) are not in ratings.csv",
            "out-of-vocabulary row",
        ],
    );
}

#[test]
fn offline_download_says_where_to_put_the_files() {
    let cache = scratch("offline-cache");
    let metrics = cache.join("m.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(["-q", "tutorial", "--dataset", "ml-1m", "--cache-dir"])
        .arg(&cache)
        .arg("--metrics-out")
        .arg(&metrics)
        // Port 1 on loopback: connection refused, as when offline.
        .env("WGREC_MIRROR", "http://127.0.0.1:1/movielens")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "could not download http://127.0.0.1:1/movielens/ml-1m.zip",
            &format!("unzip it in {}", cache.display()),
            &cache
                .join("ml-1m")
                .join("ratings.dat")
                .display()
                .to_string(),
            "--data-dir",
        ],
    );
    assert!(!metrics.exists());
    // Nothing half-written is left in the cache.
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn synth_rejects_impossible_sizes_and_writes_nothing() {
    for (users, movies, ratings, why) in [
        ("0", "10", "10", "at least one user"),
        (
            "10",
            "10",
            "0",
            "at least one user, one movie and one rating",
        ),
        ("60000000", "10", "10", "at most 50000000 users"),
    ] {
        let out = scratch(&format!("synth-bad-{users}-{ratings}"));
        let run = Command::new(env!("CARGO_BIN_EXE_wgrec"))
            .args([
                "synth",
                "--users",
                users,
                "--movies",
                movies,
                "--ratings",
                ratings,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert_mentions(&stderr, &[why]);
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}
