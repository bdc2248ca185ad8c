//! What a run is asked to do: the training options (TFRS's tutorial by default), the opt-in tweaks, and the
//! rules they obey, checked once when the options are built.

use crate::data::batches::{batch_of, Batch, Columns};
use crate::data::Ratings;
use anyhow::{bail, Result};

/// The largest training or evaluation batch. Some kernels loop, in one invocation, over the rows of one
/// user or movie in a batch; Mesa 22.3's llvmpipe silently ends an invocation's loops after 65,535 iterations in all
/// (Mesa's LP_MAX_TGSI_LOOP_ITERATIONS), so batches stay well below that.
pub const MAX_BATCH: usize = 32768;

/// The range of --temperature: below 0.01 the logits u . m / T of trained embeddings overflow exp's f32 range
/// in the softmax's stabilised sums far too easily; above 100 every softmax is flat.
pub const MIN_TEMPERATURE: f32 = 0.01;
pub const MAX_TEMPERATURE: f32 = 100.0;

/// The largest loss weight accepted (the recipes use up to 4).
pub const MAX_TASK_WEIGHT: f32 = 10_000.0;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainOptions {
    pub rating_weight: f32,
    pub retrieval_weight: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub seed: u64,
    /// Redraw the batches every epoch (the tutorial's `cache()` keeps the first epoch's batches).
    pub reshuffle: bool,
    /// Opt-in departures from the tutorial; the default is TFRS-faithful.
    #[serde(flatten)]
    pub tweaks: Tweaks,
}

/// Departures from the tutorial's training (all off by default; `wgrec recipe` turns some on).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Tweaks {
    /// logQ correction of the in-batch softmax with the batch's own movie frequencies q_c = m_c / B:
    /// subtracting log q_c from every logit of movie c turns `sum_c m_c exp(s_ac)` into
    /// `B sum_c exp(s_ac)`, a softmax over the batch's distinct movies, so popular movies are no longer
    /// pushed down for being sampled often. The kernels are unchanged: every movie's column weight is 1.
    /// The reported loss leaves out the constant log(m_c / B) terms.
    pub logq_correction: bool,
    /// Adagrad learning rate of the embeddings (None: the MLP's `learning_rate`; 0: the embedding tables
    /// are frozen and not updated at all).
    pub embedding_learning_rate: Option<f32>,
    /// L2 penalty (l2 / 2) |row|^2 on the embedding rows each batch touches (0: none).
    pub embedding_l2: f32,
    /// Model selection (`validation`): hold out this fraction of each user's training ratings
    /// (0: none), evaluate on them after every epoch and keep the best parameters by `select`.
    pub validation_fraction: f32,
    /// What "best" means on the validation split.
    pub select: Criterion,
    /// From this epoch on, the mean of the parameters after every epoch so far is a model too (stochastic
    /// weight averaging). Without a validation split it is the model that is kept and evaluated.
    pub average_from: Option<usize>,
    /// After selecting on the validation split, train again from the same initialisation on the whole
    /// training split for the selected number of epochs, and keep that model.
    pub refit: bool,
    /// After all of the above, this many more epochs of the rating task alone (weights (1, 0)) with the
    /// embedding tables frozen: the MLP is fitted to the final embeddings, and the retrieval task, which
    /// depends on the embeddings only, keeps exactly its metrics (0: none).
    pub fine_tune_rating: usize,
    /// TFRS Retrieval's `temperature`: the training logits are u . m / T (None: 1, the tutorial's). The
    /// windowed family divides the batch's distinct user rows by T (`scale_rows`), so the distinct-rows
    /// identity holds unchanged; the test loss stays the untempered one, comparable across temperatures.
    pub temperature: Option<f32>,
    /// TFRS Retrieval's `remove_accidental_hits`: a batch column holding a row's own movie is not a
    /// negative of that row (only the row's own column stays). In the distinct-rows kernels each row then
    /// has its own normaliser (`retrieval_softmax_users` writes them); the test loss stays TFRS's plain one.
    pub remove_accidental_hits: bool,
    /// The retrieval softmax runs over every movie of the catalogue each step instead of the batch's
    /// movies: the distinct-rows kernels with every movie a column of weight 1 (a movie no row holds has
    /// an empty row group). Exact, with no sampling to correct; the test loss stays TFRS's in-batch one.
    pub full_softmax: bool,
    /// Feature towers (None: plain embedding tables, the tutorial's model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub towers: Option<TowerOptions>,
}

/// The user fields a tower can pool (`--user-features`), and the movie fields (`--movie-features`).
pub const USER_FEATURES: [&str; 4] = crate::data::features::USER_FIELDS;
pub const MOVIE_FEATURES: [&str; 3] = crate::data::features::MOVIE_FIELDS;

/// Feature towers: the side features each tower pools and its dense stack. A side with features or a
/// stack has a tower; its id embedding keeps the run's embedding width.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TowerOptions {
    pub user_features: Vec<String>,
    pub movie_features: Vec<String>,
    /// Embedding width of every feature field.
    pub feature_dim: usize,
    /// Output widths of each tower's dense layers (ReLU between them, the last linear).
    pub user_tower: Vec<usize>,
    pub movie_tower: Vec<usize>,
}

/// Feature width without --feature-dim.
pub const FEATURE_DIM: usize = 16;

impl TowerOptions {
    /// `--user-features`/`--movie-features` lists ("all", or names from `known`) checked.
    pub fn parse_features(flag: &str, text: &str, known: &[&str]) -> Result<Vec<String>> {
        if text.trim() == "all" {
            return Ok(known.iter().map(|s| s.to_string()).collect());
        }
        let mut out: Vec<String> = Vec::new();
        for name in text.split(',').map(str::trim) {
            if !known.contains(&name) {
                bail!(
                    "{flag}: {name:?} is not a feature; the features are {} (or all)",
                    known.join(", ")
                );
            }
            if out.iter().any(|n| n == name) {
                bail!("{flag}: {name} is listed twice");
            }
            out.push(name.to_string());
        }
        Ok(out)
    }

    /// `--user-tower`/`--movie-tower`: comma-separated layer widths.
    pub fn parse_layers(flag: &str, text: &str) -> Result<Vec<usize>> {
        text.split(',')
            .map(|w| {
                let w = w.trim();
                w.parse::<usize>()
                    .ok()
                    .filter(|&w| w > 0 && w.is_multiple_of(4) && w <= 1024)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{flag}: {w:?} is not a layer width (a multiple of 4 in 4..=1024)"
                        )
                    })
            })
            .collect()
    }

    /// The width of the tables both tasks read, from the options alone (the checks of
    /// `Towers::output_width`): a side's last layer, or its id and feature widths added up.
    pub fn table_width(&self, embedding_dim: usize) -> Result<usize> {
        let side = |features: &[String], layers: &[usize]| {
            layers
                .last()
                .copied()
                .unwrap_or(embedding_dim + features.len() * self.feature_dim)
        };
        let (u, m) = (
            side(&self.user_features, &self.user_tower),
            side(&self.movie_features, &self.movie_tower),
        );
        if u != m {
            bail!(
                "the user side gives {u} columns and the movie side {m}: both must meet in one width \
                 (retrieval scores their dot product); end both towers in the same width with \
                 --user-tower and --movie-tower (e.g. --user-tower 64,32 --movie-tower 64,32)"
            );
        }
        if u == 0 || !u.is_multiple_of(16) || u > 64 {
            bail!(
                "the towers give tables {u} columns wide (a side's last --user-tower/--movie-tower \
                 layer, or --embedding-dim {embedding_dim} plus {} x --feature-dim {}); the kernels \
                 take 16, 32, 48 or 64: change --embedding-dim or --feature-dim, or end both towers \
                 in one of those widths",
                self.user_features.len().max(self.movie_features.len()),
                self.feature_dim
            );
        }
        Ok(u)
    }
}

impl TrainOptions {
    pub fn tutorial(rating_weight: f32, retrieval_weight: f32) -> Self {
        Self {
            rating_weight,
            retrieval_weight,
            epochs: 3,
            batch_size: 8192,
            learning_rate: 0.1,
            seed: 42,
            reshuffle: false,
            tweaks: Tweaks::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            bail!(
                "--batch-size must be between 1 and {MAX_BATCH}, got {}",
                self.batch_size
            );
        }
        let lr = self.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--learning-rate must be a positive number, got {lr}");
        }
        if let Some(lr) = self
            .tweaks
            .embedding_learning_rate
            .filter(|lr| !(lr.is_finite() && *lr >= 0.0))
        {
            bail!("--embedding-learning-rate must be a number >= 0 (0 freezes the embeddings), got {lr}");
        }
        let t = &self.tweaks;
        let f = t.validation_fraction;
        if !(f.is_finite() && (0.0..0.5).contains(&f)) {
            bail!("--validation-fraction must be in [0, 0.5), got {f}");
        }
        if t.refit && f == 0.0 {
            bail!("--refit needs a --validation-fraction to select on");
        }
        if let Some(s) = t.average_from {
            if s == 0 || s > self.epochs {
                bail!(
                    "--average-from must be an epoch in 1..={}, got {s}",
                    self.epochs
                );
            }
        }
        if let Some(t) = self.tweaks.temperature {
            if !(t.is_finite() && (MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&t)) {
                bail!(
                    "--temperature must be a number in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], got {t}"
                );
            }
        }
        if t.full_softmax && t.logq_correction {
            bail!(
                "--full-softmax and --logq-correction do not combine: the full softmax samples no \
                 negatives, so there is nothing to correct"
            );
        }
        if t.full_softmax && t.remove_accidental_hits {
            bail!(
                "--full-softmax and --remove-accidental-hits do not combine: in the full softmax every \
                 movie is one column, so no column repeats a row's own movie"
            );
        }
        let l2 = self.tweaks.embedding_l2;
        if !(l2.is_finite() && l2 >= 0.0) {
            bail!("--embedding-l2 must be a finite number >= 0, got {l2}");
        }
        for (name, w) in [
            ("--rating-weight", self.rating_weight),
            ("--retrieval-weight", self.retrieval_weight),
        ] {
            if !w.is_finite() || w < 0.0 {
                bail!("{name} must be a finite number >= 0, got {w}");
            }
            if w > MAX_TASK_WEIGHT {
                bail!(
                    "{name} must be at most {MAX_TASK_WEIGHT}, got {w}: the squared gradients of larger \
                     weights overflow Adagrad's f32 accumulators"
                );
            }
        }
        Ok(())
    }

    /// The movie columns of the retrieval softmax for a movie table of `movies` rows.
    pub fn columns(&self, movies: usize) -> Columns {
        match &self.tweaks {
            t if t.full_softmax => Columns::Catalogue(movies as u32),
            t if t.logq_correction => Columns::Distinct,
            _ => Columns::Batch,
        }
    }

    /// The rows a training step's work buffers hold for a training split of `ratings` ratings and a movie
    /// table of `movies` rows: a batch's rows, or with `--full-softmax` the catalogue's movies if more
    /// (at most MAX_BATCH, the loop bound the kernels are laid out for).
    pub fn step_capacity(&self, ratings: usize, movies: usize) -> Result<usize> {
        let rows = self.batch_size.min(ratings);
        if !self.tweaks.full_softmax {
            return Ok(rows);
        }
        if movies > MAX_BATCH {
            bail!(
                "--full-softmax runs over at most {MAX_BATCH} movies, and this catalogue has {}; use \
                 the in-batch softmax (with --logq-correction) instead",
                movies - 1
            );
        }
        Ok(rows.max(movies))
    }

    /// The training batches in the order `perm`, with the movie columns the retrieval loss uses for a
    /// movie table of `movies` rows.
    pub fn make_batches(&self, train: &Ratings, perm: &[u32], movies: usize) -> Vec<Batch> {
        perm.chunks(self.batch_size)
            .map(|c| batch_of(train, c).with_columns(self.columns(movies)))
            .collect()
    }

    /// The width of the tables both tasks read: `embedding_dim`, or the feature towers' output width.
    pub fn table_width(&self, embedding_dim: usize) -> Result<usize> {
        match &self.tweaks.towers {
            Some(t) => t.table_width(embedding_dim),
            None => Ok(embedding_dim),
        }
    }

    /// `--embedding-learning-rate 0`: the embedding tables (and their accumulators) are not updated.
    pub fn embeddings_frozen(&self) -> bool {
        self.tweaks.embedding_learning_rate == Some(0.0)
    }

    /// The options of the `fine_tune_rating` stage that follows a run with these options.
    pub fn fine_tune_stage(&self) -> TrainOptions {
        TrainOptions {
            rating_weight: 1.0,
            retrieval_weight: 0.0,
            epochs: self.tweaks.fine_tune_rating,
            tweaks: Tweaks {
                embedding_learning_rate: Some(0.0),
                embedding_l2: 0.0,
                validation_fraction: 0.0,
                average_from: None,
                refit: false,
                fine_tune_rating: 0,
                ..self.tweaks.clone()
            },
            ..self.clone()
        }
    }

    pub fn rating_on(&self) -> bool {
        self.rating_weight != 0.0
    }

    pub fn retrieval_on(&self) -> bool {
        self.retrieval_weight != 0.0
    }
}

/// Which epoch's (or average's) parameters to keep, judged on the validation split.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// Lowest validation RMSE.
    #[default]
    Rmse,
    /// Highest validation top-100 accuracy.
    Top100,
    /// Highest validation NDCG@10 among the movies each user did not rate in the fit split (the top-10
    /// protocol of Microsoft Recommenders' benchmark, on the validation split).
    Ndcg10,
}

impl Criterion {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "rmse" => Self::Rmse,
            "top100" => Self::Top100,
            "ndcg10" => Self::Ndcg10,
            other => bail!("unknown --select {other:?}; choose rmse, top100 or ndcg10"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logq_correction_gives_every_movie_column_weight_one() {
        let train = Ratings {
            user: vec![1, 2, 1, 3, 2, 1],
            movie: vec![5, 5, 6, 5, 7, 6],
            rating: vec![1.0; 6],
        };
        let perm: Vec<u32> = (0..6).collect();
        let plain = TrainOptions::tutorial(0.0, 1.0).make_batches(&train, &perm, 8);
        assert_eq!(plain[0].movies.count, vec![3.0, 2.0, 1.0]);
        let mut opts = TrainOptions::tutorial(0.0, 1.0);
        opts.tweaks.logq_correction = true;
        let corrected = opts.make_batches(&train, &perm, 8);
        assert_eq!(corrected[0].movies.count, vec![1.0, 1.0, 1.0]);
        assert_eq!(corrected[0].users, plain[0].users, "user weights unchanged");
        opts.tweaks.logq_correction = false;
        opts.tweaks.full_softmax = true;
        let full = opts.make_batches(&train, &perm, 8);
        assert_eq!(full[0].movies.table_rows, (1..8).collect::<Vec<u32>>());
        assert_eq!(full[0].movies.count, vec![1.0; 7]);
        assert_eq!(full[0].users, plain[0].users, "user weights unchanged");
        assert_eq!(
            opts.step_capacity(6, 8).unwrap(),
            8,
            "the catalogue is longer than the batch"
        );
        assert_eq!(opts.step_capacity(6, 3).unwrap(), 6);
        let err = opts.step_capacity(6, MAX_BATCH + 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("at most 32768 movies"),
            "{err:#}"
        );
    }

    #[test]
    fn full_softmax_refuses_what_it_makes_meaningless() {
        let mut opts = TrainOptions::tutorial(0.0, 1.0);
        opts.tweaks.full_softmax = true;
        opts.validate().unwrap();
        opts.tweaks.logq_correction = true;
        assert!(format!("{:#}", opts.validate().unwrap_err()).contains("--logq-correction"));
        opts.tweaks.logq_correction = false;
        opts.tweaks.remove_accidental_hits = true;
        assert!(format!("{:#}", opts.validate().unwrap_err()).contains("--remove-accidental-hits"));
    }

    #[test]
    fn batch_sizes_beyond_the_loop_limit_are_refused() {
        let mut opts = TrainOptions::tutorial(1.0, 1.0);
        for (b, ok) in [
            (0, false),
            (1, true),
            (MAX_BATCH, true),
            (MAX_BATCH + 1, false),
        ] {
            opts.batch_size = b;
            assert_eq!(opts.validate().is_ok(), ok, "batch size {b}");
        }
        opts.batch_size = 65536;
        let err = opts.validate().unwrap_err().to_string();
        assert!(
            err.contains("--batch-size must be between 1 and 32768"),
            "{err}"
        );
    }

    #[test]
    fn an_embedding_learning_rate_of_zero_freezes_and_negatives_are_refused() {
        let mut opts = TrainOptions::tutorial(1.0, 1.0);
        assert!(!opts.embeddings_frozen());
        opts.tweaks.embedding_learning_rate = Some(0.0);
        opts.validate().unwrap();
        assert!(opts.embeddings_frozen());
        for bad in [-0.1, f32::NAN, f32::INFINITY] {
            opts.tweaks.embedding_learning_rate = Some(bad);
            let err = opts.validate().unwrap_err().to_string();
            assert!(err.contains("--embedding-learning-rate must be"), "{err}");
        }
    }

    #[test]
    fn tower_tables_meet_in_one_kernel_width() {
        let t = |user: &[&str],
                 movie: &[&str],
                 feature_dim,
                 user_tower: &[usize],
                 movie_tower: &[usize]| {
            TowerOptions {
                user_features: user.iter().map(|s| s.to_string()).collect(),
                movie_features: movie.iter().map(|s| s.to_string()).collect(),
                feature_dim,
                user_tower: user_tower.to_vec(),
                movie_tower: movie_tower.to_vec(),
            }
        };
        // 24 + 3 x 8 on both sides, as joint-features.
        let all = ["age", "gender", "occupation"];
        let movie = ["genres", "decade", "title_words"];
        assert_eq!(t(&all, &movie, 8, &[], &[]).table_width(24).unwrap(), 48);
        assert_eq!(t(&[], &movie, 8, &[32], &[32]).table_width(32).unwrap(), 32);
        let err = t(&[], &movie, 8, &[], &[])
            .table_width(32)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user side gives 32 columns and the movie side 56"),
            "{err}"
        );
        let err = t(&all, &movie, 16, &[], &[])
            .table_width(24)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tables 72 columns wide") && err.contains("16, 32, 48 or 64"),
            "{err}"
        );
        let err = t(&[], &[], 8, &[40], &[40])
            .table_width(32)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tables 40 columns wide"), "{err}");
    }
}
