//! The command line (clap derive). The clap types never leave `main` and this module: they are turned into
//! plain configuration structs here.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use wgrec::data::DataOptions;
use wgrec::gpu::{parse_backend, AdapterChoice};
use wgrec::recipe;
use wgrec::sweep::SweepConfig;
use wgrec::trainer::{TrainOptions, Tweaks};

/// Multi-task recommenders (TensorFlow Recommenders' MovieLens tutorial and beyond), trained entirely in
/// WebGPU compute shaders on any GPU, or on a software adapter when there is none.
#[derive(Parser, Debug)]
#[command(name = "wgrec", version, about)]
pub struct Cli {
    /// Restrict wgpu to one backend: vulkan, metal, dx12 or gl.
    #[arg(long, global = true, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Use the first adapter whose name contains SUBSTRING (case-insensitive).
    #[arg(long, global = true, value_name = "SUBSTRING")]
    pub adapter: Option<String>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the tutorial's three experiments: rating-only (1, 0), retrieval-only (0, 1) and joint (1, 1).
    Tutorial {
        #[command(flatten)]
        data: DataArgs,
        /// Training epochs per configuration.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Seed of the initialisation, the batch order and (without --split-dir) the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the adapter, histories and test metrics of every run as JSON.
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
    },
    /// Train and evaluate one configuration.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Weight of the rating (MSE) loss.
        #[arg(long)]
        rating_weight: f32,
        /// Weight of the retrieval (in-batch softmax) loss.
        #[arg(long)]
        retrieval_weight: f32,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        #[arg(long, default_value_t = 8192)]
        batch_size: usize,
        /// Batch size of the test-set evaluation (it only changes the reported loss).
        #[arg(long, default_value_t = 4096)]
        eval_batch_size: usize,
        /// Adagrad learning rate.
        #[arg(long, default_value_t = 0.1)]
        learning_rate: f32,
        /// Width of the user and movie embeddings: 16, 32, 48 or 64.
        #[arg(long, default_value_t = 32)]
        embedding_dim: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Draw new batches every epoch (the tutorial reuses the first epoch's batches).
        #[arg(long)]
        reshuffle: bool,
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
        /// Draw this run's per-epoch loss, top-100 and RMSE curves as SVG (evaluates after every epoch).
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        #[command(flatten)]
        tweaks: TweakArgs,
    },
    /// Train every combination of rating and retrieval weights (and seeds); write results.csv,
    /// results.json, tradeoff.svg (top-100 against RMSE, Pareto front marked) and curves.svg into --out.
    Sweep {
        #[command(flatten)]
        data: DataArgs,
        /// Rating weights, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,0.1,1")]
        rating_weights: Vec<f32>,
        /// Retrieval weights, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,0.1,1")]
        retrieval_weights: Vec<f32>,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Seeds, comma-separated; each weighting is trained once per seed.
        #[arg(long, value_delimiter = ',', default_value = "42")]
        seeds: Vec<u64>,
        #[arg(long, default_value_t = 8192)]
        batch_size: usize,
        #[arg(long, default_value_t = 0.1)]
        learning_rate: f32,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        tweaks: TweakArgs,
    },
    /// Train a named preset once per seed and report mean and spread (presets: tutorial-joint,
    /// joint-plus).
    Recipe {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "joint-plus")]
        preset: String,
        /// Seeds, comma-separated; without --split-dir the first one also draws the split.
        #[arg(long, value_delimiter = ',', default_value = "42,1,2")]
        seeds: Vec<u64>,
        #[arg(long, value_name = "FILE.json")]
        metrics_out: Option<PathBuf>,
        /// Per-epoch curves of every seed's run, as SVG (evaluates after every epoch).
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// List every adapter wgpu sees and mark the one that would be used.
    Adapters,
}

#[derive(Args, Debug)]
pub struct DataArgs {
    /// MovieLens 100K directory (u.data, u.item), or a directory holding ml-100k/. Default: $WGREC_DATA_DIR,
    /// then the cache directory ($XDG_CACHE_HOME/wgrec or ~/.cache/wgrec).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory with train.data and test.data (u.data format). Default: shuffle all ratings with the
    /// seed and take 80% for training.
    #[arg(long, value_name = "DIR")]
    pub split_dir: Option<PathBuf>,
}

/// Opt-in departures from the tutorial (off by default).
#[derive(Args, Debug, Clone, Default)]
pub struct TweakArgs {
    /// logQ-correct the in-batch softmax with the batch's movie frequencies (a softmax over the batch's
    /// distinct movies, so popular movies are not penalised for being sampled often).
    #[arg(long)]
    pub logq_correction: bool,
    /// Adagrad learning rate of the embeddings. Default: --learning-rate.
    #[arg(long, value_name = "LR")]
    pub embedding_learning_rate: Option<f32>,
    /// L2 penalty (L2 / 2) |row|^2 on the embedding rows each batch touches.
    #[arg(long, value_name = "L2", default_value_t = 0.0)]
    pub embedding_l2: f32,
}

impl TweakArgs {
    pub fn into_tweaks(self) -> Tweaks {
        Tweaks {
            logq_correction: self.logq_correction,
            embedding_learning_rate: self.embedding_learning_rate,
            embedding_l2: self.embedding_l2,
        }
    }
}

/// What `main` acts on.
pub enum Job {
    Adapters,
    Runs {
        data: DataOptions,
        runs: Vec<TrainOptions>,
        embedding_dim: usize,
        eval_batch_size: usize,
        metrics_out: Option<PathBuf>,
        /// Per-epoch curves of the (single) run, as SVG.
        plot: Option<PathBuf>,
    },
    Sweep {
        data: DataOptions,
        sweep: SweepConfig,
    },
    Recipe {
        data: DataOptions,
        name: String,
        runs: Vec<TrainOptions>,
        embedding_dim: usize,
        metrics_out: Option<PathBuf>,
        plot: Option<PathBuf>,
    },
}

pub struct Config {
    pub adapter: AdapterChoice,
    pub quiet: bool,
    pub job: Job,
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
        };
        let job = match self.command {
            Command::Adapters => Job::Adapters,
            Command::Tutorial {
                data: d,
                epochs,
                seed,
                metrics_out,
            } => Job::Runs {
                data: data(d, seed),
                runs: [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
                    .into_iter()
                    .map(|(r, t)| TrainOptions {
                        epochs,
                        seed,
                        ..TrainOptions::tutorial(r, t)
                    })
                    .collect(),
                embedding_dim: 32,
                eval_batch_size: 4096,
                metrics_out,
                plot: None,
            },
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
                    tweaks: tweaks.into_tweaks(),
                };
                opts.validate()?;
                Job::Runs {
                    data: data(d, seed),
                    runs: vec![opts],
                    embedding_dim,
                    eval_batch_size,
                    metrics_out,
                    plot,
                }
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
                tweaks,
            } => {
                // Without --split-dir, one split for the whole sweep: the first seed's.
                let split_seed = seeds.first().copied().unwrap_or(42);
                let sweep = SweepConfig {
                    rating_weights,
                    retrieval_weights,
                    base: TrainOptions {
                        epochs,
                        batch_size,
                        learning_rate,
                        tweaks: tweaks.into_tweaks(),
                        ..TrainOptions::tutorial(1.0, 1.0)
                    },
                    seeds,
                    embedding_dim: 32,
                    eval_batch_size: 4096,
                    out,
                };
                sweep.runs()?;
                Job::Sweep {
                    data: data(d, split_seed),
                    sweep,
                }
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
                Job::Recipe {
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
                }
            }
        };
        Ok(Config {
            adapter,
            quiet: self.quiet,
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

    #[test]
    fn tutorial_runs_the_three_configs() {
        let cli =
            Cli::try_parse_from(["wgrec", "tutorial", "--data-dir", "x", "--epochs", "2"]).unwrap();
        let Job::Runs { runs, .. } = cli.into_config().unwrap().job else {
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
    fn recipe_and_sweep_parse() {
        let cli = Cli::try_parse_from(["wgrec", "recipe", "--seeds", "7,8"]).unwrap();
        let Job::Recipe { runs, name, .. } = cli.into_config().unwrap().job else {
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
        let Job::Sweep { sweep, .. } = Cli::try_parse_from(args)
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
}
