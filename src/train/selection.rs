//! Model selection on a validation split carved out of the training split (`--validation-fraction`):
//! the hold-out rule, the selection criterion, and parameter averaging. The test split is never touched.

use crate::data::{Ratings, SplitMix64};
use crate::eval::metrics::TestMetrics;
use crate::model::Params;
use crate::options::Criterion;

/// Splits `train` into (fit, validation): for each user with n ratings in `train`,
/// floor(fraction * n) of them, drawn by a seeded shuffle of that user's ratings, go to validation
/// (at most n - 1, so every user keeps a rating to fit). Both sets keep `train`'s order. The draw
/// depends only on `train`, `fraction` and `seed`.
pub fn holdout(train: &Ratings, fraction: f64, seed: u64) -> (Ratings, Ratings) {
    let mask = holdout_mask(&train.user, fraction, seed);
    let mut fit = Ratings::default();
    let mut val = Ratings::default();
    for (i, &v) in mask.iter().enumerate() {
        let to = if v { &mut val } else { &mut fit };
        to.user.push(train.user[i]);
        to.movie.push(train.movie[i]);
        to.rating.push(train.rating[i]);
    }
    (fit, val)
}

/// `true` for the ratings [`holdout`] puts in the validation set.
pub fn holdout_mask(user: &[u32], fraction: f64, seed: u64) -> Vec<bool> {
    let users = user.iter().map(|&u| u as usize + 1).max().unwrap_or(0);
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); users];
    for (i, &u) in user.iter().enumerate() {
        rows[u as usize].push(i as u32);
    }
    let mut rng = SplitMix64::new(seed ^ 0x7A11_DA7E_0000_0000);
    let mut mask = vec![false; user.len()];
    for mut mine in rows {
        let n = mine.len();
        let k = ((fraction * n as f64).floor() as usize).min(n.saturating_sub(1));
        rng.shuffle(&mut mine);
        for &i in &mine[..k] {
            mask[i as usize] = true;
        }
    }
    mask
}

impl Criterion {
    /// Whether `a` is strictly better than `b` (ties keep the earlier candidate).
    pub fn better(self, a: &TestMetrics, b: &TestMetrics) -> bool {
        match self {
            Self::Rmse => a.rmse < b.rmse,
            Self::Top100 => a.top(100) > b.top(100),
            Self::Ndcg10 => ndcg10(a) > ndcg10(b),
        }
    }

    /// Whether the validation pass must rank among the movies unrated in the fit split.
    pub fn ranks_unseen(self) -> bool {
        self == Self::Ndcg10
    }
}

/// NDCG@10 of validation metrics that have it (`Criterion::ranks_unseen`), else NaN (never better).
fn ndcg10(m: &TestMetrics) -> f64 {
    m.ranked.as_ref().map_or(f64::NAN, |r| r.ndcg_at(10))
}

/// The running mean of the parameters after several epochs (stochastic weight averaging).
#[derive(Clone, Debug)]
pub struct Average {
    sum: Vec<f64>,
    count: usize,
    shape: (usize, usize, usize),
}

impl Average {
    pub fn new() -> Self {
        Self {
            sum: Vec::new(),
            count: 0,
            shape: (0, 0, 0),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn add(&mut self, p: &Params) {
        let shape = (p.user_emb.len(), p.movie_emb.len(), p.mlp.len());
        let all = p
            .user_emb
            .iter()
            .chain(&p.movie_emb)
            .chain(&p.mlp)
            .chain(&p.towers);
        if self.count == 0 {
            self.shape = shape;
            self.sum = all.map(|&v| v as f64).collect();
        } else {
            assert_eq!(
                self.shape, shape,
                "averaging parameters of different shapes"
            );
            for (s, &v) in self.sum.iter_mut().zip(all) {
                *s += v as f64;
            }
        }
        self.count += 1;
    }

    /// The mean so far (panics before the first `add`).
    pub fn mean(&self) -> Params {
        assert!(self.count > 0, "no parameters averaged yet");
        let n = self.count as f64;
        let v: Vec<f32> = self.sum.iter().map(|&s| (s / n) as f32).collect();
        let (u, m, l) = self.shape;
        // With towers the averaged tables are stale: setting these parameters recomputes them.
        Params {
            user_emb: v[..u].to_vec(),
            movie_emb: v[u..u + m].to_vec(),
            mlp: v[u + m..u + m + l].to_vec(),
            towers: v[u + m + l..].to_vec(),
        }
    }
}

impl Default for Average {
    fn default() -> Self {
        Self::new()
    }
}

/// One candidate model scored on the validation split.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationPoint {
    pub epoch: usize,
    /// The mean of the parameters after epochs `averaged_from..=epoch`, or None: the epoch's own.
    pub averaged_from: Option<usize>,
    pub metrics: TestMetrics,
}

impl ValidationPoint {
    pub fn label(&self) -> String {
        match self.averaged_from {
            Some(s) => format!("mean of epochs {s}..={}", self.epoch),
            None => format!("epoch {}", self.epoch),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "epoch": self.epoch,
            "averaged_from": self.averaged_from,
            "validation": self.metrics.to_json(),
        })
    }
}

/// Model selection on the validation split: every candidate, and the one kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub fit_ratings: usize,
    pub validation_ratings: usize,
    pub points: Vec<ValidationPoint>,
    /// Index into `points`.
    pub chosen: usize,
    /// With `--refit`: the epochs the kept model was trained again for on the whole training split.
    pub refit_epochs: Option<usize>,
}

impl Selection {
    pub fn chosen(&self) -> &ValidationPoint {
        &self.points[self.chosen]
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fit_ratings": self.fit_ratings,
            "validation_ratings": self.validation_ratings,
            "chosen": self.chosen().to_json(),
            "refit_epochs": self.refit_epochs,
            "candidates": self.points.iter().map(ValidationPoint::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The epochs (and first averaged epoch) of a refit on the whole training split: as many optimizer steps
/// as the selected epochs took on the fit split (Goodfellow, Bengio and Courville, Deep Learning,
/// algorithm 7.2), rounded to whole epochs of `full_batches` batches, at least 1.
pub fn refit_epochs(
    epoch: usize,
    averaged_from: Option<usize>,
    fit_batches: usize,
    full_batches: usize,
) -> (usize, Option<usize>) {
    let scale = |e: usize| {
        let steps = (e * fit_batches) as f64;
        ((steps / full_batches as f64).round() as usize).max(1)
    };
    let epochs = scale(epoch);
    (epochs, averaged_from.map(|s| scale(s).min(epochs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(per_user: &[usize]) -> Ratings {
        let mut r = Ratings::default();
        // Interleave users so the mask has to follow each user's rows, not contiguous runs.
        let most = per_user.iter().copied().max().unwrap_or(0);
        for j in 0..most {
            for (u, &n) in per_user.iter().enumerate() {
                if j < n {
                    r.user.push(u as u32 + 1);
                    r.movie.push((100 * u + j) as u32);
                    r.rating.push((j % 5 + 1) as f32);
                }
            }
        }
        r
    }

    #[test]
    fn holdout_is_deterministic_disjoint_and_per_user() {
        let train = ratings(&[20, 9, 1, 35, 10]);
        let (fit, val) = holdout(&train, 0.1, 7);
        assert_eq!((fit.clone(), val.clone()), holdout(&train, 0.1, 7));
        assert_ne!(val, holdout(&train, 0.1, 8).1, "the seed picks the ratings");
        assert_eq!(fit.len() + val.len(), train.len());
        // Movies are unique per rating here, so disjointness is disjointness of movie ids.
        let mut all: Vec<u32> = fit.movie.iter().chain(&val.movie).copied().collect();
        all.sort_unstable();
        let mut want = train.movie.clone();
        want.sort_unstable();
        assert_eq!(all, want, "fit and validation partition the training split");
        for (u, n) in [(1u32, 20usize), (2, 9), (3, 1), (4, 35), (5, 10)] {
            let v = val.user.iter().filter(|&&x| x == u).count();
            let f = fit.user.iter().filter(|&&x| x == u).count();
            assert_eq!(v, n / 10, "user {u}: floor(0.1 n) held out");
            assert_eq!(v + f, n);
        }
        assert!(!val.is_empty());
        // Order kept: each set is a subsequence of train.
        let pos: Vec<usize> = val
            .movie
            .iter()
            .map(|m| train.movie.iter().position(|x| x == m).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn holdout_keeps_a_rating_per_user_and_zero_holds_nothing() {
        let train = ratings(&[3, 2, 1]);
        let (fit, val) = holdout(&train, 0.99, 1);
        for u in 1..=3u32 {
            assert_eq!(fit.user.iter().filter(|&&x| x == u).count(), 1);
        }
        assert_eq!(val.len(), 3);
        let (fit, val) = holdout(&train, 0.0, 1);
        assert!(val.is_empty());
        assert_eq!(fit, train);
    }

    #[test]
    fn average_is_the_mean() {
        let p = |x: f32| Params {
            user_emb: vec![x; 2],
            movie_emb: vec![2.0 * x; 3],
            mlp: vec![-x; 4],
            towers: vec![3.0 * x; 5],
        };
        let mut a = Average::new();
        a.add(&p(1.0));
        assert_eq!(a.mean(), p(1.0));
        a.add(&p(2.0));
        a.add(&p(6.0));
        assert_eq!(a.count(), 3);
        assert_eq!(a.mean(), p(3.0));
    }

    #[test]
    fn criteria_order_candidates() {
        let m = |top100: f64, rmse: f64| TestMetrics {
            top_k: vec![(100, top100)],
            rmse,
            loss: 0.0,
            seconds: 0.0,
            ranked: None,
        };
        assert!(Criterion::Rmse.better(&m(0.1, 0.9), &m(0.3, 0.95)));
        assert!(!Criterion::Rmse.better(&m(0.1, 0.9), &m(0.3, 0.9)));
        assert!(Criterion::Top100.better(&m(0.3, 0.95), &m(0.1, 0.9)));
        assert_eq!(Criterion::parse("top100").unwrap(), Criterion::Top100);
        assert!(Criterion::parse("loss").is_err());
        assert_eq!(Criterion::parse("ndcg10").unwrap(), Criterion::Ndcg10);
        // Without ranked metrics NDCG@10 is NaN: never better, so a malformed point is never kept.
        assert!(!Criterion::Ndcg10.better(&m(0.1, 0.9), &m(0.3, 0.95)));
    }
}
