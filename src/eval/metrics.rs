//! The test metrics TFRS reports (FactorizedTopK top-k accuracy, RMSE, the weighted loss) and the usual
//! offline metrics of recommender libraries (Recall@K and NDCG@K per user with the user's training movies
//! excluded, MAE), Microsoft Recommenders' four top-10 metrics (MAP, NDCG, Precision, Recall), computed from
//! the ranks and errors the evaluator reads back.

/// TFRS's default FactorizedTopK cut-offs.
pub const KS: [u32; 5] = [1, 5, 10, 50, 100];

/// Cut-offs of Recall@K and NDCG@K.
pub const RANKED_KS: [u32; 4] = [10, 20, 50, 100];

/// The cut-off of Microsoft Recommenders' benchmark table (`map_at_10`, `ndcg_at_10`, `precision_at_10`,
/// `recall_at_10`).
pub const TOP_N: u32 = 10;

#[derive(Clone, Debug, PartialEq)]
pub struct TestMetrics {
    /// (k, accuracy) for every cut-off in KS.
    pub top_k: Vec<(u32, f64)>,
    pub rmse: f64,
    pub loss: f64,
    pub seconds: f64,
    /// Recall@K, NDCG@K and MAE, when the evaluator knows the training split.
    pub ranked: Option<RankedMetrics>,
}

/// Per-user ranking metrics with the user's training movies excluded (as Microsoft Recommenders and
/// RecBole compute them), averaged over test users, and the rating head's mean absolute error.
#[derive(Clone, Debug, PartialEq)]
pub struct RankedMetrics {
    /// (k, mean over users of hits in the top k / the user's test ratings) for every k in RANKED_KS.
    pub recall: AtK,
    /// (k, mean over users of DCG@k / ideal DCG@k) for every k in RANKED_KS.
    pub ndcg: AtK,
    /// (k, mean over users of hits in the top k / k) for k = TOP_N: see [`precision_map`].
    pub precision: AtK,
    /// (k, MAP@k) for k = TOP_N: see [`precision_map`].
    pub map: AtK,
    pub mae: f64,
}

impl RankedMetrics {
    pub fn recall_at(&self, k: u32) -> f64 {
        lookup(&self.recall, k)
    }

    pub fn ndcg_at(&self, k: u32) -> f64 {
        lookup(&self.ndcg, k)
    }

    pub fn precision_at(&self, k: u32) -> f64 {
        lookup(&self.precision, k)
    }

    pub fn map_at(&self, k: u32) -> f64 {
        lookup(&self.map, k)
    }
}

fn lookup(v: &[(u32, f64)], k: u32) -> f64 {
    v.iter()
        .find(|(kk, _)| *kk == k)
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN)
}

/// (k, value) for every cut-off.
pub type AtK = Vec<(u32, f64)>;

/// Recall@K and NDCG@K averaged over users from the filtered rank of every test pair (`rank[i]`: how many
/// non-excluded candidates outrank pair i, i.e. its 0-based position in the user's list). `user_offsets`
/// cut the pairs into users (CSR, pairs grouped by user).
pub fn recall_ndcg(rank: &[u32], user_offsets: &[u32], ks: &[u32]) -> (AtK, AtK) {
    let users = user_offsets.len().saturating_sub(1).max(1) as f64;
    let gain = |pos: u32| 1.0 / (pos as f64 + 2.0).log2();
    let mut recall = vec![0.0; ks.len()];
    let mut ndcg = vec![0.0; ks.len()];
    for w in user_offsets.windows(2) {
        let ranks = &rank[w[0] as usize..w[1] as usize];
        for (j, &k) in ks.iter().enumerate() {
            let hits = ranks.iter().filter(|&&r| r < k).count();
            recall[j] += hits as f64 / ranks.len() as f64;
            let dcg: f64 = ranks.iter().filter(|&&r| r < k).map(|&r| gain(r)).sum();
            let ideal: f64 = (0..(ranks.len() as u32).min(k)).map(gain).sum();
            ndcg[j] += dcg / ideal;
        }
    }
    let mean = |v: Vec<f64>| {
        ks.iter()
            .copied()
            .zip(v.into_iter().map(|x| x / users))
            .collect()
    };
    (mean(recall), mean(ndcg))
}

/// Precision@k and MAP@k as Microsoft Recommenders' `python_evaluation` defines them, from the same filtered
/// ranks as [`recall_ndcg`] (`rank[i]`: pair i's 0-based position in its user's list of candidates not rated
/// in training; `user_offsets`: the CSR of each user's pairs, every user with at least one test pair):
///
/// - Precision@k of a user = (hits in the top k) / k, hits being the user's test movies at positions < k;
/// - AP@k of a user = (sum over the hits, in position order, of (hits so far, this one included) / (its
///   position + 1)) / (the user's number of test movies): the precision at each hit, divided by all the
///   relevant movies. That is their `map` with k = 10, the MAP of their benchmark table (Spark MLlib's
///   definition); their newer `map_at_k` divides by min(relevant, k) instead, which gives larger values;
/// - both averaged over the users with test movies.
///
/// Two test movies tied on score share a rank; ties of f32 dot products are rare enough not to be broken.
pub fn precision_map(rank: &[u32], user_offsets: &[u32], ks: &[u32]) -> (AtK, AtK) {
    let users = user_offsets.len().saturating_sub(1).max(1) as f64;
    let mut precision = vec![0.0; ks.len()];
    let mut map = vec![0.0; ks.len()];
    let mut sorted = Vec::new();
    for w in user_offsets.windows(2) {
        sorted.clear();
        sorted.extend_from_slice(&rank[w[0] as usize..w[1] as usize]);
        sorted.sort_unstable();
        for (j, &k) in ks.iter().enumerate() {
            let hits = sorted.iter().take_while(|&&r| r < k).count();
            precision[j] += hits as f64 / k as f64;
            let ap: f64 = sorted[..hits]
                .iter()
                .enumerate()
                .map(|(i, &r)| (i + 1) as f64 / (r as f64 + 1.0))
                .sum();
            map[j] += ap / sorted.len() as f64;
        }
    }
    let mean = |v: Vec<f64>| {
        ks.iter()
            .copied()
            .zip(v.into_iter().map(|x| x / users))
            .collect()
    };
    (mean(precision), mean(map))
}

impl TestMetrics {
    pub fn top(&self, k: u32) -> f64 {
        self.top_k
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN)
    }

    /// TFRS's metric names.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.top_k {
            m.insert(
                format!("factorized_top_k/top_{k}_categorical_accuracy"),
                (*v).into(),
            );
        }
        m.insert("root_mean_squared_error".into(), self.rmse.into());
        m.insert("loss".into(), self.loss.into());
        if let Some(r) = &self.ranked {
            for (k, v) in &r.recall {
                m.insert(format!("recall_at_{k}_unseen"), (*v).into());
            }
            for (k, v) in &r.ndcg {
                m.insert(format!("ndcg_at_{k}_unseen"), (*v).into());
            }
            m.insert("mean_absolute_error".into(), r.mae.into());
            // Microsoft Recommenders' names for their benchmark table.
            let k = TOP_N;
            m.insert(format!("map_at_{k}"), r.map_at(k).into());
            m.insert(format!("ndcg_at_{k}"), r.ndcg_at(k).into());
            m.insert(format!("precision_at_{k}"), r.precision_at(k).into());
            m.insert(format!("recall_at_{k}"), r.recall_at(k).into());
        }
        serde_json::Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_ndcg_by_hand() {
        // User 0: two test movies at positions 0 and 3; user 1: one test movie at position 12.
        let rank = [0, 3, 12];
        let offsets = [0, 2, 3];
        let (recall, ndcg) = recall_ndcg(&rank, &offsets, &[1, 4, 20]);
        let g = |p: f64| 1.0 / (p + 2.0).log2();
        // k = 1: user 0 has 1 of 2 (DCG 1, ideal 1), user 1 none.
        // k = 4: user 0 both (DCG 1 + g(3), ideal 1 + g(1)), user 1 none.
        // k = 20: user 1's as well (DCG g(12), ideal 1).
        let want_recall = [(1, 0.25), (4, 0.5), (20, 1.0)];
        let want_ndcg = [
            (1, 0.5),
            (4, (1.0 + g(3.0)) / (1.0 + g(1.0)) / 2.0),
            (20, ((1.0 + g(3.0)) / (1.0 + g(1.0)) + g(12.0)) / 2.0),
        ];
        for ((k, r), (wk, wr)) in recall.iter().zip(want_recall) {
            assert_eq!(*k, wk);
            assert!((r - wr).abs() < 1e-12, "recall@{k}: {r} vs {wr}");
        }
        for ((k, n), (wk, wn)) in ndcg.iter().zip(want_ndcg) {
            assert_eq!(*k, wk);
            assert!((n - wn).abs() < 1e-12, "ndcg@{k}: {n} vs {wn}");
        }
    }

    #[test]
    fn precision_and_map_by_hand() {
        // User 0: 4 test movies at positions 0, 2, 9 and 30 (given out of order); user 1: 1 at position 10
        // (just outside the top 10); user 2: 2 at positions 1 and 3.
        let rank = [9, 0, 30, 2, 10, 3, 1];
        let offsets = [0, 4, 5, 7];
        let (precision, map) = precision_map(&rank, &offsets, &[10, 3]);
        // Precision@10: 3/10, 0, 2/10 -> 5/30. Precision@3: 2/3, 0, 1/3 -> 1/3.
        assert_eq!(precision[0].0, 10);
        assert!((precision[0].1 - 5.0 / 30.0).abs() < 1e-12, "{precision:?}");
        assert!((precision[1].1 - 1.0 / 3.0).abs() < 1e-12, "{precision:?}");
        // AP@10: user 0 (1/1 + 2/3 + 3/10) / 4; user 1: 0; user 2 (1/2 + 2/4) / 2.
        let ap0 = (1.0 + 2.0 / 3.0 + 3.0 / 10.0) / 4.0;
        let ap2 = (0.5 + 0.5) / 2.0;
        assert!((map[0].1 - (ap0 + ap2) / 3.0).abs() < 1e-12, "{map:?}");
        // AP@3: user 0 (1 + 2/3) / 4, user 2 (1/2) / 2.
        assert!(
            (map[1].1 - ((1.0 + 2.0 / 3.0) / 4.0 + 0.25) / 3.0).abs() < 1e-12,
            "{map:?}"
        );
        // A user whose every test movie tops the list: precision min(n, k)/k, AP 1.
        let (p, m) = precision_map(&[1, 0], &[0, 2], &[10]);
        assert_eq!((p[0].1, m[0].1), (0.2, 1.0));
    }
}
