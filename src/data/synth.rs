//! `wgrec synth`: synthetic ratings in a real MovieLens format, so tests and scale benchmarks need no
//! download. Ratings come from a latent-factor model (user and movie biases plus a dot product of
//! 8-dimensional factors plus noise); movies are drawn with Zipf-like popularity (weight 1/rank) and
//! users with a milder skew (1/rank^0.5), every user rating at least once when R >= U. Deterministic
//! for a given seed; ratings are streamed to disk, so memory does not grow with R. The ML-100K and ML-1M
//! formats also get a users file whose features follow each user's factors, so feature towers have
//! something to learn.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::output::{Commit, Output};

use crate::data::SplitMix64;

/// The most users or movies `write` accepts (their factors are held in memory: ~2.5 GB at this size).
const MAX_ENTITIES: u32 = 50_000_000;
/// Width of the latent factors.
const K: usize = 8;
/// Genres cycled through the movies file.
const GENRES: [&str; 6] = [
    "Action",
    "Comedy",
    "Drama",
    "Romance|Comedy",
    "Sci-Fi|Thriller",
    "Animation|Children's",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthFormat {
    /// `u.data` + `u.item`: integer ratings 1-5.
    Ml100k,
    /// `ratings.dat` + `movies.dat` (ML-1M's `::`-separated layout): integer ratings 1-5.
    Ml1m,
    /// `ratings.csv` + `movies.csv` (ml-latest / ML-25M layout): half-star ratings 0.5-5.
    Csv,
}

#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub users: u32,
    pub movies: u32,
    pub ratings: u64,
    pub out: PathBuf,
    pub format: SynthFormat,
    pub seed: u64,
}

/// The movies, ratings and (for formats that have one) users files `write` puts into `opts.out`
/// (created if missing), checked up front.
fn outputs(opts: &SynthOptions) -> Result<(Output, Output, Option<Output>)> {
    let (ratings_file, movies_file, users_file) = match opts.format {
        SynthFormat::Ml100k => ("u.data", "u.item", Some("u.user")),
        SynthFormat::Ml1m => ("ratings.dat", "movies.dat", Some("users.dat")),
        SynthFormat::Csv => ("ratings.csv", "movies.csv", None),
    };
    let check = |file| Output::check_in_dir("--out", &opts.out, file);
    Ok((
        check(movies_file)?,
        check(ratings_file)?,
        users_file.map(check).transpose()?,
    ))
}

/// Writes the movies and ratings files into `opts.out`; both are staged (streamed to temp files) and
/// then renamed into place together, so a failed run leaves no half-written data set behind.
pub fn write(opts: &SynthOptions) -> Result<()> {
    let (movies_out, ratings_out, users_out) = outputs(opts)?;
    if opts.users == 0 || opts.movies == 0 || opts.ratings == 0 {
        bail!("synth needs at least one user, one movie and one rating");
    }
    // Factors, biases and popularity tables take about 50 bytes per user and per movie.
    if opts.users.max(opts.movies) > MAX_ENTITIES {
        bail!("synth supports at most {MAX_ENTITIES} users and {MAX_ENTITIES} movies");
    }
    let mut rng = SplitMix64::new(opts.seed);
    let model = Model::new(opts.users, opts.movies, &mut rng);
    let mut commit = Commit::new();
    commit.add(movies_out.stage_with(|w| write_movies(w, opts.format, opts.movies, &mut rng))?);
    commit.add(ratings_out.stage_with(|w| write_ratings(w, opts, &model, &mut rng))?);
    // Last and without drawing from `rng`: the movies and ratings are those of a run without it.
    if let Some(out) = users_out {
        commit.add(out.stage_with(|w| write_users(w, opts.format, &model))?);
    }
    commit.finish()
}

/// ML-1M's age codes; ML-100K's file gets an age in years inside each group.
const AGE_CODES: [u32; 7] = [1, 18, 25, 35, 45, 50, 56];

/// ML-100K's occupations (`u.occupation`); ML-1M codes them 0..=20.
const OCCUPATIONS: [&str; 21] = [
    "administrator",
    "artist",
    "doctor",
    "educator",
    "engineer",
    "entertainment",
    "executive",
    "healthcare",
    "homemaker",
    "lawyer",
    "librarian",
    "marketing",
    "none",
    "other",
    "programmer",
    "retired",
    "salesman",
    "scientist",
    "student",
    "technician",
    "writer",
];

/// One line per user with features that follow the user's factors: gender from the sign of factor 0, the
/// age group from factor 1, the occupation from the largest of factors 2..8 (plus the id, so all
/// occupations occur), the zip code's first digit from factor 3.
fn write_users(
    w: &mut (impl Write + ?Sized),
    format: SynthFormat,
    model: &Model,
) -> std::io::Result<()> {
    let bucket = |x: f32, n: usize| {
        // Standard normal factors: evenly spaced cut points on [-1.5, 1.5].
        (((x + 1.5) / 3.0 * n as f32).floor().max(0.0) as usize).min(n - 1)
    };
    for (u, f) in model.user_factors.iter().enumerate() {
        let id = u + 1;
        let gender = if f[0] >= 0.0 { "M" } else { "F" };
        let age = bucket(f[1], AGE_CODES.len());
        let top = (2..K).max_by(|&a, &b| f[a].total_cmp(&f[b])).unwrap();
        let occupation = (3 * (top - 2) + id % 3) % OCCUPATIONS.len();
        let zip = format!("{}{:04}", bucket(f[3], 10), id % 10_000);
        match format {
            SynthFormat::Ml100k => {
                let years = AGE_CODES[age].max(7) + (id % 5) as u32;
                writeln!(w, "{id}|{years}|{gender}|{}|{zip}", OCCUPATIONS[occupation])?
            }
            SynthFormat::Ml1m => {
                writeln!(w, "{id}::{gender}::{}::{occupation}::{zip}", AGE_CODES[age])?
            }
            SynthFormat::Csv => unreachable!("ml-latest has no users file"),
        }
    }
    Ok(())
}

/// The title of movie `id`: a few with commas and quotes, so CSV writers and readers must quote.
pub fn title(id: u32) -> String {
    let year = 1920 + id % 100;
    if id.is_multiple_of(50) {
        format!("\"Quoted\" Movie {id} ({year})")
    } else if id.is_multiple_of(10) {
        format!("Movie {id}, The ({year})")
    } else {
        format!("Synthetic Movie {id} ({year})")
    }
}

fn write_movies(
    w: &mut (impl Write + ?Sized),
    format: SynthFormat,
    movies: u32,
    rng: &mut SplitMix64,
) -> std::io::Result<()> {
    if format == SynthFormat::Csv {
        writeln!(w, "movieId,title,genres")?;
    }
    for id in 1..=movies {
        let genre = GENRES[rng.below(GENRES.len() as u64) as usize];
        let title = title(id);
        match format {
            SynthFormat::Ml100k => {
                // u.item: id|title|release date|video release date|URL|19 genre flags.
                let flags = (0..19)
                    .map(|g| if g == id as usize % 19 { "|1" } else { "|0" })
                    .collect::<String>();
                writeln!(
                    w,
                    "{id}|{title}|01-Jan-{}||http://example.invalid/{id}{flags}",
                    1920 + id % 100
                )?;
            }
            SynthFormat::Ml1m => writeln!(w, "{id}::{title}::{genre}")?,
            SynthFormat::Csv => {
                if title.contains([',', '"']) {
                    writeln!(w, "{id},\"{}\",{genre}", title.replace('"', "\"\""))?;
                } else {
                    writeln!(w, "{id},{title},{genre}")?;
                }
            }
        }
    }
    Ok(())
}

/// The latent-factor model and the popularity tables.
struct Model {
    user_factors: Vec<[f32; K]>,
    user_bias: Vec<f32>,
    /// Rating timestamps of user u fall in [start, start + span).
    user_start: Vec<i64>,
    movie_factors: Vec<[f32; K]>,
    movie_bias: Vec<f32>,
    /// Cumulative popularity weights (Zipf over a random ranking), for inverse-CDF draws.
    user_cdf: Vec<f64>,
    movie_cdf: Vec<f64>,
}

impl Model {
    fn new(users: u32, movies: u32, rng: &mut SplitMix64) -> Self {
        let factors = |n: u32, rng: &mut SplitMix64| -> Vec<[f32; K]> {
            (0..n)
                .map(|_| std::array::from_fn(|_| normal(rng) as f32))
                .collect()
        };
        let biases = |n: u32, scale: f64, rng: &mut SplitMix64| -> Vec<f32> {
            (0..n).map(|_| (scale * normal(rng)) as f32).collect()
        };
        let user_factors = factors(users, rng);
        let user_bias = biases(users, 0.4, rng);
        let user_start = (0..users)
            .map(|_| 880_000_000 + rng.below(300_000_000) as i64)
            .collect();
        let movie_factors = factors(movies, rng);
        let movie_bias = biases(movies, 0.5, rng);
        Self {
            user_factors,
            user_bias,
            user_start,
            movie_factors,
            movie_bias,
            user_cdf: zipf_cdf(users, 0.5, rng),
            movie_cdf: zipf_cdf(movies, 1.0, rng),
        }
    }

    /// The noiseless score of (user, movie), centred near 3.5.
    fn score(&self, u: usize, m: usize) -> f64 {
        let dot: f32 = self.user_factors[u]
            .iter()
            .zip(&self.movie_factors[m])
            .map(|(a, b)| a * b)
            .sum();
        3.5 + f64::from(self.user_bias[u] + self.movie_bias[m]) + f64::from(dot) / (K as f64).sqrt()
    }
}

/// Cumulative weights 1/rank^s, the ranks a random permutation of the ids.
fn zipf_cdf(n: u32, s: f64, rng: &mut SplitMix64) -> Vec<f64> {
    let mut rank: Vec<u32> = (1..=n).collect();
    rng.shuffle(&mut rank);
    let mut total = 0.0;
    rank.iter()
        .map(|&r| {
            total += f64::from(r).powf(-s);
            total
        })
        .collect()
}

/// An index drawn with the weights behind `cdf`.
fn draw(cdf: &[f64], rng: &mut SplitMix64) -> usize {
    let x = f64::from(rng.next_f32()) * cdf[cdf.len() - 1];
    cdf.partition_point(|&c| c <= x).min(cdf.len() - 1)
}

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn write_ratings(
    w: &mut (impl Write + ?Sized),
    opts: &SynthOptions,
    model: &Model,
    rng: &mut SplitMix64,
) -> std::io::Result<()> {
    if opts.format == SynthFormat::Csv {
        writeln!(w, "userId,movieId,rating,timestamp")?;
    }
    for i in 0..opts.ratings {
        // The first U ratings give every user one; the rest follow the activity skew.
        let u = if i < u64::from(opts.users) {
            i as usize
        } else {
            draw(&model.user_cdf, rng)
        };
        let m = draw(&model.movie_cdf, rng);
        let noisy = model.score(u, m) + 0.5 * normal(rng);
        let time = model.user_start[u] + rng.below(3 * 365 * 86_400) as i64;
        let (user, movie) = (u + 1, m + 1);
        match opts.format {
            SynthFormat::Ml100k => {
                let stars = noisy.round().clamp(1.0, 5.0) as u32;
                writeln!(w, "{user}\t{movie}\t{stars}\t{time}")?;
            }
            SynthFormat::Ml1m => {
                let stars = noisy.round().clamp(1.0, 5.0) as u32;
                writeln!(w, "{user}::{movie}::{stars}::{time}")?;
            }
            SynthFormat::Csv => {
                let stars = ((noisy * 2.0).round() / 2.0).clamp(0.5, 5.0);
                writeln!(w, "{user},{movie},{stars:.1},{time}")?;
            }
        }
    }
    Ok(())
}
