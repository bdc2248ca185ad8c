//! The command line (clap derive). The clap types never leave `main` and this module: they are turned into
//! plain configuration structs here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use wgrec::data::synth::{SynthFormat, SynthOptions};
use wgrec::data::{DataOptions, SplitKind};
use wgrec::gpu::{parse_backend, AdapterChoice};
use wgrec::kernels::Choice;
use wgrec::options::{Criterion, TrainOptions, Tweaks};
use wgrec::report::bench::Shape;
use wgrec::report::recipe;
use wgrec::report::sweep::SweepConfig;

/// Multi-task recommenders (TFRS's MovieLens tutorial and beyond) in WebGPU compute shaders.
///
/// Runs on any Vulkan, Metal, DX12 or GL adapter, or on Mesa's software Vulkan adapter (lavapipe) when
/// there is no GPU. Without data options, MovieLens 100K is downloaded into the cache on first use.
#[derive(Parser, Debug)]
#[command(name = "wgrec", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Restrict wgpu to one backend: vulkan, metal, dx12 or gl.
    #[arg(long, global = true, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Use the first adapter whose name contains SUBSTRING (case-insensitive).
    #[arg(long, global = true, value_name = "SUBSTRING")]
    pub adapter: Option<String>,
    /// Print only results and errors: no progress bars, spinners or progress notes.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Kernel family that trains, evaluates and serves: windowed (shaped for CPU adapters), gpu (for real
    /// GPUs), or auto: windowed on CPU adapters, gpu on every other.
    #[arg(long, global = true, value_enum, default_value_t = Choice::Auto)]
    pub kernels: Choice,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  wgrec tutorial                    # the TFRS tutorial (downloads MovieLens 100K on first use)
  wgrec tutorial --dataset sample   # the same on the built-in synthetic sample: offline, seconds
  wgrec train --rating-weight 1 --retrieval-weight 1 --save joint.safetensors
  wgrec recommend --model joint.safetensors --user 42
  wgrec completions bash > ~/.local/share/bash-completion/completions/wgrec";

/// The `after_help` of a subcommand: its examples.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the tutorial's three experiments: rating-only (1, 0), retrieval-only (0, 1) and joint (1, 1).
    ///
    /// Three epochs of each, then a table of test metrics that names the adapter, the data set and the
    /// split. With no data options and nothing in the cache, MovieLens 100K is downloaded first.
    #[command(after_help = examples!(
        "wgrec tutorial",
        "wgrec tutorial --dataset sample --epochs 1",
        "wgrec tutorial --data-dir ml-100k --split-dir ml-100k-split --metrics-out tutorial.json",
    ))]
    Tutorial {
        #[command(flatten)]
        data: DataArgs,
        /// Training epochs of each run.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Seed of the initialisation, the batch order and (without --split-dir) the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the adapter, the data set, and every run's options, history and test metrics as JSON.
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Save each configuration's checkpoint in DIR: rating.safetensors, retrieval.safetensors,
        /// joint.safetensors.
        #[arg(long, value_name = "DIR")]
        save_dir: Option<PathBuf>,
    },
    /// Train and evaluate one configuration; optionally save it, or resume a saved one.
    #[command(after_help = examples!(
        "wgrec train --rating-weight 1 --retrieval-weight 1 --epochs 3 --metrics-out joint.json",
        "wgrec train --rating-weight 1 --retrieval-weight 1 --save joint.safetensors",
        "wgrec train --rating-weight 1 --retrieval-weight 1 --resume joint.safetensors --epochs 2",
    ))]
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Weight of the rating (MSE) loss.
        #[arg(long)]
        rating_weight: f32,
        /// Weight of the retrieval (in-batch softmax) loss.
        #[arg(long)]
        retrieval_weight: f32,
        /// Training epochs of each run.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Training batch size (TFRS: 8192).
        #[arg(long, default_value_t = 8192)]
        batch_size: usize,
        /// Batch size of the test-set evaluation (it only changes the reported loss).
        #[arg(long, default_value_t = 4096)]
        eval_batch_size: usize,
        /// Adagrad learning rate.
        #[arg(long, default_value_t = 0.1)]
        learning_rate: f32,
        /// Width of the user and movie embeddings: 16, 32, 48 or 64 [default: 32, or the checkpoint's with
        /// --resume].
        #[arg(long)]
        embedding_dim: Option<usize>,
        /// Seed of the initialisation, the batch order and (without --split-dir) the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Draw new batches every epoch (the tutorial reuses the first epoch's batches).
        #[arg(long)]
        reshuffle: bool,
        /// Write the adapter, the data set, and every run's options, history and test metrics as JSON.
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
        /// Draw the per-epoch loss, top-100 and RMSE curves of every run as SVG (evaluates after every epoch).
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        #[command(flatten)]
        tweaks: TweakArgs,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Save the trained model, its Adagrad state, vocabularies and training state (safetensors).
        #[arg(long, value_name = "FILE.safetensors")]
        save: Option<PathBuf>,
        /// Continue from a checkpoint (parameters, Adagrad state, batch order) for --epochs more epochs.
        #[arg(long, value_name = "FILE.safetensors")]
        resume: Option<PathBuf>,
    },
    /// Evaluate a saved model on its test split: the metrics training reported.
    ///
    /// The split (directory, or kind and seed) and the data set default to the ones the checkpoint
    /// records; data options override them.
    #[command(after_help = examples!(
        "wgrec evaluate --model joint.safetensors",
        "wgrec evaluate --model joint.safetensors --metrics-out evaluated.json",
    ))]
    Evaluate {
        /// The checkpoint (train --save).
        #[arg(long, value_name = "FILE.safetensors")]
        model: PathBuf,
        /// As for train; the split defaults to the one the checkpoint was trained on.
        #[command(flatten)]
        data: DataArgs,
        /// Write the adapter, the checkpoint read, the data set and the test metrics as JSON (`test` as in
        /// a training run's --metrics-out).
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
    },
    /// Recommend movies: a BruteForce top-k over every movie, on the GPU.
    #[command(after_help = examples!(
        "wgrec recommend --model joint.safetensors --user 42 -k 5 --exclude-seen",
        "wgrec recommend --model joint.safetensors --all-users --out top10.csv",
    ))]
    Recommend {
        /// The checkpoint (train --save).
        #[arg(long, value_name = "FILE.safetensors")]
        model: PathBuf,
        /// User id as in u.data; an unknown id gets the out-of-vocabulary row, as in TFRS.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "all_users",
            conflicts_with = "all_users"
        )]
        user: Option<String>,
        /// Recommend for every user of the vocabulary (needs --out).
        #[arg(long, requires = "out")]
        all_users: bool,
        /// CSV file for --all-users: user,rank,title,score.
        #[arg(long, value_name = "FILE.csv", requires = "all_users")]
        out: Option<PathBuf>,
        /// How many movies per user (at most 256).
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Leave out the movies the user rated in the training split.
        #[arg(long)]
        exclude_seen: bool,
    },
    /// Predict a user's rating of a movie with the rating model.
    #[command(after_help = examples!(
        "wgrec predict --model joint.safetensors --user 42 --movie \"Star Wars (1977)\"",
    ))]
    Predict {
        /// The checkpoint (train --save).
        #[arg(long, value_name = "FILE.safetensors")]
        model: PathBuf,
        /// User id as in u.data; an unknown id gets the out-of-vocabulary row, as in TFRS.
        #[arg(long, value_name = "ID")]
        user: String,
        /// Movie title as in u.item, e.g. "Star Wars (1977)"; an unknown title gets the out-of-vocabulary row.
        #[arg(long, value_name = "TITLE")]
        movie: String,
    },
    /// Serve recommendations and predictions over HTTP, batching concurrent requests into one GPU pass.
    ///
    /// A JSON API under /v1 (recommend, predict, model, seen, users), /healthz, /metrics (Prometheus text)
    /// and a page at /. POST /v1/admin/reload or SIGHUP loads the model file again (a broken file is
    /// refused and the old model keeps serving); SIGTERM or ctrl-c stops after the requests in flight.
    #[command(after_help = examples!(
        "wgrec serve --model joint.safetensors",
        "curl 'http://127.0.0.1:8080/v1/recommend?user=42&k=5&exclude_seen=true'",
        "wgrec serve --model joint.safetensors --addr 0.0.0.0:8080 --max-batch 1",
    ))]
    Serve {
        /// The checkpoint (train --save).
        #[arg(long, value_name = "FILE.safetensors")]
        model: PathBuf,
        /// Address to listen on: loopback unless told otherwise (there is no authentication); port 0
        /// picks a free port.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Most users ranked in one GPU pass; 1 turns batching off.
        #[arg(long, value_name = "USERS", default_value_t = 256,
              value_parser = clap::value_parser!(u64).range(1..=65536))]
        max_batch: u64,
        /// How long to wait for more requests after the first of a pass, in microseconds.
        #[arg(long, value_name = "US", default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
        max_wait_us: u64,
    },
    /// Train every combination of rating and retrieval weights (and seeds) and chart the trade-off.
    ///
    /// Writes results.csv, results.json, tradeoff.svg (top-100 against RMSE, Pareto front marked) and
    /// curves.svg into --out.
    #[command(after_help = examples!(
        "wgrec sweep --rating-weights 0,0.1,1 --retrieval-weights 0,0.1,1 --out sweep",
        "wgrec sweep --dataset sample --rating-weights 0,1 --retrieval-weights 1 --epochs 1 --out sweep",
    ))]
    Sweep {
        #[command(flatten)]
        data: DataArgs,
        /// Rating weights, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,0.1,1")]
        rating_weights: Vec<f32>,
        /// Retrieval weights, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,0.1,1")]
        retrieval_weights: Vec<f32>,
        /// Training epochs of each run.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Seeds, comma-separated: one run per seed (per weighting in a sweep); without --split-dir the
        /// first one also draws the split.
        #[arg(long, value_delimiter = ',', default_value = "42")]
        seeds: Vec<u64>,
        /// Training batch size (TFRS: 8192).
        #[arg(long, default_value_t = 8192)]
        batch_size: usize,
        /// Adagrad learning rate.
        #[arg(long, default_value_t = 0.1)]
        learning_rate: f32,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Named presets (see `wgrec recipe`), comma-separated, trained with the same seeds and drawn
        /// beside the grid: each with its own options, the grid's flags do not apply to them.
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        presets: Vec<String>,
        #[command(flatten)]
        tweaks: TweakArgs,
    },
    /// Train a named preset once per seed and report the mean and spread of its metrics.
    ///
    /// Presets: tutorial-joint (the tutorial's joint model), joint-plus (one joint model that beats both
    /// specialised ones), joint-plus-val (its epochs chosen on a validation split), joint-features
    /// (joint-plus with feature towers from u.user and u.item, or users.dat/movies.dat/movies.csv).
    #[command(after_help = examples!(
        "wgrec recipe --preset joint-plus --seeds 42,1,2 --metrics-out joint-plus.json",
        "wgrec recipe --preset tutorial-joint --seeds 42 --plot curves.svg",
    ))]
    Recipe {
        #[command(flatten)]
        data: DataArgs,
        /// tutorial-joint, joint-plus, joint-plus-val, joint-features or joint-full.
        #[arg(long, default_value = "joint-plus")]
        preset: String,
        /// Seeds, comma-separated: one run per seed (per weighting in a sweep); without --split-dir the
        /// first one also draws the split.
        #[arg(long, value_delimiter = ',', default_value = "42,1,2")]
        seeds: Vec<u64>,
        /// Write the adapter, the data set, and every run's options, history and test metrics as JSON.
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
        /// Draw the per-epoch loss, top-100 and RMSE curves of every run as SVG (evaluates after every epoch).
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Cross-validate one configuration: train on each fold's training set, test on its test set.
    ///
    /// --folds u1,u2,u3,u4,u5 reads ML-100K's own folds (u1.base / u1.test ...) from the data directory;
    /// --folds N draws N seeded random folds of any data set. Prints each fold's metrics and their mean
    /// ± sample sd; the JSON holds `folds`, `mean` and `sd` of every test metric.
    #[command(after_help = examples!(
        "wgrec cv --folds u1,u2,u3,u4,u5 --preset joint-plus --metrics-out cv.json",
        "wgrec cv --folds 5 --dataset sample --rating-weight 1 --retrieval-weight 1 --epochs 1",
    ))]
    Cv {
        #[command(flatten)]
        data: DataArgs,
        /// ML-100K fold names, comma-separated (u1,...,u5, ua, ub), or a number N >= 2 of random folds.
        #[arg(long, value_name = "NAMES|N")]
        folds: String,
        /// Train a named preset (see `wgrec recipe`) instead of the training options below.
        #[arg(long, value_name = "NAME")]
        preset: Option<String>,
        /// Weight of the rating (MSE) loss.
        #[arg(long, required_unless_present = "preset")]
        rating_weight: Option<f32>,
        /// Weight of the retrieval (in-batch softmax) loss.
        #[arg(long, required_unless_present = "preset")]
        retrieval_weight: Option<f32>,
        /// Training epochs of each fold [default: 3].
        #[arg(long)]
        epochs: Option<usize>,
        /// Training batch size [default: 8192, TFRS's].
        #[arg(long)]
        batch_size: Option<usize>,
        /// Adagrad learning rate [default: 0.1].
        #[arg(long)]
        learning_rate: Option<f32>,
        /// Width of the user and movie embeddings: 16, 32, 48 or 64 [default: 32, or the preset's].
        #[arg(long)]
        embedding_dim: Option<usize>,
        /// Seed of the initialisation, the batch order and the random folds (--folds N).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Draw new batches every epoch (the tutorial reuses the first epoch's batches).
        #[arg(long)]
        reshuffle: bool,
        #[command(flatten)]
        tweaks: TweakArgs,
        /// Write the adapter, every fold's run (options, history, test metrics), and the mean and sd over
        /// the folds of every test metric as JSON.
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
    },
    /// List every adapter wgpu sees and mark the one that would be used.
    #[command(after_help = examples!("wgrec adapters", "wgrec --backend gl adapters"))]
    Adapters,
    /// Check that wgrec computes correctly on this adapter, against the CPU twins of its kernels.
    ///
    /// A few training steps of awkward shapes with the chosen kernel family, an evaluation and a top-k,
    /// each held against the CPU. Prints every check with its largest error and tolerance, and exits non-zero on any mismatch. Run it
    /// first on a new GPU or driver.
    #[command(after_help = examples!(
        "wgrec selftest",
        "wgrec selftest --kernels gpu",
        "wgrec --adapter nvidia selftest --kernels windowed"
    ))]
    Selftest,
    /// Time every kernel of a training epoch and an evaluation against a native CPU sgemm.
    ///
    /// On synthetic data, at the tutorial's shapes and at a larger one (ML-1M sizes).
    #[command(after_help = examples!(
        "wgrec bench --shape tutorial --out bench.json",
        "wgrec bench --scaling scaling.svg",
    ))]
    Bench {
        /// tutorial, large, or all.
        #[arg(long, default_value = "all", value_parser = ["tutorial", "large", "all"])]
        shape: String,
        /// Seed of the synthetic data and the initialisation.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the results as JSON.
        #[arg(long, value_name = "FILE.json")]
        out: Option<PathBuf>,
        /// Instead: one epoch against dataset size and batch size; a table, and an SVG chart to FILE.svg.
        #[arg(long, value_name = "FILE.svg")]
        scaling: Option<PathBuf>,
    },
    /// Write a synthetic data set (latent-factor ratings, Zipf-like movie popularity) in a MovieLens format.
    #[command(after_help = examples!(
        "wgrec synth --users 1000 --movies 2000 --ratings 100000 --out synthetic",
        "wgrec tutorial --data-dir synthetic",
    ))]
    Synth {
        #[arg(long)]
        users: u32,
        #[arg(long)]
        movies: u32,
        #[arg(long)]
        ratings: u64,
        /// Directory to write into (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// ml-100k: u.data + u.item, integer ratings; ml-1m: ratings.dat + movies.dat, integer ratings;
        /// csv: ratings.csv + movies.csv, half stars.
        #[arg(long, value_enum, default_value_t = SynthFormatArg::Csv)]
        format: SynthFormatArg,
        /// Seed of the latent factors and the ratings drawn.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    #[command(after_help = examples!(
        "wgrec completions bash > ~/.local/share/bash-completion/completions/wgrec",
        "wgrec completions zsh > ~/.zfunc/_wgrec",
        "wgrec completions fish > ~/.config/fish/completions/wgrec.fish",
    ))]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout: wgrec(1), or one subcommand's.
    #[command(after_help = examples!(
        "wgrec man | man -l -",
        "wgrec man tutorial > wgrec-tutorial.1",
    ))]
    Man {
        /// The subcommand whose page to print (default: the top-level page).
        subcommand: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SynthFormatArg {
    #[value(name = "ml-100k")]
    Ml100k,
    #[value(name = "ml-1m")]
    Ml1m,
    Csv,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitArg {
    /// Shuffle all ratings with the seed, the first 80% train (TFRS).
    Random,
    /// Per user, the latest 20% of their ratings by timestamp are the test set.
    Temporal,
    /// Per user, the user's ratings shuffled with the seed, 75% train (Microsoft Recommenders' benchmark).
    Stratified,
}

#[derive(Args, Debug)]
pub struct DataArgs {
    /// MovieLens directory (ML-100K u.data + u.item, ML-1M ratings.dat + movies.dat, or ml-latest / ML-20M /
    /// ML-25M ratings.csv + movies.csv), or a directory holding a release folder such as ml-100k/.
    /// Default: $WGREC_DATA_DIR, then the cache directory ($XDG_CACHE_HOME/wgrec or ~/.cache/wgrec), where
    /// ML-100K is downloaded on first use (not with --offline).
    #[arg(long, value_name = "DIR", conflicts_with = "dataset")]
    pub data_dir: Option<PathBuf>,
    /// Download a GroupLens release into the cache (once; SHA-256 checked on every use), or use the
    /// synthetic sample built into wgrec ("sample"). $WGREC_MIRROR replaces the GroupLens base URL.
    #[arg(long, value_name = "NAME",
          value_parser = ["ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "sample"])]
    pub dataset: Option<String>,
    /// Cache directory for --dataset and the default ML-100K. Default: $XDG_CACHE_HOME/wgrec or
    /// ~/.cache/wgrec.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Directory with train.data and test.data (u.data format). Default: split by --split.
    #[arg(long, value_name = "DIR", conflicts_with = "split")]
    pub split_dir: Option<PathBuf>,
    /// How to split without --split-dir: random (TFRS: shuffle with the seed, 80% train), temporal
    /// (per user, the latest 20% of their ratings are the test set) or stratified (per user, a seeded
    /// 75/25 shuffle, as Microsoft Recommenders' benchmark).
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Fraction of each user's ratings in the test set of --split stratified [default: 0.25].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Never download: use only the given directories and the cache (also WGREC_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Time every kernel dispatch (GPU timestamp queries, or CPU timing where the adapter has none) and
    /// print a per-kernel table after each run: calls, time, share, GFLOP/s, GB/s. Slows the run down.
    #[arg(long)]
    pub profile: bool,
    /// Write a Chrome trace (chrome://tracing, ui.perfetto.dev) of the CPU phases and every GPU dispatch.
    #[arg(long, value_name = "FILE.json")]
    pub trace: Option<PathBuf>,
}

/// Opt-in departures from the tutorial (off by default).
#[derive(Args, Debug, Clone, Default)]
pub struct TweakArgs {
    /// logQ-correct the in-batch softmax with the batch's movie frequencies (a softmax over the batch's
    /// distinct movies, so popular movies are not penalised for being sampled often).
    #[arg(long)]
    pub logq_correction: bool,
    /// Adagrad learning rate of the embeddings (0 freezes them). Default: --learning-rate.
    #[arg(long, value_name = "LR")]
    pub embedding_learning_rate: Option<f32>,
    /// L2 penalty (L2 / 2) |row|^2 on the embedding rows each batch touches.
    #[arg(long, value_name = "L2", default_value_t = 0.0)]
    pub embedding_l2: f32,
    /// Hold out this fraction of each user's training ratings (rounded down) as a validation split,
    /// score every epoch on it and keep the best parameters by --select. The test split is not used.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub validation_fraction: f32,
    /// What "best" means on the validation split: rmse (lowest), top100 (highest top-100 accuracy) or
    /// ndcg10 (highest NDCG@10 among the movies each user did not rate in the rest of the training split).
    #[arg(long, value_name = "CRITERION", default_value = "rmse", value_parser = ["rmse", "top100", "ndcg10"])]
    pub select: String,
    /// From this epoch on, the running mean of the parameters after each epoch is also a candidate
    /// (stochastic weight averaging); without --validation-fraction it is the model kept.
    #[arg(long, value_name = "EPOCH")]
    pub average_from: Option<usize>,
    /// After selecting, train again from the same initialisation on the whole training split for the
    /// selected number of epochs (needs --validation-fraction).
    #[arg(long)]
    pub refit: bool,
    /// After training (and any selection), this many more epochs of the rating task alone with the
    /// embeddings frozen: fits the MLP to the final embeddings; retrieval metrics do not change.
    #[arg(long, value_name = "EPOCHS", default_value_t = 0)]
    pub fine_tune_rating: usize,
    /// Divide the retrieval task's training logits by T (TFRS Retrieval's temperature). The test loss
    /// stays untempered.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// A batch column holding a row's own movie is not a negative of that row (TFRS Retrieval's
    /// remove_accidental_hits; windowed kernels only). The test loss stays the plain one.
    #[arg(long)]
    pub remove_accidental_hits: bool,
    /// The retrieval softmax runs over every movie of the catalogue each step, not over the batch's
    /// movies (exact, no sampled negatives; at most 32,768 movies). The test loss stays TFRS's in-batch one.
    #[arg(long)]
    pub full_softmax: bool,
    /// Feature towers: the user fields the user tower pools (age, gender, occupation, zip, comma-
    /// separated, or all; from u.user or users.dat). The id embedding is concatenated with them.
    #[arg(long, value_name = "LIST")]
    pub user_features: Option<String>,
    /// The movie fields the movie tower pools (genres, decade, title_words, or all).
    #[arg(long, value_name = "LIST")]
    pub movie_features: Option<String>,
    /// Embedding width of every feature field [default: 16].
    #[arg(long, value_name = "N")]
    pub feature_dim: Option<usize>,
    /// Dense layers after the user tower's concatenation, e.g. 64,32 (ReLU between, the last linear);
    /// both towers must end in the same width.
    #[arg(long, value_name = "W,W")]
    pub user_tower: Option<String>,
    /// Dense layers after the movie tower's concatenation.
    #[arg(long, value_name = "W,W")]
    pub movie_tower: Option<String>,
}

impl TweakArgs {
    pub fn into_tweaks(self) -> anyhow::Result<Tweaks> {
        use wgrec::options::{TowerOptions, FEATURE_DIM, MOVIE_FEATURES, USER_FEATURES};
        let any = self.user_features.is_some()
            || self.movie_features.is_some()
            || self.user_tower.is_some()
            || self.movie_tower.is_some();
        let towers = match any {
            false if self.feature_dim.is_some() => {
                anyhow::bail!("--feature-dim needs --user-features or --movie-features")
            }
            false => None,
            true => {
                let features = |flag: &str, v: &Option<String>, known: &[&str]| match v {
                    Some(t) => TowerOptions::parse_features(flag, t, known),
                    None => Ok(Vec::new()),
                };
                let layers = |flag: &str, v: &Option<String>| match v {
                    Some(t) => TowerOptions::parse_layers(flag, t),
                    None => Ok(Vec::new()),
                };
                let feature_dim = self.feature_dim.unwrap_or(FEATURE_DIM);
                if feature_dim == 0 || !feature_dim.is_multiple_of(4) || feature_dim > 256 {
                    anyhow::bail!(
                        "--feature-dim must be a multiple of 4 in 4..=256, got {feature_dim}"
                    );
                }
                Some(TowerOptions {
                    user_features: features(
                        "--user-features",
                        &self.user_features,
                        &USER_FEATURES,
                    )?,
                    movie_features: features(
                        "--movie-features",
                        &self.movie_features,
                        &MOVIE_FEATURES,
                    )?,
                    feature_dim,
                    user_tower: layers("--user-tower", &self.user_tower)?,
                    movie_tower: layers("--movie-tower", &self.movie_tower)?,
                })
            }
        };
        Ok(Tweaks {
            towers,
            logq_correction: self.logq_correction,
            embedding_learning_rate: self.embedding_learning_rate,
            embedding_l2: self.embedding_l2,
            validation_fraction: self.validation_fraction,
            select: Criterion::parse(&self.select).expect("clap checked the value"),
            average_from: self.average_from,
            refit: self.refit,
            fine_tune_rating: self.fine_tune_rating,
            temperature: self.temperature,
            remove_accidental_hits: self.remove_accidental_hits,
            full_softmax: self.full_softmax,
        })
    }
}

/// What `main` acts on.
pub enum Job {
    Adapters,
    Selftest,
    Bench(BenchJob),
    Synth(SynthOptions),
    Runs(TrainJob),
    Evaluate(EvaluateJob),
    Completions(clap_complete::Shell),
    /// The subcommand's page, or the top-level one.
    Man(Option<String>),
    Recommend(RecommendJob),
    Predict(PredictJob),
    Serve(ServeJob),
    Sweep(SweepJob),
    Recipe(RecipeJob),
    Cv(CvJob),
}

/// `wgrec cv`: one configuration over the folds of a cross-validation.
pub struct CvJob {
    /// The data options every fold shares (`fold` is set per fold).
    pub data: DataOptions,
    pub folds: Vec<wgrec::data::Fold>,
    /// The preset's name, or "train options".
    pub name: String,
    pub opts: TrainOptions,
    pub embedding_dim: usize,
    pub metrics_out: Option<PathBuf>,
}

/// `--folds`: a number N of random folds, or ML-100K fold names.
fn parse_folds(text: &str) -> anyhow::Result<Vec<wgrec::data::Fold>> {
    use wgrec::data::Fold;
    if let Ok(n) = text.trim().parse::<usize>() {
        if !(2..=100).contains(&n) {
            anyhow::bail!("--folds N needs 2 to 100 folds, got {n}");
        }
        return Ok((0..n)
            .map(|index| Fold::Random { folds: n, index })
            .collect());
    }
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    for name in &names {
        // A fold name becomes NAME.base / NAME.test in the data directory: no paths.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            anyhow::bail!(
                "--folds: {name:?} is neither a number of folds nor a fold name such as u1 (letters, \
                 digits, - and _)"
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(**n)) {
        anyhow::bail!("--folds: {dup} is listed twice");
    }
    Ok(names.into_iter().map(|n| Fold::Named(n.into())).collect())
}

/// `wgrec train` and `wgrec tutorial`: one or more configurations on one data set.
pub struct TrainJob {
    pub data: DataOptions,
    pub runs: Vec<TrainOptions>,
    /// None: 32, or the checkpoint's with `resume`.
    pub embedding_dim: Option<usize>,
    pub eval_batch_size: usize,
    pub metrics_out: Option<PathBuf>,
    /// Per-epoch curves of the (single) run, as SVG.
    pub plot: Option<PathBuf>,
    pub profile: bool,
    pub trace: Option<PathBuf>,
    /// Checkpoint path per run.
    pub save: Vec<Option<PathBuf>>,
    pub resume: Option<PathBuf>,
}

/// `wgrec bench`: kernel timings per shape, or the scaling chart.
pub struct BenchJob {
    pub shapes: Vec<Shape>,
    pub seed: u64,
    pub out: Option<PathBuf>,
    pub scaling: Option<PathBuf>,
}

/// `wgrec recommend`: top-k movies of one user, or of every user into a file.
pub struct RecommendJob {
    pub model: PathBuf,
    /// None: every user, written to `out`.
    pub user: Option<String>,
    pub out: Option<PathBuf>,
    pub k: usize,
    pub exclude_seen: bool,
}

/// `wgrec recipe`: a named preset over several seeds.
pub struct RecipeJob {
    pub data: DataOptions,
    pub name: String,
    pub runs: Vec<TrainOptions>,
    pub embedding_dim: usize,
    pub metrics_out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

/// `wgrec evaluate`: a saved model on the test split it was trained beside.
pub struct EvaluateJob {
    pub model: PathBuf,
    /// The data options given; the seed, and the split and dataset not given, come from the checkpoint.
    pub data: DataOptions,
    /// Whether --split was given.
    pub split_given: bool,
    pub metrics_out: Option<PathBuf>,
}

/// `wgrec sweep`: the trade-off between the tasks over a grid of weights.
pub struct SweepJob {
    pub data: DataOptions,
    pub sweep: SweepConfig,
}

/// `wgrec predict`: one predicted rating.
pub struct PredictJob {
    pub model: PathBuf,
    pub user: String,
    pub movie: String,
}

/// `wgrec serve`: the model over HTTP.
pub struct ServeJob {
    pub model: PathBuf,
    pub addr: std::net::SocketAddr,
    pub max_batch: usize,
    pub max_wait: std::time::Duration,
}

pub struct Config {
    pub adapter: AdapterChoice,
    pub quiet: bool,
    pub kernels: Choice,
    pub job: Job,
}

/// An on/off environment variable: on when set to anything but "", "0" or "false".
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| flag_is_on(&v))
}

fn flag_is_on(value: &str) -> bool {
    !matches!(value.to_ascii_lowercase().as_str(), "" | "0" | "false")
}

impl Cli {
    pub fn into_config(self) -> anyhow::Result<Config> {
        let adapter = AdapterChoice {
            backend: self.backend.as_deref().map(parse_backend).transpose()?,
            name_contains: self.adapter,
        };
        let data = |d: DataArgs, seed| DataOptions {
            data_dir: d.data_dir,
            split_dir: d.split_dir,
            seed,
            split: match d.split {
                None | Some(SplitArg::Random) => SplitKind::Random,
                Some(SplitArg::Temporal) => SplitKind::Temporal,
                Some(SplitArg::Stratified) => SplitKind::Stratified,
            },
            test_fraction: d.test_fraction,
            fold: None,
            dataset: d.dataset,
            cache_dir: d.cache_dir,
            mirror: std::env::var("WGREC_MIRROR").ok().filter(|m| !m.is_empty()),
            offline: d.offline || env_flag("WGREC_OFFLINE"),
        };
        let job = match self.command {
            Command::Adapters => Job::Adapters,
            Command::Selftest => Job::Selftest,
            Command::Bench {
                shape,
                seed,
                out,
                scaling,
            } => Job::Bench(BenchJob {
                shapes: match shape.as_str() {
                    "tutorial" => vec![Shape::tutorial()],
                    "large" => vec![Shape::large()],
                    _ => vec![Shape::tutorial(), Shape::large()],
                },
                seed,
                out,
                scaling,
            }),
            Command::Synth {
                users,
                movies,
                ratings,
                out,
                format,
                seed,
            } => Job::Synth(SynthOptions {
                users,
                movies,
                ratings,
                out,
                format: match format {
                    SynthFormatArg::Ml100k => SynthFormat::Ml100k,
                    SynthFormatArg::Ml1m => SynthFormat::Ml1m,
                    SynthFormatArg::Csv => SynthFormat::Csv,
                },
                seed,
            }),
            Command::Tutorial {
                data: d,
                epochs,
                seed,
                metrics_out,
                profile,
                save_dir,
            } => Job::Runs(TrainJob {
                data: data(d, seed),
                runs: [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
                    .into_iter()
                    .map(|(r, t)| TrainOptions {
                        epochs,
                        seed,
                        ..TrainOptions::tutorial(r, t)
                    })
                    .collect(),
                embedding_dim: Some(32),
                eval_batch_size: 4096,
                metrics_out,
                profile: profile.profile,
                trace: profile.trace,
                save: ["rating", "retrieval", "joint"]
                    .iter()
                    .map(|name| {
                        save_dir
                            .as_ref()
                            .map(|d| d.join(format!("{name}.safetensors")))
                    })
                    .collect(),
                resume: None,
                plot: None,
            }),
            Command::Train {
                data: d,
                rating_weight,
                retrieval_weight,
                epochs,
                batch_size,
                eval_batch_size,
                learning_rate,
                embedding_dim,
                seed,
                reshuffle,
                metrics_out,
                profile,
                save,
                resume,
                plot,
                tweaks,
            } => {
                let opts = TrainOptions {
                    rating_weight,
                    retrieval_weight,
                    epochs,
                    batch_size,
                    learning_rate,
                    seed,
                    reshuffle,
                    tweaks: tweaks.into_tweaks()?,
                };
                // What combines with --save and --resume is the run's rule (train::run::Run).
                opts.validate()?;
                Job::Runs(TrainJob {
                    data: data(d, seed),
                    runs: vec![opts],
                    embedding_dim,
                    eval_batch_size,
                    metrics_out,
                    profile: profile.profile,
                    trace: profile.trace,
                    save: vec![save],
                    resume,
                    plot,
                })
            }
            Command::Sweep {
                data: d,
                rating_weights,
                retrieval_weights,
                epochs,
                seeds,
                batch_size,
                learning_rate,
                out,
                presets,
                tweaks,
            } => {
                for p in &presets {
                    recipe::preset(p)?;
                }
                // Without --split-dir, one split for the whole sweep: the first seed's.
                let split_seed = seeds.first().copied().unwrap_or(42);
                let sweep = SweepConfig {
                    rating_weights,
                    retrieval_weights,
                    base: TrainOptions {
                        epochs,
                        batch_size,
                        learning_rate,
                        tweaks: tweaks.into_tweaks()?,
                        ..TrainOptions::tutorial(1.0, 1.0)
                    },
                    seeds,
                    embedding_dim: 32,
                    eval_batch_size: 4096,
                    out,
                    presets,
                };
                sweep.runs()?;
                Job::Sweep(SweepJob {
                    data: data(d, split_seed),
                    sweep,
                })
            }
            Command::Recipe {
                data: d,
                preset,
                seeds,
                metrics_out,
                plot,
            } => {
                let p = recipe::preset(&preset)?;
                if seeds.is_empty() {
                    anyhow::bail!("--seeds needs at least one seed");
                }
                Job::Recipe(RecipeJob {
                    data: data(d, seeds[0]),
                    name: p.name.to_string(),
                    runs: seeds
                        .iter()
                        .map(|&seed| TrainOptions {
                            seed,
                            ..p.opts.clone()
                        })
                        .collect(),
                    embedding_dim: p.embedding_dim,
                    metrics_out,
                    plot,
                })
            }
            Command::Cv {
                data: d,
                folds,
                preset,
                rating_weight,
                retrieval_weight,
                epochs,
                batch_size,
                learning_rate,
                embedding_dim,
                seed,
                reshuffle,
                tweaks,
                metrics_out,
            } => {
                if d.split.is_some() || d.split_dir.is_some() || d.test_fraction.is_some() {
                    anyhow::bail!(
                        "wgrec cv: --folds replaces --split, --split-dir and --test-fraction"
                    );
                }
                let folds = parse_folds(&folds)?;
                let tweaks = tweaks.into_tweaks()?;
                let (name, opts, embedding_dim) = match preset {
                    Some(preset) => {
                        let p = recipe::preset(&preset)?;
                        let given = [
                            ("--epochs", epochs.is_some()),
                            ("--batch-size", batch_size.is_some()),
                            ("--learning-rate", learning_rate.is_some()),
                            ("--embedding-dim", embedding_dim.is_some()),
                            ("--reshuffle", reshuffle),
                            ("the tweak options", tweaks != Tweaks::default()),
                        ];
                        if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
                            anyhow::bail!(
                                "--preset {preset} sets the training options; leave out {flag}"
                            );
                        }
                        let opts = TrainOptions { seed, ..p.opts };
                        (p.name.to_string(), opts, p.embedding_dim)
                    }
                    None => {
                        let base = TrainOptions::tutorial(1.0, 1.0);
                        let opts = TrainOptions {
                            rating_weight: rating_weight.expect("clap requires it"),
                            retrieval_weight: retrieval_weight.expect("clap requires it"),
                            epochs: epochs.unwrap_or(base.epochs),
                            batch_size: batch_size.unwrap_or(base.batch_size),
                            learning_rate: learning_rate.unwrap_or(base.learning_rate),
                            seed,
                            reshuffle,
                            tweaks,
                        };
                        (
                            "train options".to_string(),
                            opts,
                            embedding_dim.unwrap_or(32),
                        )
                    }
                };
                opts.validate()?;
                Job::Cv(CvJob {
                    data: data(d, seed),
                    folds,
                    name,
                    opts,
                    embedding_dim,
                    metrics_out,
                })
            }
            Command::Evaluate {
                model,
                data: d,
                metrics_out,
            } => Job::Evaluate(EvaluateJob {
                model,
                split_given: d.split.is_some(),
                data: data(d, 0),
                metrics_out,
            }),
            Command::Completions { shell } => Job::Completions(shell),
            Command::Man { subcommand } => Job::Man(subcommand),
            Command::Recommend {
                model,
                user,
                all_users: _,
                out,
                k,
                exclude_seen,
            } => {
                if !(1..=wgrec::serve::MAX_K).contains(&k) {
                    anyhow::bail!("-k must be between 1 and {}, got {k}", wgrec::serve::MAX_K);
                }
                Job::Recommend(RecommendJob {
                    model,
                    user,
                    out,
                    k,
                    exclude_seen,
                })
            }
            Command::Predict { model, user, movie } => {
                Job::Predict(PredictJob { model, user, movie })
            }
            Command::Serve {
                model,
                addr,
                max_batch,
                max_wait_us,
            } => Job::Serve(ServeJob {
                model,
                addr,
                max_batch: max_batch as usize,
                max_wait: std::time::Duration::from_micros(max_wait_us),
            }),
        };
        Ok(Config {
            adapter,
            quiet: self.quiet,
            kernels: self.kernels,
            job,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command, built (globals propagated), `help` left out.
    fn commands() -> Vec<clap::Command> {
        let mut cmd = Cli::command();
        cmd.build();
        let subs = cmd.get_subcommands().filter(|c| c.get_name() != "help");
        let mut all: Vec<clap::Command> = subs.cloned().collect();
        all.insert(0, cmd);
        all
    }

    /// The words of an example line: double quotes group, and `#`, `>` or `|` end the command.
    fn words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quoted) = (Vec::new(), None::<String>, false);
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    word.get_or_insert_with(String::new);
                }
                '#' | '>' | '|' if !quoted => break,
                c if c.is_whitespace() && !quoted => words.extend(word.take()),
                c => word.get_or_insert_with(String::new).push(c),
            }
        }
        words.extend(word);
        words
    }

    #[test]
    fn every_command_has_a_one_line_description_and_examples_that_run() {
        for cmd in commands() {
            let name = cmd.get_name().to_string();
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(
                !about.is_empty() && !about.contains('\n') && about.len() <= 100,
                "{name}: about {about:?}"
            );
            let after = cmd
                .get_after_help()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let examples: Vec<Vec<String>> = after
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("wgrec "))
                .map(words)
                .collect();
            assert!(!examples.is_empty(), "{name}: no examples in {after:?}");
            for args in examples {
                let parsed = Cli::try_parse_from(&args).map(Cli::into_config);
                assert!(
                    matches!(parsed, Ok(Ok(_))),
                    "{name}: example {args:?} does not parse"
                );
            }
        }
    }

    /// An option shared by subcommands has one help text, value name and default, except where its
    /// meaning differs on purpose (listed).
    #[test]
    fn shared_options_mean_the_same_everywhere() {
        let differs = [
            ("seed", "bench"),
            ("seed", "synth"),
            ("metrics-out", "evaluate"),
            ("out", "recommend"),
            ("out", "sweep"),
            ("out", "bench"),
            ("out", "synth"),
            ("seeds", "recipe"), // default 42,1,2: a recipe reports a mean and spread
            // cv's training options have no defaults of their own: a preset may set them instead.
            ("epochs", "cv"),
            ("batch-size", "cv"),
            ("learning-rate", "cv"),
            ("embedding-dim", "cv"),
            ("seed", "cv"),
            ("metrics-out", "cv"),
            ("preset", "cv"), // optional here: without it, the training options
        ];
        let mut first: std::collections::HashMap<String, (String, String)> = Default::default();
        let mut mismatches = Vec::new();
        for cmd in commands().iter().skip(1) {
            let sub = cmd.get_name();
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if differs.contains(&(long, sub)) || long == "help" || long == "version" {
                    continue;
                }
                let sig = format!(
                    "help {:?}, value {:?}, default {:?}",
                    arg.get_help().map(|h| h.to_string()),
                    arg.get_value_names(),
                    arg.get_default_values()
                );
                let (where_, want) = first
                    .entry(long.to_string())
                    .or_insert_with(|| (sub.to_string(), sig.clone()));
                if &sig != want {
                    mismatches.push(format!("--{long}: {sub}: {sig}\n  {where_}: {want}"));
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        for long in [
            "quiet",
            "backend",
            "adapter",
            "data-dir",
            "offline",
            "metrics-out",
        ] {
            assert!(first.contains_key(long), "--{long} is in no subcommand");
        }
    }

    #[test]
    fn evaluate_takes_metrics_out_and_offline_reads_the_environment() {
        let cli = Cli::try_parse_from([
            "wgrec",
            "evaluate",
            "--model",
            "m.safetensors",
            "--metrics-out",
            "e.json",
            "--offline",
        ])
        .unwrap();
        let Job::Evaluate(EvaluateJob {
            metrics_out, data, ..
        }) = cli.into_config().unwrap().job
        else {
            panic!("expected evaluate")
        };
        assert_eq!(metrics_out, Some(PathBuf::from("e.json")));
        assert!(data.offline);
        for (value, on) in [
            ("1", true),
            ("yes", true),
            ("0", false),
            ("FALSE", false),
            ("", false),
        ] {
            assert_eq!(flag_is_on(value), on, "WGREC_OFFLINE={value:?}");
        }
    }

    #[test]
    fn tutorial_runs_the_three_configs() {
        let cli =
            Cli::try_parse_from(["wgrec", "tutorial", "--data-dir", "x", "--epochs", "2"]).unwrap();
        let Job::Runs(TrainJob { runs, .. }) = cli.into_config().unwrap().job else {
            panic!("expected runs")
        };
        let w: Vec<(f32, f32)> = runs
            .iter()
            .map(|r| (r.rating_weight, r.retrieval_weight))
            .collect();
        assert_eq!(w, vec![(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]);
        assert!(runs
            .iter()
            .all(|r| r.epochs == 2 && r.batch_size == 8192 && !r.reshuffle));
    }

    #[test]
    fn data_options_map_and_conflict() {
        let cli = Cli::try_parse_from([
            "wgrec",
            "tutorial",
            "--dataset",
            "ml-1m",
            "--split",
            "temporal",
        ])
        .unwrap();
        let Job::Runs(TrainJob { data, .. }) = cli.into_config().unwrap().job else {
            panic!("expected runs")
        };
        assert_eq!(data.dataset.as_deref(), Some("ml-1m"));
        assert_eq!(data.split, SplitKind::Temporal);
        for args in [
            &["wgrec", "tutorial", "--dataset", "ml-1m", "--data-dir", "x"][..],
            &["wgrec", "tutorial", "--split-dir", "x", "--split", "random"],
            &["wgrec", "tutorial", "--dataset", "ml-2m"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    /// `wgrec train` of a joint model with `extra` flags: parsed, then turned into a config.
    fn joint_train(extra: &[&str]) -> Result<anyhow::Result<Config>, clap::Error> {
        let mut args = vec![
            "wgrec",
            "train",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
        ];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args).map(|c| c.into_config())
    }

    #[test]
    fn fine_tune_rating_maps_to_its_tweak() {
        let train = |extra: &[&str]| {
            joint_train(&[&["--fine-tune-rating", "2"][..], extra].concat()).unwrap()
        };
        let Job::Runs(TrainJob { runs, .. }) = train(&[]).unwrap().job else {
            panic!("expected runs")
        };
        assert_eq!(runs[0].tweaks.fine_tune_rating, 2);
        // With --save or --resume the run refuses it (train::run::Run::save / Run::resume, tested there
        // and through the binary in tests/cli.rs).
    }

    #[test]
    fn tutorial_saves_one_checkpoint_per_config() {
        let args = ["wgrec", "tutorial", "--save-dir", "out"];
        let Job::Runs(TrainJob { save, .. }) = Cli::try_parse_from(args)
            .unwrap()
            .into_config()
            .unwrap()
            .job
        else {
            panic!("expected runs")
        };
        let names: Vec<String> = save
            .iter()
            .map(|p| p.as_ref().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "out/rating.safetensors",
                "out/retrieval.safetensors",
                "out/joint.safetensors"
            ]
        );
    }

    #[test]
    fn recommend_needs_one_user_or_all_users_with_out() {
        let ok = |args: &[&str]| Cli::try_parse_from(args).is_ok();
        assert!(ok(&["wgrec", "recommend", "--model", "m", "--user", "1"]));
        assert!(ok(&[
            "wgrec",
            "recommend",
            "--model",
            "m",
            "--all-users",
            "--out",
            "x.csv"
        ]));
        assert!(!ok(&["wgrec", "recommend", "--model", "m"]));
        assert!(!ok(&["wgrec", "recommend", "--model", "m", "--all-users"]));
        assert!(!ok(&[
            "wgrec",
            "recommend",
            "--model",
            "m",
            "--user",
            "1",
            "--all-users",
            "--out",
            "x"
        ]));
        let k0 = [
            "wgrec",
            "recommend",
            "--model",
            "m",
            "--user",
            "1",
            "-k",
            "0",
        ];
        assert!(Cli::try_parse_from(k0).unwrap().into_config().is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        let cli = Cli::try_parse_from(["wgrec", "--backend", "nope", "adapters"]).unwrap();
        assert!(cli.into_config().is_err());
        let args = [
            "wgrec",
            "train",
            "--rating-weight=-1",
            "--retrieval-weight",
            "1",
        ];
        assert!(Cli::try_parse_from(args).unwrap().into_config().is_err());
    }

    #[test]
    fn selection_flags_parse_and_bad_combinations_are_errors() {
        let train = joint_train;
        let Ok(Ok(Config {
            job: Job::Runs(TrainJob { runs, .. }),
            ..
        })) = train(&[
            "--validation-fraction",
            "0.1",
            "--select",
            "top100",
            "--refit",
            "--epochs",
            "5",
            "--average-from",
            "3",
        ])
        else {
            panic!("expected a train job")
        };
        let t = &runs[0].tweaks;
        assert_eq!(t.validation_fraction, 0.1);
        assert_eq!(t.select, Criterion::Top100);
        assert!(t.refit);
        assert_eq!(t.average_from, Some(3));
        let Ok(Ok(Config {
            job: Job::Runs(TrainJob { runs, .. }),
            ..
        })) = train(&[])
        else {
            panic!("expected a train job")
        };
        assert_eq!(runs[0], TrainOptions::tutorial(1.0, 1.0), "off by default");
        for bad in [
            &["--validation-fraction", "0.5"][..],
            &["--validation-fraction=-0.1"],
            &["--refit"],
            &["--average-from", "4"],
            &["--average-from", "0", "--epochs", "3"],
        ] {
            assert!(
                !matches!(train(bad), Ok(Ok(_))),
                "{bad:?} should be rejected"
            );
        }
        assert!(train(&["--select", "loss"]).is_err());
        let ok = train(&[
            "--validation-fraction",
            "0.1",
            "--refit",
            "--save",
            "m.safetensors",
        ]);
        assert!(matches!(ok, Ok(Ok(_))), "a refit model can be saved");
    }

    #[test]
    fn recipe_and_sweep_parse() {
        let cli = Cli::try_parse_from(["wgrec", "recipe", "--seeds", "7,8"]).unwrap();
        let Job::Recipe(RecipeJob { runs, name, .. }) = cli.into_config().unwrap().job else {
            panic!("expected a recipe")
        };
        assert_eq!(name, "joint-plus");
        assert_eq!(runs.iter().map(|r| r.seed).collect::<Vec<_>>(), vec![7, 8]);
        assert!(runs.iter().all(|r| r.tweaks.logq_correction));
        let bad = Cli::try_parse_from(["wgrec", "recipe", "--preset", "nope"]).unwrap();
        assert!(bad.into_config().is_err());
        let args = [
            "wgrec",
            "sweep",
            "--rating-weights",
            "0,1",
            "--retrieval-weights",
            "1",
            "--out",
            "d",
        ];
        let Job::Sweep(SweepJob { sweep, .. }) = Cli::try_parse_from(args)
            .unwrap()
            .into_config()
            .unwrap()
            .job
        else {
            panic!("expected a sweep")
        };
        assert_eq!(sweep.runs().unwrap().len(), 2);
        assert_eq!(sweep.base.batch_size, 8192);
    }
}
