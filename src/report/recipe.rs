//! Named training presets (`wgrec recipe --preset NAME`): the tutorial's joint model, and `joint-plus`,
//! one joint model meant to beat the tutorial's specialised models on both tasks at once, and
//! `joint-plus-val`, the same with its epochs chosen on a validation split, and `joint-features`,
//! joint-plus with feature towers on both sides, and `joint-full`, joint-plus with the retrieval softmax
//! over the whole catalogue. Presets only set options that `train` also has; the
//! tutorial's defaults stay as they are.

use crate::options::{Criterion, TowerOptions, TrainOptions, Tweaks};
use crate::report::sweep::mean_min_max;
use crate::train::run::RunResult;
use anyhow::{bail, Result};

pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    /// The training options; the seed is set per run.
    pub opts: TrainOptions,
    pub embedding_dim: usize,
}

pub const PRESETS: [&str; 5] = [
    "tutorial-joint",
    "joint-plus",
    "joint-plus-val",
    "joint-features",
    "joint-full",
];

pub fn preset(name: &str) -> Result<Preset> {
    Ok(match name {
        "tutorial-joint" => Preset {
            name: "tutorial-joint",
            about: "the TFRS tutorial's joint model: weights (1, 1), batch 8192, Adagrad 0.1, 3 epochs",
            opts: TrainOptions::tutorial(1.0, 1.0),
            embedding_dim: 32,
        },
        "joint-plus" => Preset {
            name: "joint-plus",
            about: "weights (4, 1) with a logQ-corrected in-batch softmax, batch 512, Adagrad 0.1 for \
                    the MLP and 0.02 for the embeddings, L2 0.01 on touched embedding rows, 25 epochs, \
                    then 1 epoch of the rating task alone with the embeddings frozen",
            opts: joint_plus(25),
            embedding_dim: 32,
        },
        "joint-plus-val" => Preset {
            name: "joint-plus-val",
            about: "joint-plus, with the epochs chosen on a validation split: up to 30 epochs on 90% \
                    of each user's training ratings, the epoch with the lowest RMSE on the other 10% \
                    kept, then as many steps from the same initialisation on the whole training split \
                    (without joint-plus's final rating fine-tune)",
            opts: TrainOptions {
                tweaks: Tweaks {
                    validation_fraction: 0.1,
                    select: Criterion::Rmse,
                    refit: true,
                    fine_tune_rating: 0,
                    ..joint_plus(30).tweaks
                },
                ..joint_plus(30)
            },
            embedding_dim: 32,
        },
        "joint-features" => Preset {
            name: "joint-features",
            about: "joint-plus with feature towers: 24-wide id embeddings concatenated with 8-wide \
                    embeddings of the user's age, gender and occupation and of the movie's genres, \
                    decade and title words (multi-hot fields mean-pooled), 22 epochs, then joint-plus's \
                    rating fine-tune; chosen on a validation split (see the README)",
            opts: joint_features(),
            embedding_dim: 24,
        },
        "joint-full" => Preset {
            name: "joint-full",
            about: "joint-plus with the retrieval softmax over every movie of the catalogue each step \
                    (--full-softmax, no logQ correction), embedding learning rate 0.05, 20 epochs, then \
                    joint-plus's rating fine-tune; chosen on a validation split (see the README)",
            opts: joint_full(),
            embedding_dim: 32,
        },
        other => bail!(
            "unknown preset {other:?}; the presets are {}",
            PRESETS.join(", ")
        ),
    })
}

/// joint-plus's options for `epochs` epochs.
fn joint_plus(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch_size: 512,
        tweaks: Tweaks {
            logq_correction: true,
            embedding_learning_rate: Some(0.02),
            embedding_l2: 0.01,
            fine_tune_rating: 1,
            ..Tweaks::default()
        },
        ..TrainOptions::tutorial(4.0, 1.0)
    }
}

/// joint-features's options: joint-plus with towers that end in the same 48 columns on both sides
/// (24 + 3 fields x 8). On seed 42's validation split (10% of each user's training ratings) this tower
/// reached RMSE 0.9349 at epoch 22 against 0.9364 for joint-plus's ids alone (top-100 0.307 against
/// 0.315); a dense stack on top did worse (one linear layer of 32: 0.9552; 64, 32: 1.01 at epoch 7).
fn joint_features() -> TrainOptions {
    let plus = joint_plus(22);
    TrainOptions {
        tweaks: Tweaks {
            towers: Some(TowerOptions {
                user_features: ["age", "gender", "occupation"].map(String::from).to_vec(),
                movie_features: ["genres", "decade", "title_words"]
                    .map(String::from)
                    .to_vec(),
                feature_dim: 8,
                user_tower: Vec::new(),
                movie_tower: Vec::new(),
            }),
            ..plus.tweaks
        },
        ..plus
    }
}

/// joint-full's options: joint-plus with the full softmax. On the stratified split of seed 42 with 10%
/// of each user's training ratings held out, validation NDCG@10 peaked at epoch 20 (0.160, RMSE 0.932;
/// joint-plus's in-batch softmax: 0.124 at its peak); embedding learning rate 0.02 rose to 0.149 by epoch
/// 30, 0.1 peaked at 0.160 on epoch 7 with worse RMSE, width 64 reached 0.164 but RMSE 0.946, and
/// joint-features's towers 0.157 with RMSE 0.949.
fn joint_full() -> TrainOptions {
    let plus = joint_plus(20);
    TrainOptions {
        tweaks: Tweaks {
            logq_correction: false,
            full_softmax: true,
            embedding_learning_rate: Some(0.05),
            ..plus.tweaks
        },
        ..plus
    }
}

/// Mean and [min, max] over the runs (seeds) of the headline metrics.
pub fn summary(name: &str, runs: &[RunResult]) -> String {
    let line = |what: &str, f: &dyn Fn(&RunResult) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let (mean, min, max) = mean_min_max(&v);
        format!("  {what:<36} {mean:.4}  [{min:.4}, {max:.4}]\n")
    };
    let seeds: Vec<String> = runs.iter().map(|r| r.opts.seed.to_string()).collect();
    let mut s = format!("{name}: mean [min, max] over seeds {}\n", seeds.join(", "));
    s += &line("factorized_top_k top-100 accuracy", &|r| r.test.top(100));
    s += &line("RMSE", &|r| r.test.rmse);
    let ranked = |f: fn(&crate::eval::metrics::RankedMetrics) -> f64| {
        move |r: &RunResult| r.test.ranked.as_ref().map(f).unwrap_or(f64::NAN)
    };
    s += &line(
        "Recall@100 (training movies excluded)",
        &ranked(|m| m.recall_at(100)),
    );
    s += &line(
        "NDCG@10 (training movies excluded)",
        &ranked(|m| m.ndcg_at(10)),
    );
    s += &line("MAE", &ranked(|m| m.mae));
    // Microsoft Recommenders' table (top 10 among movies unrated in training).
    s += &line("MAP@10", &ranked(|m| m.map_at(10)));
    s += &line("Precision@10", &ranked(|m| m.precision_at(10)));
    s += &line("Recall@10", &ranked(|m| m.recall_at(10)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_the_tutorial_is_untouched() {
        for name in PRESETS {
            let p = preset(name).unwrap();
            assert_eq!(p.name, name);
            p.opts.validate().unwrap();
        }
        assert_eq!(
            preset("tutorial-joint").unwrap().opts,
            TrainOptions::tutorial(1.0, 1.0)
        );
        assert_eq!(TrainOptions::tutorial(1.0, 1.0).tweaks, Tweaks::default());
        assert!(preset("nope").is_err());
        let (plus, val) = (
            preset("joint-plus").unwrap(),
            preset("joint-plus-val").unwrap(),
        );
        assert_eq!(plus.opts.tweaks.validation_fraction, 0.0);
        assert!(val.opts.tweaks.refit && val.opts.tweaks.validation_fraction == 0.1);
        assert_eq!(
            TrainOptions {
                epochs: 25,
                tweaks: Tweaks {
                    validation_fraction: 0.0,
                    refit: false,
                    fine_tune_rating: 1,
                    ..val.opts.tweaks.clone()
                },
                ..val.opts.clone()
            },
            plus.opts,
            "joint-plus-val is joint-plus plus the selection, minus the rating fine-tune"
        );
        assert_eq!(
            (
                plus.opts.tweaks.fine_tune_rating,
                val.opts.tweaks.fine_tune_rating
            ),
            (1, 0)
        );
        let features = preset("joint-features").unwrap();
        assert_eq!(
            TrainOptions {
                tweaks: Tweaks {
                    towers: None,
                    ..features.opts.tweaks.clone()
                },
                ..features.opts.clone()
            },
            TrainOptions {
                epochs: 22,
                ..plus.opts.clone()
            },
            "joint-features is joint-plus at 22 epochs plus the towers"
        );
        assert_eq!(
            features.opts.table_width(features.embedding_dim).unwrap(),
            48
        );
        let full = preset("joint-full").unwrap();
        assert_eq!(
            TrainOptions {
                epochs: 25,
                tweaks: Tweaks {
                    full_softmax: false,
                    logq_correction: true,
                    embedding_learning_rate: Some(0.02),
                    ..full.opts.tweaks.clone()
                },
                ..full.opts.clone()
            },
            plus.opts,
            "joint-full is joint-plus at 20 epochs with the full softmax and embedding lr 0.05"
        );
    }
}
