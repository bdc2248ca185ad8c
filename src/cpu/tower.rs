//! The CPU twin of a feature tower, composed of the kernels' twins in the order `kernels::tower` runs
//! them: the pooled gathers of every field, the dense stack, and back through both into Adagrad.

use super::*;
use crate::data::features::PooledRows;
use crate::model::tower::Tower;
use crate::model::EPSILON;

/// A tower's activations over listed entities: the concatenation x (n, K0) and every layer's output.
pub struct TowerForward {
    pub x: Vec<f32>,
    pub layers: Vec<Vec<f32>>,
}

impl TowerForward {
    /// (n, output width): the last layer's output, or x without a stack.
    pub fn output(&self) -> &[f32] {
        self.layers.last().unwrap_or(&self.x)
    }
}

/// Field f's table in the flat vector `p`.
pub fn table<'a>(t: &Tower, p: &'a [f32], f: usize) -> &'a [f32] {
    let at = t.layout().tables[f];
    &p[at..at + t.table_rows(f) * t.dims[f]]
}

/// The tower's output rows for entity rows `entity` (pooled_gather per field, then dense_forward).
pub fn forward(t: &Tower, p: &[f32], entity: &[u32]) -> TowerForward {
    let (n, k0) = (entity.len(), t.input_width());
    let mut x = vec![0.0; n * k0];
    for (f, field) in t.fields.iter().enumerate() {
        pooled_gather(
            table(t, p, f),
            &field.offsets,
            &field.ids,
            entity,
            t.dims[f],
            &mut x,
            k0,
            t.column(f),
        );
    }
    let l = t.layout();
    let mut layers: Vec<Vec<f32>> = Vec::new();
    for (i, d) in l.layers.iter().enumerate() {
        let input = layers.last().unwrap_or(&x);
        let relu = i + 1 < l.layers.len();
        let y = dense_forward(
            input,
            &p[d.w..d.w + d.k * d.n],
            &p[d.b..d.b + d.n],
            n,
            d.k,
            d.n,
            relu,
        );
        layers.push(y);
    }
    TowerForward { x, layers }
}

/// The gradient of a tower given dy (n, output width) of its output rows: the dense stack's (a flat
/// vector of the side's length, zero outside the stack) and, per field, the distinct feature rows the
/// entities touched with their gradients (F, dim).
pub struct TowerGrads {
    pub stack: Vec<f32>,
    pub fields: Vec<(PooledRows, Vec<f32>)>,
}

pub fn backward(
    t: &Tower,
    p: &[f32],
    entity: &[u32],
    fwd: &TowerForward,
    dy: &[f32],
) -> TowerGrads {
    let (n, l) = (entity.len(), t.layout());
    let mut stack = vec![0.0; l.len];
    let mut dy = dy.to_vec();
    for (i, d) in l.layers.iter().enumerate().rev() {
        let input = if i == 0 { &fwd.x } else { &fwd.layers[i - 1] };
        let (dw, db) = dense_backward_weights(input, &dy, n, d.k, d.n);
        stack[d.w..d.w + dw.len()].copy_from_slice(&dw);
        stack[d.b..d.b + db.len()].copy_from_slice(&db);
        let mask = (i > 0).then(|| fwd.layers[i - 1].as_slice());
        dy = dense_backward_data(&dy, &p[d.w..d.w + d.k * d.n], mask, n, d.k, d.n);
    }
    let fields = t
        .fields
        .iter()
        .enumerate()
        .map(|(f, field)| {
            let pooled = PooledRows::new(field, entity);
            let g = pooled_gather_backward(&dy, t.input_width(), t.column(f), t.dims[f], &pooled);
            (pooled, g)
        })
        .collect();
    TowerGrads { stack, fields }
}

/// Adagrad on the tower: the dense stack at `lr` (adagrad_dense), each field's touched rows at
/// `table_lr` with the L2 term (embedding_adagrad with one gradient part).
pub fn apply(
    t: &Tower,
    p: &mut [f32],
    acc: &mut [f32],
    g: &TowerGrads,
    lr: f32,
    table_lr: f32,
    l2: f32,
) {
    let l = t.layout();
    if !l.layers.is_empty() {
        let r = l.stack..l.len;
        adagrad(
            &mut p[r.clone()],
            &mut acc[r.clone()],
            &g.stack[r],
            lr,
            EPSILON,
        );
    }
    for (f, (pooled, grad)) in g.fields.iter().enumerate() {
        let r = l.tables[f]..l.tables[f] + t.table_rows(f) * t.dims[f];
        embedding_adagrad(
            Some(grad),
            None,
            &[],
            &[],
            &pooled.table_rows,
            &mut p[r.clone()],
            &mut acc[r],
            t.dims[f],
            table_lr,
            EPSILON,
            l2,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::features::Field;
    use crate::data::{SplitMix64, Vocabulary};

    /// Three entities over two feature fields, one multi-hot, one entity without features.
    fn tower(layers: Vec<usize>) -> Tower {
        let genres = Field {
            name: "genres",
            vocab: Vocabulary::from_values(["a", "b", "c"]),
            offsets: vec![0, 0, 2, 5, 6],
            ids: vec![1, 3, 1, 2, 3, 2],
        };
        let decade = Field {
            name: "decade",
            vocab: Vocabulary::from_values(["1990s", "2000s"]),
            offsets: vec![0, 0, 1, 2, 3],
            ids: vec![2, 1, 1],
        };
        Tower::new(4, 8, vec![genres, decade], 4, layers).unwrap()
    }

    /// sum(c * y) over the output, in f64.
    fn objective(t: &Tower, p: &[f32], entity: &[u32], c: &[f32]) -> f64 {
        let f = forward(t, p, entity);
        f.output()
            .iter()
            .zip(c)
            .map(|(&y, &c)| y as f64 * c as f64)
            .sum()
    }

    #[test]
    fn tower_gradients_match_central_differences() {
        for layers in [vec![], vec![12, 8]] {
            let t = tower(layers.clone());
            // Larger than the Keras init so the ReLUs are clearly on one side at each probe.
            let p: Vec<f32> = t.init(3, 0).iter().map(|x| x * 20.0).collect();
            let entity = [2u32, 0, 3, 1, 2];
            let mut rng = SplitMix64::new(9);
            let c: Vec<f32> = (0..entity.len() * t.output_width())
                .map(|_| rng.next_f32() - 0.5)
                .collect();
            let fwd = forward(&t, &p, &entity);
            let g = backward(&t, &p, &entity, &fwd, &c);
            // The analytic gradient of every parameter, scattered back to flat positions.
            let l = t.layout();
            let mut flat = g.stack.clone();
            for (f, (pooled, grad)) in g.fields.iter().enumerate() {
                for (a, &row) in pooled.table_rows.iter().enumerate() {
                    let at = l.tables[f] + row as usize * t.dims[f];
                    flat[at..at + t.dims[f]].copy_from_slice(&grad[a * t.dims[f]..][..t.dims[f]]);
                }
            }
            let mut checked = 0;
            for i in 0..l.len {
                let eps = 1e-2f32;
                let (mut up, mut down) = (p.clone(), p.clone());
                up[i] += eps;
                down[i] -= eps;
                let numeric = (objective(&t, &up, &entity, &c) - objective(&t, &down, &entity, &c))
                    / (2.0 * eps as f64);
                let analytic = flat[i] as f64;
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 2e-3 * analytic.abs(),
                    "layers {layers:?}, parameter {i}: numeric {numeric}, analytic {analytic}"
                );
                checked += usize::from(analytic != 0.0);
            }
            // Untouched rows (entity rows not listed, feature rows no listed entity holds) stay zero; the
            // rest are all probed.
            assert!(checked > l.len / 4, "{checked} of {}", l.len);
        }
    }

    #[test]
    fn entities_without_features_pool_to_zero_and_the_id_is_copied() {
        let t = tower(vec![]);
        let p = t.init(1, 0);
        let f = forward(&t, &p, &[0, 1]);
        let k0 = t.input_width();
        assert!(
            f.x[8..k0].iter().all(|&v| v == 0.0),
            "entity 0 has no features"
        );
        assert_eq!(&f.x[k0..k0 + 8], &table(&t, &p, 0)[8..16]);
        let genres = table(&t, &p, 1);
        let mean: Vec<f32> = (0..4)
            .map(|d| (genres[4 + d] + genres[12 + d]) / 2.0)
            .collect();
        for (a, b) in f.x[k0 + 8..k0 + 12].iter().zip(&mean) {
            assert!((a - b).abs() < 1e-7);
        }
    }
}
