//! MovieLens loading: finding the data directory, parsing the GroupLens files (`formats`),
//! building the Keras-style vocabularies, the train/test split (`split`) and its PRNG.

pub mod batches;
pub mod download;
pub mod features;
pub mod formats;
pub mod split;
pub mod synth;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use formats::{Format, NotFound};

/// Where ML-100K can be downloaded by hand (`--dataset ml-100k` fetches it into the cache).
const ML_100K_URL: &str = "https://files.grouplens.org/datasets/movielens/ml-100k.zip";

/// Ratings as vocabulary indices (0 = out-of-vocabulary), one entry per rating.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ratings {
    pub user: Vec<u32>,
    pub movie: Vec<u32>,
    pub rating: Vec<f32>,
}

impl Ratings {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

/// Keras StringLookup(mask_token=None): index 0 is OOV, then unique values sorted by bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocabulary {
    pub tokens: Vec<String>,
}

impl Vocabulary {
    /// Unique values sorted by their UTF-8 bytes, as `np.unique` sorts the byte strings the
    /// tutorial feeds to StringLookup. `str`'s `Ord` is exactly that byte order, so
    /// "1" < "10" < "100" < "2" and "Zorro" < "apple" < "Ámbar".
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut unique: Vec<&str> = values.into_iter().collect();
        unique.sort_unstable();
        unique.dedup();
        Self {
            tokens: unique.into_iter().map(str::to_owned).collect(),
        }
    }

    /// The 1-based index of `s`, or 0 (the OOV row) when absent.
    pub fn lookup(&self, s: &str) -> u32 {
        self.tokens
            .binary_search_by(|t| t.as_str().cmp(s))
            .map_or(0, |i| i as u32 + 1)
    }

    /// Embedding rows needed: one per token plus the OOV row.
    pub fn rows(&self) -> usize {
        self.tokens.len() + 1
    }

    /// The token at `index`; `None` for the OOV index 0 and out-of-range indices.
    pub fn token(&self, index: u32) -> Option<&str> {
        let i = usize::try_from(index.checked_sub(1)?).ok()?;
        self.tokens.get(i).map(String::as_str)
    }
}

/// MovieLens 100K, ready for the two-tower model.
/// A MovieLens data set (or a synthetic one in a MovieLens format), ready for the two-tower model.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// User ids as written in the ratings file, from all ratings (943 in ml-100k).
    pub users: Vocabulary,
    /// Unique movie titles from the movies file (1,664 unique of 1,682 rows in ml-100k).
    pub titles: Vocabulary,
    /// Title index of every movies-file row, in file order (1,682 in ml-100k; duplicate titles kept),
    /// i.e. the candidate set the retrieval task scores against.
    pub candidates: Vec<u32>,
    pub train: Ratings,
    pub test: Ratings,
    /// Where the data came from and how it was split, for logs and reports.
    pub description: String,
    /// The folder and format the data set was read from (None: the built-in sample), for its side
    /// features (`features::load`).
    pub source: Option<(PathBuf, Format)>,
}

/// How the ratings are divided into train and test when there is no `--split-dir` (in checkpoints:
/// "random", "temporal" or "stratified").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// TFRS's split: shuffle all ratings with the seed, the first 80% train.
    #[default]
    Random,
    /// Per user: the latest 20% (rounded down) of each user's ratings by timestamp are the test set.
    Temporal,
    /// Microsoft Recommenders' benchmark split: per user, the user's ratings shuffled with the seed, 75%
    /// (`--test-fraction`) to training ([`split::stratified`]).
    Stratified,
}

/// The test fraction of [`SplitKind::Stratified`] without `--test-fraction` (Microsoft's ratio 0.75).
pub const STRATIFIED_TEST_FRACTION: f64 = 0.25;

/// One fold of a cross-validation (`wgrec cv`), replacing `--split` and `--split-dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fold {
    /// One of the folds shipped with ML-100K: `NAME.base` is training, `NAME.test` the test set (u1 .. u5,
    /// ua, ub), read from the data directory.
    Named(String),
    /// Fold `index` (0-based) of `folds` seeded random folds of all ratings ([`split::fold`]).
    Random { folds: usize, index: usize },
}

impl Fold {
    /// "u1", or "2/5" (1-based) for a random fold.
    pub fn label(&self) -> String {
        match self {
            Fold::Named(name) => name.clone(),
            Fold::Random { folds, index } => format!("{}/{folds}", index + 1),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DataOptions {
    /// `--data-dir`: see [`find_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// `--split-dir`: holds train.data and test.data in u.data format.
    pub split_dir: Option<PathBuf>,
    /// Seed of the random 80/20 split used when `split_dir` is `None`.
    pub seed: u64,
    /// `--split`: ignored with `split_dir`.
    pub split: SplitKind,
    /// `--dataset`: a release name from [`download::RELEASES`](crate::data::download::RELEASES), fetched into
    /// the cache when missing, or `"sample"`, the synthetic sample built into the binary.
    pub dataset: Option<String>,
    /// `--cache-dir`: default [`cache_root`].
    pub cache_dir: Option<PathBuf>,
    /// Base URL of the MovieLens archives (`WGREC_MIRROR`); default [`download::GROUPLENS`](crate::data::download::GROUPLENS).
    pub mirror: Option<String>,
    /// `--offline` / `WGREC_OFFLINE=1`: never download; only the cache and the given directories are used.
    pub offline: bool,
    /// `--test-fraction` of the stratified split (None: [`STRATIFIED_TEST_FRACTION`]).
    pub test_fraction: Option<f64>,
    /// A cross-validation fold: replaces `split` and `split_dir`.
    pub fold: Option<Fold>,
}

impl DataOptions {
    /// The stratified split's test fraction.
    pub fn stratified_test_fraction(&self) -> f64 {
        self.test_fraction.unwrap_or(STRATIFIED_TEST_FRACTION)
    }

    /// Refuses combinations that have no meaning: a test fraction outside (0, 1) or without the stratified
    /// split, a fold with a split directory.
    pub fn validate(&self) -> Result<()> {
        if let Some(f) = self.test_fraction {
            if !(f.is_finite() && f > 0.0 && f < 1.0) {
                bail!("--test-fraction must be in (0, 1), got {f}");
            }
            if self.split != SplitKind::Stratified
                || self.split_dir.is_some()
                || self.fold.is_some()
            {
                bail!("--test-fraction applies to --split stratified only");
            }
        }
        if let Some(Fold::Random { folds, index }) = &self.fold {
            if *folds < 2 || index >= folds {
                bail!("a cross-validation needs at least 2 folds (fold {index} of {folds})");
            }
        }
        if self.fold.is_some() && self.split_dir.is_some() {
            bail!("--split-dir does not combine with cross-validation folds");
        }
        Ok(())
    }
}

/// The built-in synthetic sample (`assets/sample`, made by `wgrec synth`; see assets/README.md).
const SAMPLE_RATINGS: &[u8] = include_bytes!("../../assets/sample/ratings.csv");
pub(crate) const SAMPLE_MOVIES: &[u8] = include_bytes!("../../assets/sample/movies.csv");

/// Loads the data set `opts` points to: `opts.dataset` (downloaded into the cache if needed), else
/// [`find_data_dir`]`(opts.data_dir)`, in whichever MovieLens format the directory holds.
///
/// Users come from all ratings and titles from the movies file, so the vocabularies do not depend
/// on the split. With `opts.split_dir` the split is read from its train.data and test.data.
/// Otherwise, for [`SplitKind::Random`], the ratings in file order are shuffled by
/// [`SplitMix64::new`]`(opts.seed)`[`.shuffle`](SplitMix64::shuffle) and the first 80%
/// (rounded down: 80,000 of 100,000) become the training set, the rest the test set.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    opts.validate()?;
    let (dir, format) = match opts.dataset.as_deref() {
        Some("sample") => {
            let place = Path::new("<built-in sample>");
            let (ratings, movies) = (place.join("ratings.csv"), place.join("movies.csv"));
            return load_from(
                Format::Csv,
                "synthetic sample (built in)".into(),
                None,
                (&movies, SAMPLE_MOVIES),
                (&ratings, SAMPLE_RATINGS, SAMPLE_RATINGS.len() as u64),
                opts,
            );
        }
        Some(name) => {
            let release = crate::data::download::release(name)?;
            let root = match &opts.cache_dir {
                Some(dir) => dir.clone(),
                None => cache_root().ok_or_else(|| {
                    anyhow!("no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir")
                })?,
            };
            (fetch(release, &root, opts)?, release.format)
        }
        None => {
            let cache = opts.cache_dir.clone().or_else(cache_root);
            let dir = match find_data_dir_in(opts.data_dir.as_deref(), cache.as_deref()) {
                Ok(dir) => dir,
                Err(not_found) => match first_use(opts, cache.as_deref()) {
                    // Nothing given and nothing cached: ML-100K, as tfds.load downloads on first use.
                    Some(root) if !opts.offline => {
                        let release = crate::data::download::release("ml-100k")?;
                        crate::progress::note(format!(
                            "MovieLens data not found: downloading ML-100K from {} into {} \
                             (--offline or WGREC_OFFLINE=1 to refuse)",
                            crate::data::download::url(release, mirror(opts)),
                            root.join("ml-100k").display()
                        ));
                        fetch(release, root, opts)?
                    }
                    Some(_) => bail!(
                        "{not_found:#}\nML-100K was not downloaded: offline (--offline or WGREC_OFFLINE)"
                    ),
                    None => return Err(not_found),
                },
            };
            let format = formats::detect(&dir).map_err(|why| match why {
                NotFound::Missing(why) => anyhow!("{}: {why}", dir.display()),
                NotFound::Broken(why) => anyhow!(why),
            })?;
            (dir, format)
        }
    };
    let (ratings_file, movies_file) = format.files();
    let (ratings, movies) = (dir.join(ratings_file), dir.join(movies_file));
    let size = std::fs::metadata(&ratings).map(|m| m.len()).unwrap_or(0);
    load_from(
        format,
        format!("{} at {}", format.name(), dir.display()),
        Some(&dir),
        (&movies, formats::open(&movies)?),
        (&ratings, formats::open(&ratings)?, size),
        opts,
    )
}

/// `release` in the cache under `root`, downloaded from the mirror first unless it is there (or offline).
fn fetch(
    release: &crate::data::download::Release,
    root: &Path,
    opts: &DataOptions,
) -> Result<PathBuf> {
    crate::data::download::ensure(release, root, mirror(opts), opts.offline)
}

fn mirror(opts: &DataOptions) -> &str {
    opts.mirror
        .as_deref()
        .unwrap_or(crate::data::download::GROUPLENS)
}

/// The cache root when nothing points at data (no `--data-dir`, `WGREC_DATA_DIR` or `--dataset`) and the
/// cache has no `ml-100k` folder with anything in it: then the default data set is downloaded there.
fn first_use<'a>(opts: &DataOptions, cache: Option<&'a Path>) -> Option<&'a Path> {
    let env = std::env::var_os("WGREC_DATA_DIR").filter(|v| !v.is_empty());
    let root = cache?;
    let dir = root.join("ml-100k");
    let empty = std::fs::read_dir(&dir).map_or(!dir.exists(), |mut d| d.next().is_none());
    (opts.data_dir.is_none() && opts.dataset.is_none() && env.is_none() && empty).then_some(root)
}

/// Parses the movies and ratings streams, builds the vocabularies and splits (`dir`: where they came from,
/// for ML-100K's named folds; None for the built-in sample).
fn load_from(
    format: Format,
    place: String,
    dir: Option<&Path>,
    (movies_path, movies_reader): (&Path, impl BufRead),
    (ratings_path, ratings_reader, size): (&Path, impl BufRead, u64),
    opts: &DataOptions,
) -> Result<Dataset> {
    let _spinner = crate::progress::spinner(format!("loading {place}"));
    let movies = formats::read_movies(format, movies_path, movies_reader)?;
    let movies_file = file_name(movies_path);
    let keep_time =
        opts.split_dir.is_none() && opts.fold.is_none() && opts.split == SplitKind::Temporal;
    let mut users = formats::Users::default();
    let mut all = formats::read_ratings(
        format,
        ratings_path,
        ratings_reader,
        size,
        &movies.movie_of,
        &movies_file,
        &mut users,
        keep_time,
    )?;
    let vocab = users.vocabulary();
    let remap = users.remap(&vocab);
    drop(users);
    for u in &mut all.user {
        *u = remap[*u as usize];
    }

    // A split read from u.data-format files: --split-dir's train.data and test.data, or a named fold's.
    let read = |path: &Path| -> Result<Ratings> {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut ids = formats::Users::default();
        let cols = formats::read_ratings(
            Format::Ml100k,
            path,
            formats::open(path)?,
            size,
            &movies.movie_of,
            &movies_file,
            &mut ids,
            false,
        )?;
        let remap = ids.remap(&vocab);
        let unknown = remap.iter().filter(|&&r| r == 0).count();
        if unknown > 0 {
            let rows = cols
                .user
                .iter()
                .filter(|&&u| remap[u as usize] == 0)
                .count();
            eprintln!(
                "note: {}: {unknown} users ({rows} ratings) are not in {}; they use the \
                 out-of-vocabulary row, as TFRS's StringLookup does",
                path.display(),
                file_name(ratings_path)
            );
        }
        Ok(Ratings {
            user: cols.user.iter().map(|&u| remap[u as usize]).collect(),
            movie: cols.movie,
            rating: cols.rating,
        })
    };
    let (train, test, how) = match (&opts.fold, &opts.split_dir, opts.split) {
        (Some(Fold::Named(name)), _, _) => {
            drop(all);
            let Some(dir) = dir.filter(|_| format == Format::Ml100k) else {
                bail!(
                    "fold {name} is one of ML-100K's own folds ({name}.base, {name}.test); {place} has \
                     none: use random folds (--folds N)"
                );
            };
            let (base, test) = (
                dir.join(format!("{name}.base")),
                dir.join(format!("{name}.test")),
            );
            (read(&base)?, read(&test)?, format!("ML-100K fold {name}"))
        }
        (Some(Fold::Random { folds, index }), _, _) => {
            let (train, test) = split::fold(all, *folds, *index, opts.seed);
            let how = format!("random fold {} of {folds}, seed {}", index + 1, opts.seed);
            (train, test, how)
        }
        (None, Some(split), _) => {
            drop(all);
            (
                read(&split.join("train.data"))?,
                read(&split.join("test.data"))?,
                format!("split from {}", split.display()),
            )
        }
        (None, None, SplitKind::Random) => {
            let mut rng = SplitMix64::new(opts.seed);
            // The same swaps as shuffling whole rows, done column by column in place.
            rng.permute(all.len(), |i, j| {
                all.user.swap(i, j);
                all.movie.swap(i, j);
                all.rating.swap(i, j);
            });
            let cut = all.len() * 4 / 5;
            let test = Ratings {
                user: all.user.split_off(cut),
                movie: all.movie.split_off(cut),
                rating: all.rating.split_off(cut),
            };
            let train = Ratings {
                user: all.user,
                movie: all.movie,
                rating: all.rating,
            };
            (
                train,
                test,
                format!("random 80/20 split, seed {}", opts.seed),
            )
        }
        (None, None, SplitKind::Temporal) => {
            let (train, test) = split::temporal(all, vocab.rows());
            (train, test, "per-user temporal 80/20 split".into())
        }
        (None, None, SplitKind::Stratified) => {
            let f = opts.stratified_test_fraction();
            let (train, test) = split::stratified(all, vocab.rows(), f, opts.seed);
            let how = format!(
                "per-user stratified {}/{} split, seed {}",
                100.0 - f * 100.0,
                f * 100.0,
                opts.seed
            );
            (train, test, how)
        }
    };
    let description = format!(
        "{place}, {how} ({} train / {} test)",
        train.len(),
        test.len()
    );
    Ok(Dataset {
        users: vocab,
        titles: movies.titles,
        candidates: movies.candidates,
        train,
        test,
        description,
        source: dir.map(|d| (d.to_path_buf(), format)),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Finds the data directory: one holding a MovieLens format that [`formats::detect`] recognises.
///
/// The first source that is set decides where to look: `flag` (`--data-dir`), else the
/// `WGREC_DATA_DIR` environment variable, else the cache directory
/// `$XDG_CACHE_HOME/wgrec/ml-100k` (or `$HOME/.cache/wgrec/ml-100k`). An explicit setting
/// never silently falls back to another place. Each place may also be a directory that
/// contains `ml-100k/` (such as the folder the zip was unpacked in), or one of the other release
/// folders (`ml-1m/`, `ml-latest-small/`, `ml-20m/`, `ml-25m/`, in that order). The error lists
/// every place looked at and how to provide the data.
pub fn find_data_dir(flag: Option<&Path>) -> Result<PathBuf> {
    find_data_dir_in(flag, cache_root().as_deref())
}

/// [`find_data_dir`] with the cache root given (`--cache-dir`).
fn find_data_dir_in(flag: Option<&Path>, cache: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os("WGREC_DATA_DIR").filter(|v| !v.is_empty());
    let explicit = match (flag, env) {
        (Some(flag), _) => Some((flag.to_path_buf(), "--data-dir")),
        (None, Some(env)) => Some((PathBuf::from(env), "WGREC_DATA_DIR")),
        (None, None) => None,
    };
    locate(explicit, cache.map(|c| c.join("ml-100k")))
}

/// `wgrec` under the XDG cache directory, if there is a home to put it in.
pub fn cache_root() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute()); // the XDG spec says to ignore relative paths
    let base = xdg.or_else(|| {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(PathBuf::from(home).join(".cache"))
    })?;
    Some(base.join("wgrec"))
}

/// Release folders a data directory may hold, looked at in this order after the directory itself.
const RELEASE_FOLDERS: [&str; 5] = ["ml-100k", "ml-1m", "ml-latest-small", "ml-20m", "ml-25m"];

/// [`find_data_dir`] without the environment, so tests can drive it.
fn locate(explicit: Option<(PathBuf, &str)>, cache: Option<PathBuf>) -> Result<PathBuf> {
    let (base, source) = match explicit {
        Some((dir, source)) => (Some(dir), source),
        None => (cache.clone(), "cache directory"),
    };
    let mut looked = Vec::new();
    if let Some(base) = base {
        let mut places = vec![(base.clone(), format!(" (from {source})"))];
        for (i, folder) in RELEASE_FOLDERS.iter().enumerate() {
            let dir = base.join(folder);
            // Only ml-100k is listed when absent: the message stays short.
            if i == 0 || dir.exists() {
                places.push((dir, String::new()));
            }
        }
        for (dir, from) in places {
            match formats::detect(&dir) {
                Ok(_) => return Ok(dir),
                Err(NotFound::Missing(why)) => {
                    looked.push(format!("  {}: {why}{from}", dir.display()))
                }
                Err(NotFound::Broken(why)) => bail!(why),
            }
        }
    } else {
        looked.push("  no cache directory: neither XDG_CACHE_HOME nor HOME is set".into());
    }
    let unzip = match &cache {
        Some(c) => {
            let parent = c.parent().unwrap_or(c);
            format!("unzip it in {} (giving {})", parent.display(), c.display())
        }
        None => "unzip it in $XDG_CACHE_HOME/wgrec or $HOME/.cache/wgrec".into(),
    };
    bail!(
        "MovieLens data not found; looked in:\n{}\n\
         Provide it in one of these ways:\n  \
         --data-dir DIR       a directory holding u.data and u.item (ML-100K), ratings.dat and movies.dat\n                       \
         (ML-1M) or ratings.csv and movies.csv (ml-latest-small, ML-20M, ML-25M), or a release folder\n  \
         WGREC_DATA_DIR=DIR   the same, from the environment\n  \
         --dataset NAME       download a release into the cache (ml-100k, ml-1m, ml-latest-small, ml-25m)\n  \
         --dataset sample     the small synthetic sample built into wgrec, for a quick offline demo\n  \
         download {ML_100K_URL} and {unzip}",
        looked.join("\n"),
    )
}

/// SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference `splitmix64.c`), the generator
/// behind the random split, initialisation and batch shuffling. Reproduce it anywhere:
///
/// ```text
/// state += 0x9E3779B97F4A7C15              (all arithmetic wraps mod 2^64)
/// z = state
/// z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
/// z = (z ^ (z >> 27)) * 0x94D049BB133111EB
/// return z ^ (z >> 31)
/// ```
///
/// The state starts at the seed, so seed 0 first yields 0xE220A8397B1DCDAF.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The current state: `SplitMix64::new(state)` continues the stream from here (checkpoints).
    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` without modulo bias (Lemire 2019): the high 64 bits of
    /// `next_u64() * n`, drawing again while the low 64 bits fall below `2^64 mod n`.
    /// Returns 0 for `n == 0` (still consuming one draw).
    pub fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n; // = 2^64 mod n
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform in [0, 1): the top 24 bits of `next_u64()` divided by 2^24, exact in f32.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32
    }

    /// Fisher–Yates from the end: for i = n-1 down to 1, swap `xs[i]` with `xs[below(i + 1)]`.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        self.permute(xs.len(), |i, j| xs.swap(i, j));
    }

    /// [`shuffle`](Self::shuffle)'s swaps on a sequence of length `n` held elsewhere (parallel
    /// columns): `swap(i, j)` for i = n-1 down to 1.
    pub fn permute(&mut self, n: usize, mut swap: impl FnMut(usize, usize)) {
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            swap(i, j);
        }
    }
}

/// The integration tests' skip recorder, for the tests below (scripts/test.sh lists the skips).
#[cfg(test)]
#[path = "../../tests/common/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, unique per test and process.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgrec-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A tiny ml-100k lookalike with the given u.item and u.data bytes.
    fn fixture(name: &str, item: &[u8], data: &[u8]) -> PathBuf {
        let dir = scratch(name);
        std::fs::write(dir.join("u.item"), item).unwrap();
        std::fs::write(dir.join("u.data"), data).unwrap();
        dir
    }

    const ITEMS: &[u8] = b"1|Toy Story (1995)|01-Jan-1995||url|0\n2|GoldenEye (1995)|x\n";

    fn load_dir(dir: PathBuf) -> Result<Dataset> {
        load(&DataOptions {
            data_dir: Some(dir),
            ..Default::default()
        })
    }

    fn load_fixture(name: &str, data: &[u8]) -> Result<Dataset> {
        load_dir(fixture(name, ITEMS, data))
    }

    /// The real data's parent folder (holding ml-100k/ and maybe ml-100k-split/).
    fn real_data() -> Option<PathBuf> {
        let candidates = [
            std::env::var_os("WGREC_DATA_DIR").map(PathBuf::from),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
            Some(PathBuf::from("/work/shared/data")),
        ];
        let found = candidates
            .into_iter()
            .flatten()
            .find_map(|dir| locate(Some((dir, "test")), None).ok())
            .and_then(|dir| Some(dir.parent()?.to_path_buf()));
        if found.is_none() {
            skip::skip("no ml-100k (set WGREC_DATA_DIR or put it in ../shared/data)");
        }
        found
    }

    #[test]
    fn vocabulary_sorts_by_bytes_with_oov_zero() {
        let v = Vocabulary::from_values(["2", "10", "1", "100", "2", "Ámbar", "apple", "Zorro"]);
        assert_eq!(v.tokens, ["1", "10", "100", "2", "Zorro", "apple", "Ámbar"]);
        assert_eq!(v.rows(), 8);
        assert_eq!(v.lookup("1"), 1);
        assert_eq!(v.lookup("2"), 4);
        assert_eq!(v.lookup("Ámbar"), 7);
        assert_eq!(v.lookup("3"), 0);
        assert_eq!(v.token(0), None);
        assert_eq!(v.token(4), Some("2"));
        assert_eq!(v.token(8), None);
        assert_eq!(v.token(u32::MAX), None);
        for i in 1..v.rows() as u32 {
            assert_eq!(v.lookup(v.token(i).unwrap()), i);
        }
    }

    #[test]
    fn splitmix64_matches_reference_outputs() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn splitmix64_helpers_stay_in_range() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(rng.below(1), 0);
        assert_eq!(rng.below(0), 0);
        assert!(rng.below(u64::MAX) < u64::MAX);
        assert!((0..10_000).all(|_| (0.0..1.0).contains(&rng.next_f32())));

        let shuffled = |seed| {
            let mut xs: Vec<u32> = (0..100).collect();
            SplitMix64::new(seed).shuffle(&mut xs);
            xs
        };
        let (a, b) = (shuffled(1), shuffled(2));
        assert_eq!(a, shuffled(1));
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        SplitMix64::new(0).shuffle::<u8>(&mut []); // empty slices are fine
    }

    #[test]
    fn u_item_is_decoded_as_latin1() {
        let item =
            b"1|Se\xf1orita (1999)|x\n2|Mis\xe9rables, Les (1995)|x\n3|Se\xf1orita (1999)|x\n";
        let data = b"1\t1\t5\t0\n2\t2\t4\t0\n3\t3\t3\t0\n";
        let dir = fixture("latin1", item, data);
        let ds = load_dir(dir).unwrap();
        assert_eq!(
            ds.titles.tokens,
            ["Misérables, Les (1995)", "Señorita (1999)"]
        );
        // Duplicate titles keep their candidate rows but share one index.
        assert_eq!(ds.candidates, [2, 1, 2]);
    }

    #[test]
    fn blank_lines_crlf_and_oov_users_are_handled() {
        let dir = fixture("crlf", ITEMS, b"\r\n1\t1\t5\t0\r\n\n2\t2\t0.5\t9\r\n");
        let split = scratch("crlf-split");
        std::fs::write(split.join("train.data"), "1\t2\t3\t0\n").unwrap();
        std::fs::write(split.join("test.data"), "42\t1\t4\t0\n").unwrap();
        let ds = load(&DataOptions {
            data_dir: Some(dir),
            split_dir: Some(split),
            seed: 0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ds.users.tokens, ["1", "2"]);
        assert_eq!(ds.titles.tokens, ["GoldenEye (1995)", "Toy Story (1995)"]);
        assert_eq!(ds.train.user, [1]);
        assert_eq!(ds.train.movie, [1]);
        assert_eq!(ds.train.rating, [3.0]);
        assert_eq!(ds.test.user, [0]); // user 42 never appears in u.data
        assert_eq!(ds.test.movie, [2]);
        assert!(
            ds.description.contains("(1 train / 1 test)"),
            "{}",
            ds.description
        );
    }

    #[test]
    fn malformed_lines_report_file_line_and_text() {
        let cases: [(&str, &[u8], &str); 7] = [
            (
                "fields",
                b"1\t1\t5\t0\n\n1\t2\n",
                "u.data:3: expected 4 tab-separated fields (user, item, rating, timestamp), \
                 found 2: \"1\\t2\"",
            ),
            (
                "item",
                b"1\tx\t5\t0\n",
                "u.data:1: item id \"x\" is not a whole number",
            ),
            (
                "unknown",
                b"1\t1\t5\t0\n1\t99\t5\t0\n",
                "u.data:2: item id 99 is not in u.item",
            ),
            (
                "rating",
                b"1\t1\t6\t0\n",
                "u.data:1: rating \"6\" is not a number in [0, 5]",
            ),
            (
                "nan",
                b"1\t1\tNaN\t0\n",
                "u.data:1: rating \"NaN\" is not a number in [0, 5]",
            ),
            (
                "time",
                b"1\t1\t5\tnoon\n",
                "u.data:1: timestamp \"noon\" is not an integer",
            ),
            ("utf8", b"\xff\t1\t5\t0\n", "u.data:1: not valid UTF-8"),
        ];
        for (name, data, expected) in cases {
            let msg = format!("{:#}", load_fixture(name, data).unwrap_err());
            assert!(msg.contains(expected), "{name}: {msg}");
        }

        // Long lines are cut to 200 characters (not bytes: é is two).
        let long = format!("1\t{}\n", "é".repeat(500));
        let msg = format!("{:#}", load_fixture("long", long.as_bytes()).unwrap_err());
        assert!(msg.contains("u.data:1: expected 4"), "{msg}");
        assert_eq!(msg.matches('é').count(), 198, "{msg}"); // "1\t" takes two
        assert!(msg.ends_with("\"..."), "{msg}");

        let dir = fixture("item", b"1|Toy Story (1995)\nabc|Heat (1995)\n", b"");
        let msg = format!("{:#}", load_dir(dir).unwrap_err());
        assert!(
            msg.contains("u.item:2: movie id \"abc\" is not a whole number: \"abc|Heat (1995)\""),
            "{msg}"
        );

        let dir = fixture("dup", b"1|A|x\n1|B|x\n", b"");
        let msg = format!("{:#}", load_dir(dir).unwrap_err());
        assert!(
            msg.contains("u.item:2: movie id 1 appears more than once"),
            "{msg}"
        );
    }

    #[test]
    fn random_split_is_a_shuffle_of_whole_rows() {
        // Column-wise in-place swaps must give exactly what shuffling (user, movie, rating) rows did.
        let items: String = (1..=9).map(|m| format!("{m}|T{m}|x\n")).collect();
        let data: String = (0..57)
            .map(|i| format!("{}\t{}\t{}\t{i}\n", i % 11 + 1, i % 9 + 1, i % 5 + 1))
            .collect();
        let ds = load_dir(fixture("rows", items.as_bytes(), data.as_bytes())).unwrap();
        let mut rows: Vec<(String, u32, f32)> = (0..57)
            .map(|i| ((i % 11 + 1).to_string(), i % 9 + 1, (i % 5 + 1) as f32))
            .collect();
        SplitMix64::new(0).shuffle(&mut rows);
        let want: Vec<(u32, u32, f32)> = rows
            .iter()
            .map(|(u, m, r)| (ds.users.lookup(u), ds.titles.lookup(&format!("T{m}")), *r))
            .collect();
        let got: Vec<(u32, u32, f32)> = [&ds.train, &ds.test]
            .iter()
            .flat_map(|s| (0..s.len()).map(|i| (s.user[i], s.movie[i], s.rating[i])))
            .collect();
        assert_eq!(got, want);
        assert_eq!(ds.train.len(), 57 * 4 / 5);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = fixture("missing", ITEMS, b"1\t1\t5\t0\n");
        let split = scratch("missing-split");
        let err = load(&DataOptions {
            data_dir: Some(dir),
            split_dir: Some(split.clone()),
            seed: 0,
            ..Default::default()
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&split.join("train.data").display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn data_dir_discovery() {
        // A folder holding ml-100k/ resolves to that subfolder.
        let parent = scratch("discover");
        let inner = parent.join("ml-100k");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(inner.join("u.data"), "").unwrap();
        std::fs::write(inner.join("u.item"), "").unwrap();
        assert_eq!(
            locate(Some((parent.clone(), "--data-dir")), None).unwrap(),
            inner
        );
        assert_eq!(locate(None, Some(inner.clone())).unwrap(), inner);

        // Nothing found: every place is listed with the ways to provide the data.
        let empty = scratch("discover-empty");
        let cache = empty.join("cache/wgrec/ml-100k");
        let msg = locate(Some((empty.clone(), "--data-dir")), Some(cache.clone()))
            .unwrap_err()
            .to_string();
        for needle in [
            format!("{}: no u.data or u.item (from --data-dir)", empty.display()),
            format!("{}: no such directory", empty.join("ml-100k").display()),
            "--data-dir DIR".into(),
            "WGREC_DATA_DIR=DIR".into(),
            ML_100K_URL.into(),
            format!("unzip it in {}", empty.join("cache/wgrec").display()),
        ] {
            assert!(msg.contains(&needle), "missing {needle:?} in:\n{msg}");
        }
        let msg = locate(None, None).unwrap_err().to_string();
        assert!(
            msg.contains("neither XDG_CACHE_HOME nor HOME is set"),
            "{msg}"
        );
    }

    #[test]
    fn real_ml_100k() {
        let Some(root) = real_data() else { return };
        let with_seed = |seed| {
            load(&DataOptions {
                data_dir: Some(root.clone()),
                split_dir: None,
                seed,
                ..Default::default()
            })
            .unwrap()
        };
        let ds = with_seed(42);
        assert_eq!(ds.users.tokens.len(), 943);
        assert_eq!(ds.users.rows(), 944);
        assert_eq!(ds.titles.tokens.len(), 1_664);
        assert_eq!(ds.candidates.len(), 1_682);
        assert_eq!((ds.train.len(), ds.test.len()), (80_000, 20_000));
        assert!(ds.train.user.iter().chain(&ds.test.user).all(|&u| u > 0));
        assert!(ds.train.movie.iter().all(|&m| m > 0 && m < 1_665));
        assert_eq!(ds.users.token(1), Some("1"));
        assert_eq!(ds.users.token(2), Some("10"));
        // u.item's Latin-1 titles (it has é, è, Á and ö, but no ñ).
        for title in [
            "Misérables, Les (1995)",
            "Á köldum klaka (Cold Fever) (1994)",
        ] {
            assert_ne!(ds.titles.lookup(title), 0, "{title}");
        }
        // Movie ids 266 and 680 are both "Kull the Conqueror (1997)".
        assert_eq!(ds.candidates[265], ds.candidates[679]);

        // Deterministic per seed, different across seeds, same multiset of ratings.
        let again = with_seed(42);
        assert_eq!((&again.train, &again.test), (&ds.train, &ds.test));
        let other = with_seed(43);
        assert_ne!(other.train, ds.train);
        let sum = |d: &Dataset| d.train.rating.iter().chain(&d.test.rating).sum::<f32>();
        assert_eq!(sum(&other), sum(&ds));

        // Side features: every user has its four fields, every title but "unknown" a decade, 19 genres.
        let dir = root.join("ml-100k");
        let open = |f: &str| formats::open(&dir.join(f)).unwrap();
        let users = features::read_users(
            Format::Ml100k,
            &dir.join("u.user"),
            open("u.user"),
            &ds.users,
        )
        .unwrap();
        for field in &users.fields {
            assert!(
                (1..ds.users.rows()).all(|u| field.tokens(u).len() == 1),
                "{}",
                field.name
            );
        }
        assert_eq!(users.field("gender").unwrap().vocab.tokens, ["F", "M"]);
        assert_eq!(users.field("occupation").unwrap().vocab.tokens.len(), 21);
        let movies = features::read_movies(
            Format::Ml100k,
            &dir.join("u.item"),
            open("u.item"),
            &ds.titles,
        )
        .unwrap();
        assert_eq!(movies.field("genres").unwrap().vocab.tokens.len(), 19);
        let decade = movies.field("decade").unwrap();
        let undated: Vec<&str> = (1..ds.titles.rows())
            .filter(|&t| decade.tokens(t).is_empty())
            .map(|t| ds.titles.token(t as u32).unwrap())
            .collect();
        assert_eq!(undated, ["unknown"]);

        // ML-100K's own fold u1 (80,000 / 20,000), and Microsoft's stratified split: every user (each has
        // at least 20 ratings) keeps round(0.75 n) of their ratings in training.
        let u1 = load(&DataOptions {
            data_dir: Some(root.clone()),
            fold: Some(Fold::Named("u1".into())),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((u1.train.len(), u1.test.len()), (80_000, 20_000));
        assert_eq!(u1.users, ds.users);
        let strat = load(&DataOptions {
            data_dir: Some(root.clone()),
            split: SplitKind::Stratified,
            seed: 42,
            ..Default::default()
        })
        .unwrap();
        let per_user = |r: &Ratings| {
            let mut n = vec![0usize; ds.users.rows()];
            r.user.iter().for_each(|&u| n[u as usize] += 1);
            n
        };
        let (tr, te) = (per_user(&strat.train), per_user(&strat.test));
        for u in 1..ds.users.rows() {
            let n = tr[u] + te[u];
            assert!(n >= 20, "user {u}");
            assert_eq!(
                tr[u],
                (0.75 * n as f64).round_ties_even() as usize,
                "user {u}"
            );
        }
        assert_eq!(strat.train.len() + strat.test.len(), 100_000);
        assert!(
            strat
                .description
                .contains("per-user stratified 75/25 split, seed 42"),
            "{}",
            strat.description
        );

        let split = root.join("ml-100k-split");
        if !split.is_dir() {
            skip::skip(&format!("the fixed split: no {}", split.display()));
            return;
        }
        let fixed = load(&DataOptions {
            data_dir: Some(root.clone()),
            split_dir: Some(split),
            seed: 0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!((fixed.train.len(), fixed.test.len()), (80_000, 20_000));
        assert_eq!(fixed.users, ds.users);
        assert_eq!(fixed.titles, ds.titles);
        assert!(fixed.description.contains("(80000 train / 20000 test)"));
    }
}
