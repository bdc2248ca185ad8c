//! Cross-validation reports (`wgrec cv`): one line per fold, the mean ± sd of every test metric, and the
//! JSON with `folds`, `mean` and `sd`.

use crate::eval::metrics::TOP_N;
use crate::gpu::AdapterSummary;
use crate::train::run::RunResult;

/// One fold's finished run.
pub struct FoldResult {
    /// "u1", or "2/5" for a random fold.
    pub fold: String,
    /// The data set and split, as the loader described it.
    pub data: String,
    pub run: RunResult,
}

/// Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// A column of the table: its header and the value of a run.
type Column = (String, Box<dyn Fn(&RunResult) -> f64>);

/// The metrics of the table.
fn columns() -> Vec<Column> {
    let ranked = |f: fn(&crate::eval::metrics::RankedMetrics) -> f64| {
        move |r: &RunResult| r.test.ranked.as_ref().map(f).unwrap_or(f64::NAN)
    };
    vec![
        ("RMSE".into(), Box::new(|r: &RunResult| r.test.rmse)),
        ("MAE".into(), Box::new(ranked(|m| m.mae))),
        ("top-100".into(), Box::new(|r: &RunResult| r.test.top(100))),
        (
            format!("MAP@{TOP_N}"),
            Box::new(ranked(|m| m.map_at(TOP_N))),
        ),
        (
            format!("NDCG@{TOP_N}"),
            Box::new(ranked(|m| m.ndcg_at(TOP_N))),
        ),
        (
            format!("P@{TOP_N}"),
            Box::new(ranked(|m| m.precision_at(TOP_N))),
        ),
        (
            format!("R@{TOP_N}"),
            Box::new(ranked(|m| m.recall_at(TOP_N))),
        ),
        ("train s".into(), Box::new(|r: &RunResult| r.train_seconds)),
    ]
}

/// One line per fold, then the mean and the sample standard deviation over the folds.
pub fn table(folds: &[FoldResult]) -> String {
    let cols = columns();
    let mut s = format!("{:<8}", "fold");
    for (name, _) in &cols {
        s += &format!("{name:>18}");
    }
    s.push('\n');
    for f in folds {
        s += &format!("{:<8}", f.fold);
        for (_, value) in &cols {
            s += &format!("{:>18.4}", value(&f.run));
        }
        s.push('\n');
    }
    s += &format!("{:<8}", "mean±sd");
    for (_, value) in &cols {
        let v: Vec<f64> = folds.iter().map(|f| value(&f.run)).collect();
        let (mean, sd) = mean_sd(&v);
        s += &format!("{:>18}", format!("{mean:.4}±{sd:.4}"));
    }
    s.push('\n');
    s
}

/// `{adapter, folds: [{fold, data, run}], mean: {metric: ..}, sd: {metric: ..}}`, the mean and sample sd
/// taken over the folds of every numeric key of the runs' `test`.
pub fn json(folds: &[FoldResult], adapter: &AdapterSummary) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = folds
        .iter()
        .map(|f| {
            serde_json::json!({
                "fold": f.fold,
                "data": f.data,
                "run": f.run.to_json(),
            })
        })
        .collect();
    let tests: Vec<serde_json::Value> = folds.iter().map(|f| f.run.test.to_json()).collect();
    let (mut mean, mut sd) = (serde_json::Map::new(), serde_json::Map::new());
    if let Some(serde_json::Value::Object(first)) = tests.first() {
        for key in first.keys() {
            let v: Option<Vec<f64>> = tests.iter().map(|t| t[key].as_f64()).collect();
            if let Some(v) = v {
                let (m, s) = mean_sd(&v);
                mean.insert(key.clone(), m.into());
                sd.insert(key.clone(), s.into());
            }
        }
    }
    serde_json::json!({
        "adapter": adapter,
        "folds": runs,
        "mean": mean,
        "sd": sd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd_by_hand() {
        let (m, s) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        // Squared deviations sum to 32; 32 / 7.
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12, "{s}");
        assert_eq!(mean_sd(&[0.5]), (0.5, 0.0));
    }
}
