//! The CPU twins' maths, without an adapter: analytic gradients chained from the backward twins the way a
//! training step chains the kernels, against central differences of an independent f64 forward pass; the
//! TFRS retrieval golden case; hand-computed Adagrad steps; and the distinct-rows retrieval identity
//! against the direct B x B formula.

mod common;

use common::{assert_close64, f64s, uniform, RepeatedBatch};
use wgrec::cpu;
use wgrec::data::batches::{Batch, Columns, Distinct};
use wgrec::data::SplitMix64;
use wgrec::model::{MlpLayout, ModelConfig};

/// A tiny multi-task problem: one batch with repeated users and movies, and one table row of each that the
/// batch never touches (its gradient must be exactly zero).
struct Tiny {
    cfg: ModelConfig,
    layout: MlpLayout,
    batch: Batch,
    rating_weight: f32,
    retrieval_weight: f32,
    /// Every parameter, flat: user table (U, D), movie table (M, D), then the MLP vector (L,).
    theta: Vec<f32>,
}

impl Tiny {
    fn new(seed: u64) -> Self {
        let cfg = ModelConfig {
            users: 4,
            movies: 5,
            embedding_dim: 4,
            hidden1: 16,
            hidden2: 16,
        };
        let layout = cfg.layout();
        let mut rng = SplitMix64::new(seed);
        let d = cfg.embedding_dim;
        let mut theta = uniform(&mut rng, (cfg.users + cfg.movies) * d, -0.5, 0.5);
        // Weights large enough for non-trivial ReLU patterns, biases non-zero so their gradients matter.
        let mut mlp = vec![0.0; layout.len];
        let l = &layout;
        for (at, n, scale) in [
            (l.w1, l.k * l.h1, 0.5),
            (l.b1, l.h1, 0.1),
            (l.w2, l.h1 * l.h2, 0.5),
            (l.b2, l.h2, 0.1),
            (l.w3, l.h2, 0.5),
            (l.b3, 1, 0.5),
        ] {
            mlp[at..at + n].copy_from_slice(&uniform(&mut rng, n, -scale, scale));
        }
        theta.extend(mlp);
        Self {
            cfg,
            layout,
            // B = 6 rows over users {0, 1, 2} and movies {0, 1, 2, 3}; user 3 and movie 4 are untouched.
            batch: Batch::new(
                vec![0, 1, 0, 2, 1, 0],
                vec![3, 1, 3, 0, 2, 1],
                vec![4.0, 2.0, 5.0, 3.0, 1.0, 4.0],
            ),
            rating_weight: 0.7,
            retrieval_weight: 1.3,
            theta,
        }
    }

    fn split<T>(&self, theta: &[T]) -> (usize, usize) {
        let d = self.cfg.embedding_dim;
        let u = self.cfg.users * d;
        let m = u + self.cfg.movies * d;
        assert_eq!(theta.len(), m + self.layout.len);
        (u, m)
    }

    /// The total loss in f64, straight from the model's definition (no twins), and the smallest
    /// |pre-activation| of either ReLU layer (central differences must not straddle a kink).
    fn loss64(&self, theta: &[f64]) -> (f64, f64) {
        let (u_end, m_end) = self.split(theta);
        let (users, movies, mlp) = (&theta[..u_end], &theta[u_end..m_end], &theta[m_end..]);
        let (d, l, b) = (self.cfg.embedding_dim, &self.layout, &self.batch);
        let rows = b.rows();
        let row = |t: &[f64], i: u32| t[i as usize * d..][..d].to_vec();
        let dense = |x: &[f64], w: usize, bias: usize, k: usize, n: usize| -> Vec<f64> {
            (0..n)
                .map(|j| mlp[bias + j] + (0..k).map(|kk| x[kk] * mlp[w + kk * n + j]).sum::<f64>())
                .collect()
        };
        let (mut sq, mut margin) = (0.0, f64::INFINITY);
        for i in 0..rows {
            let mut x = row(users, b.user[i]);
            x.extend(row(movies, b.movie[i]));
            let z1 = dense(&x, l.w1, l.b1, l.k, l.h1);
            let h1: Vec<f64> = z1.iter().map(|v| v.max(0.0)).collect();
            let z2 = dense(&h1, l.w2, l.b2, l.h1, l.h2);
            let h2: Vec<f64> = z2.iter().map(|v| v.max(0.0)).collect();
            margin = z1.iter().chain(&z2).fold(margin, |m, v| m.min(v.abs()));
            let pred = dense(&h2, l.w3, l.b3, l.h2, 1)[0];
            sq += (pred - b.rating[i] as f64).powi(2);
        }
        // Retrieval: logits u_i . m_j over the B x B batch, labels on the diagonal, summed cross-entropy.
        let mut retrieval = 0.0;
        for i in 0..rows {
            let u = row(users, b.user[i]);
            let s: Vec<f64> = (0..rows)
                .map(|j| {
                    let m = row(movies, b.movie[j]);
                    (0..d).map(|k| u[k] * m[k]).sum()
                })
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            retrieval += lse - s[i];
        }
        let loss =
            self.rating_weight as f64 * sq / rows as f64 + self.retrieval_weight as f64 * retrieval;
        (loss, margin)
    }

    /// (loss, dL/dtheta) from the twins, chained as a GPU training step chains the kernels.
    fn twins(&self) -> (f64, Vec<f64>) {
        let (u_end, m_end) = self.split(&self.theta);
        let (users, movies, mlp) = (
            &self.theta[..u_end],
            &self.theta[u_end..m_end],
            &self.theta[m_end..],
        );
        let (d, l, b) = (self.cfg.embedding_dim, &self.layout, &self.batch);
        let rows = b.rows();
        // Rating task: embedding_gather x2 -> dense_forward x2 -> rating_loss, then backward.
        let mut x = vec![0.0; rows * 2 * d];
        cpu::embedding_gather(users, &b.user, d, &mut x, 2 * d, 0);
        cpu::embedding_gather(movies, &b.movie, d, &mut x, 2 * d, d);
        let (w1, w2) = (
            &mlp[l.w1..l.w1 + l.k * l.h1],
            &mlp[l.w2..l.w2 + l.h1 * l.h2],
        );
        let h1 = cpu::dense_forward(&x, w1, &mlp[l.b1..], rows, l.k, l.h1, true);
        let h2 = cpu::dense_forward(&h1, w2, &mlp[l.b2..], rows, l.h1, l.h2, true);
        // scale = 2 w / B turns (pred - rating) into dL/dpred of w * MSE.
        let scale = 2.0 * self.rating_weight / rows as f32;
        let head = cpu::rating_loss(&h2, &mlp[l.w3..l.w3 + l.h2], mlp[l.b3], &b.rating, scale);
        let (dw3, db3) = cpu::rating_head_backward(&h2, &head.dpred);
        let (dw2, db2) = cpu::dense_backward_weights(&h1, &head.dh2, rows, l.h1, l.h2);
        let dh1 = cpu::dense_backward_data(&head.dh2, w2, Some(&h1), rows, l.h1, l.h2);
        let (dw1, db1) = cpu::dense_backward_weights(&x, &dh1, rows, l.k, l.h1);
        let dx = cpu::dense_backward_data(&dh1, w1, None, rows, l.k, l.h1);
        // Retrieval task on the distinct rows.
        let (us, ms) = (&b.users, &b.movies);
        let mut ud = vec![0.0; us.len() * d];
        let mut md = vec![0.0; ms.len() * d];
        cpu::embedding_gather(users, &us.table_rows, d, &mut ud, d, 0);
        cpu::embedding_gather(movies, &ms.table_rows, d, &mut md, d, 0);
        let w = self.retrieval_weight;
        let (ret, grad_movie) = cpu::retrieval_softmax(&ud, &md, us, ms, d, w, w);

        let mut grad = vec![0.0f64; self.theta.len()];
        // Embedding rows: the retrieval gradient of the distinct row plus each batch row's half of dx.
        for (base, side, distinct, per_distinct, half) in [
            (0, &b.user, us, &ret.grad_user, 0),
            (u_end, &b.movie, ms, &grad_movie, d),
        ] {
            for (i, &t) in side.iter().enumerate() {
                for k in 0..d {
                    grad[base + t as usize * d + k] += dx[i * 2 * d + half + k] as f64;
                }
            }
            for (a, &t) in distinct.table_rows.iter().enumerate() {
                for k in 0..d {
                    grad[base + t as usize * d + k] += per_distinct[a * d + k] as f64;
                }
            }
        }
        for (at, g) in [
            (l.w1, &dw1),
            (l.b1, &db1),
            (l.w2, &dw2),
            (l.b2, &db2),
            (l.w3, &dw3),
            (l.b3, &vec![db3]),
        ] {
            for (k, &v) in g.iter().enumerate() {
                grad[m_end + at + k] = v as f64;
            }
        }
        let sq: f64 = head.sq_err.iter().map(|&v| v as f64).sum();
        let retrieval: f64 = ret.loss.iter().map(|&v| v as f64).sum();
        let loss = self.rating_weight as f64 * sq / rows as f64 + w as f64 * retrieval;
        (loss, grad)
    }
}

#[test]
fn backward_twins_match_central_differences() {
    let tiny = Tiny::new(21);
    let theta = f64s(&tiny.theta);
    let (loss, margin) = tiny.loss64(&theta);
    assert!(
        margin > 1e-3,
        "a pre-activation is {margin:e} from a ReLU kink; pick another seed"
    );
    let (twin_loss, analytic) = tiny.twins();
    assert_close64(
        "loss (twins vs f64 forward)",
        &[twin_loss],
        &[loss],
        1e-6,
        1e-6,
    );
    let h = 1e-6;
    let numeric: Vec<f64> = (0..theta.len())
        .map(|i| {
            let mut t = theta.clone();
            t[i] = theta[i] + h;
            let up = tiny.loss64(&t).0;
            t[i] = theta[i] - h;
            let down = tiny.loss64(&t).0;
            (up - down) / (2.0 * h)
        })
        .collect();
    let (u_end, m_end) = tiny.split(&theta);
    let l = tiny.layout;
    let d = tiny.cfg.embedding_dim;
    let parts = [
        ("user_emb", 0, u_end),
        ("movie_emb", u_end, m_end),
        ("w1", m_end + l.w1, m_end + l.w1 + l.k * l.h1),
        ("b1", m_end + l.b1, m_end + l.b1 + l.h1),
        ("w2", m_end + l.w2, m_end + l.w2 + l.h1 * l.h2),
        ("b2", m_end + l.b2, m_end + l.b2 + l.h2),
        ("w3", m_end + l.w3, m_end + l.w3 + l.h2),
        ("b3", m_end + l.b3, m_end + l.b3 + 1),
    ];
    for (name, a, b) in parts {
        assert_close64(
            &format!("dL/d{name}"),
            &analytic[a..b],
            &numeric[a..b],
            1e-6,
            1e-5,
        );
        assert!(
            numeric[a..b].iter().any(|v| v.abs() > 1e-3),
            "dL/d{name} is all but zero: the check would be vacuous"
        );
    }
    // The padding of the MLP vector and the rows no batch row uses get no gradient.
    let touched: Vec<usize> = parts.iter().flat_map(|&(_, a, b)| a..b).collect();
    for i in (m_end..theta.len()).filter(|i| !touched.contains(i)) {
        assert_eq!(analytic[i], 0.0, "padding element {} of the MLP", i - m_end);
    }
    for (base, row) in [(0, 3), (u_end, 4)] {
        let r = base + row * d..base + (row + 1) * d;
        assert!(analytic[r.clone()].iter().all(|&g| g == 0.0));
        assert!(numeric[r].iter().all(|&g| g == 0.0));
    }
}

/// The reference of the retrieval checks, `cpu::retrieval_loss_direct`, against central differences.
#[test]
fn direct_retrieval_gradients_match_central_differences() {
    let mut rng = SplitMix64::new(22);
    let (b, d) = (5, 3);
    let u = uniform(&mut rng, b * d, -1.0, 1.0);
    let m = uniform(&mut rng, b * d, -1.0, 1.0);
    // Without and with a logQ correction (log sampling probabilities subtracted from each column).
    let log_q_random: Vec<f64> = f64s(&uniform(&mut rng, b, -3.0, -0.1));
    for log_q in [vec![0.0; b], log_q_random] {
        let (_, du, dm) = cpu::retrieval_loss_direct_corrected(&u, &m, d, &log_q);
        let loss = |u: &[f64], m: &[f64]| -> f64 {
            let mut total = 0.0;
            for i in 0..b {
                let s: Vec<f64> = (0..b)
                    .map(|j| (0..d).map(|k| u[i * d + k] * m[j * d + k]).sum::<f64>() - log_q[j])
                    .collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                total += mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln() - s[i];
            }
            total
        };
        let (u64s, m64s) = (f64s(&u), f64s(&m));
        let h = 1e-6;
        let fd = |which: usize, i: usize| {
            let (mut uu, mut mm) = (u64s.clone(), m64s.clone());
            let t = if which == 0 { &mut uu } else { &mut mm };
            t[i] += h;
            let up = loss(&uu, &mm);
            let t = if which == 0 { &mut uu } else { &mut mm };
            t[i] -= 2.0 * h;
            (up - loss(&uu, &mm)) / (2.0 * h)
        };
        let num_du: Vec<f64> = (0..b * d).map(|i| fd(0, i)).collect();
        let num_dm: Vec<f64> = (0..b * d).map(|i| fd(1, i)).collect();
        assert_close64(&format!("du, log q {log_q:?}"), &du, &num_du, 1e-7, 1e-6);
        assert_close64(&format!("dm, log q {log_q:?}"), &dm, &num_dm, 1e-7, 1e-6);
    }
}

/// `--logq-correction` keeps the kernels and gives every movie column weight 1. With q_c = m_c / B the
/// corrected B x B loss is the distinct-rows loss with unit weights plus sum_i log m_movie(i) (a constant),
/// with identical gradients.
#[test]
fn unit_column_weights_are_the_logq_corrected_loss() {
    for (seed, dim) in [(43, 6), (44, 3)] {
        let rb = RepeatedBatch::new(seed, 40, 7, 9, dim, 1.0);
        let b = &rb.batch;
        let rows = b.rows() as f64;
        let count_of_row: Vec<f64> = b
            .movies
            .of_row
            .iter()
            .map(|&c| b.movies.count[c as usize] as f64)
            .collect();
        let log_q: Vec<f64> = count_of_row.iter().map(|m| (m / rows).ln()).collect();
        let (loss, du, dm) =
            cpu::retrieval_loss_direct_corrected(&rb.user_rows(), &rb.movie_rows(), dim, &log_q);
        let (ud, md) = (rb.user_d(), rb.movie_d());
        let (us, ms) = (&b.users, &b.movies);
        assert!(ms.count.iter().any(|&c| c > 1.0), "some movie repeats");
        // What --logq-correction trains on: the same batch with every movie column's weight 1.
        let unit = b.clone().with_columns(Columns::Distinct);
        let (users, grad_movie) = cpu::retrieval_softmax(&ud, &md, us, &unit.movies, dim, 1.0, 1.0);
        let total: f64 = users.loss.iter().map(|&v| v as f64).sum();
        let constant: f64 = count_of_row.iter().map(|m| m.ln()).sum();
        assert_close64("logQ loss", &[total + constant], &[loss], 1e-5, 1e-6);
        assert_close64(
            "logQ grad_user",
            &f64s(&users.grad_user),
            &rb.sum_rows(us, &du),
            1e-5,
            1e-5,
        );
        assert_close64(
            "logQ grad_movie",
            &f64s(&grad_movie),
            &rb.sum_rows(ms, &dm),
            1e-5,
            1e-5,
        );
    }
}

/// `--full-softmax`: the distinct-rows twins on catalogue columns (every movie of the table with weight 1,
/// empty row groups for the movies no row holds) give the softmax over the whole catalogue, written out
/// here row by row: loss_i = log sum_c exp(u_i . m_c) - u_i . m_movie(i), and its gradients.
#[test]
fn catalogue_columns_are_the_full_softmax() {
    for (seed, dim, extra) in [(47, 6, 5usize), (48, 4, 0)] {
        let mut rb = RepeatedBatch::new(seed, 40, 7, 9, dim, 1.0);
        let mut rng = SplitMix64::new(seed);
        rb.movie_table
            .extend(uniform(&mut rng, extra * dim, -1.0, 1.0));
        let movies = 9 + extra;
        rb.batch = rb
            .batch
            .clone()
            .with_columns(Columns::Catalogue(movies as u32));
        let b = &rb.batch;
        let (us, ms) = (&b.users, &b.movies);
        assert_eq!(ms.len(), movies - usize::from(!b.movie.contains(&0)));
        let (u_rows, md) = (rb.user_rows(), rb.movie_d());
        let (mut loss, mut du, mut dm) = (0.0, vec![0.0; u_rows.len()], vec![0.0; md.len()]);
        for (i, &pos) in ms.of_row.iter().enumerate() {
            let ui = &u_rows[i * dim..][..dim];
            let s: Vec<f64> = (0..ms.len())
                .map(|c| {
                    (0..dim)
                        .map(|k| ui[k] as f64 * md[c * dim + k] as f64)
                        .sum()
                })
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            loss += lse - s[pos as usize];
            for (c, sc) in s.iter().enumerate() {
                let g = (sc - lse).exp() - f64::from(c == pos as usize);
                for k in 0..dim {
                    du[i * dim + k] += g * md[c * dim + k] as f64;
                    dm[c * dim + k] += g * ui[k] as f64;
                }
            }
        }
        let ud = rb.user_d();
        let (users, grad_movie) = cpu::retrieval_softmax(&ud, &md, us, ms, dim, 1.0, 1.0);
        let total: f64 = users.loss.iter().map(|&v| v as f64).sum();
        let what = |t: &str| format!("{t} (D {dim}, {extra} movies no row holds)");
        assert_close64(&what("loss"), &[total], &[loss], 1e-5, 1e-6);
        assert_close64(
            &what("grad_user"),
            &f64s(&users.grad_user),
            &rb.sum_rows(us, &du),
            1e-5,
            1e-5,
        );
        assert_close64(&what("grad_movie"), &f64s(&grad_movie), &dm, 1e-5, 1e-5);
        if extra > 0 {
            let unheld = &grad_movie[grad_movie.len() - dim..]; // movie `movies - 1`
            assert!(
                unheld.iter().any(|&g| g != 0.0),
                "a movie no row holds is still a negative"
            );
        }
    }
}

/// TFRS's `tasks/retrieval_test.py`: queries [[1, 2, 3], [2, 3, 4]], candidates [[1, 1, 1], [1, 1, 0]],
/// logits [[6, 3], [9, 5]], labels the diagonal, so the summed cross-entropy is
/// -log sigmoid(6 - 3) - log(1 - sigmoid(9 - 5)).
#[test]
fn tfrs_retrieval_golden_case() {
    let q = [1.0f32, 2.0, 3.0, 2.0, 3.0, 4.0];
    let c = [1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0];
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let expected = -sigmoid(3.0).ln() - (1.0 - sigmoid(4.0)).ln();

    let (direct, _, _) = cpu::retrieval_loss_direct(&q, &c, 3);
    assert_close64(
        "retrieval_loss_direct",
        &[direct],
        &[expected],
        1e-12,
        1e-12,
    );

    // Two distinct users and two distinct movies, one row each.
    let (users, movies) = (Distinct::new(&[0, 1]), Distinct::new(&[0, 1]));
    let out = cpu::retrieval_softmax_users(
        &q,
        &c,
        &users.count,
        &movies.count,
        &users.offsets,
        &users.rows,
        &movies.of_row,
        3,
        1.0,
    );
    let total: f64 = out.loss.iter().map(|&v| v as f64).sum();
    assert_close64(
        "retrieval_softmax_users loss",
        &[total],
        &[expected],
        1e-6,
        1e-6,
    );
    let lse: Vec<f64> = out.lse.iter().map(|&v| v as f64).collect();
    let want_lse = [
        (6.0f64.exp() + 3.0f64.exp()).ln(),
        (9.0f64.exp() + 5.0f64.exp()).ln(),
    ];
    assert_close64("lse", &lse, &want_lse, 1e-6, 1e-6);
}

/// Keras Adagrad by hand: accumulator 0.1, gradient 0.5, learning rate 0.1, epsilon 1e-7.
#[test]
fn adagrad_hand_computed_steps() {
    let (mut w, mut acc) = ([1.0f32, -3.0], [0.1f32, 0.1]);
    cpu::adagrad(&mut w, &mut acc, &[0.5, 0.5], 0.1, 1e-7);
    let step1 = 0.1 * 0.5 / (0.35f64.sqrt() + 1e-7);
    assert_close64("acc after one step", &f64s(&acc), &[0.35, 0.35], 1e-7, 1e-7);
    assert_close64(
        "w after one step",
        &f64s(&w),
        &[1.0 - step1, -3.0 - step1],
        1e-7,
        1e-7,
    );
    // A second step: acc = 0.35 + 0.25 = 0.6.
    cpu::adagrad(&mut w, &mut acc, &[0.5, 0.5], 0.1, 1e-7);
    let step2 = 0.1 * 0.5 / (0.6f64.sqrt() + 1e-7);
    assert_close64("acc after two steps", &f64s(&acc), &[0.6, 0.6], 1e-7, 1e-7);
    assert_close64(
        "w after two steps",
        &f64s(&w),
        &[1.0 - step1 - step2, -3.0 - step1 - step2],
        1e-6,
        1e-7,
    );
    // adagrad_dense sums the splits first: two splits of 0.25 are one gradient of 0.5.
    let (mut w, mut acc) = ([1.0f32], [0.1f32]);
    cpu::adagrad_dense(&[0.25, 0.25], 2, &mut w, &mut acc, 0.1, 1e-7);
    assert_close64("adagrad_dense w", &f64s(&w), &[1.0 - step1], 1e-7, 1e-7);
}

/// The distinct-rows twins against TFRS's B x B definition on a batch with repeated users and movies:
/// the same loss, and per-row gradients summed into the distinct rows.
#[test]
fn distinct_rows_retrieval_equals_the_direct_formula() {
    for (seed, dim, scale) in [(40, 12, 0.5), (41, 5, 2.0)] {
        let rb = RepeatedBatch::new(seed, 40, 7, 9, dim, scale);
        let b = &rb.batch;
        assert_eq!((b.users.len(), b.movies.len()), (7, 9));
        let (loss, du, dm) = cpu::retrieval_loss_direct(&rb.user_rows(), &rb.movie_rows(), dim);
        let (ud, md) = (rb.user_d(), rb.movie_d());
        let (us, ms) = (&b.users, &b.movies);
        let (users, grad_movie) = cpu::retrieval_softmax(&ud, &md, us, ms, dim, 1.0, 1.0);
        let total: f64 = users.loss.iter().map(|&v| v as f64).sum();
        let what = |t: &str| format!("{t} (D {dim}, scale {scale})");
        assert_close64(&what("loss"), &[total], &[loss], 1e-5, 1e-6);
        assert_close64(
            &what("grad_user"),
            &f64s(&users.grad_user),
            &rb.sum_rows(us, &du),
            1e-5,
            1e-5,
        );
        assert_close64(
            &what("grad_movie"),
            &f64s(&grad_movie),
            &rb.sum_rows(ms, &dm),
            1e-5,
            1e-5,
        );
    }
}

/// `--temperature T`: the distinct user rows times 1 / T (`scale_rows`) and the users kernel's weight times
/// 1 / T give the B x B loss of the logits u m^T / T, and its gradients: by the chain rule on the direct
/// formula (checked against central differences above), du = du' / T and dm = dm' at u' = u / T.
#[test]
fn temperature_by_scaled_user_rows_is_the_tempered_loss() {
    for (seed, dim, t) in [(45, 6, 0.4f32), (46, 5, 3.0)] {
        let rb = RepeatedBatch::new(seed, 40, 7, 9, dim, 1.0);
        let b = &rb.batch;
        let inv_t = 1.0 / t;
        let mut u_rows = rb.user_rows();
        cpu::scale_rows(&mut u_rows, inv_t);
        let (loss, du_scaled, dm) = cpu::retrieval_loss_direct(&u_rows, &rb.movie_rows(), dim);
        let du: Vec<f64> = du_scaled.iter().map(|g| g / t as f64).collect();

        let (mut ud, md) = (rb.user_d(), rb.movie_d());
        cpu::scale_rows(&mut ud, inv_t);
        let (us, ms) = (&b.users, &b.movies);
        let (users, grad_movie) = cpu::retrieval_softmax(&ud, &md, us, ms, dim, inv_t, 1.0);
        let total: f64 = users.loss.iter().map(|&v| v as f64).sum();
        let what = |w: &str| format!("{w} (D {dim}, T {t})");
        assert_close64(&what("loss"), &[total], &[loss], 1e-5, 1e-6);
        let want_du = rb.sum_rows(us, &du);
        assert_close64(
            &what("grad_user"),
            &f64s(&users.grad_user),
            &want_du,
            1e-5,
            1e-5,
        );
        assert_close64(
            &what("grad_movie"),
            &f64s(&grad_movie),
            &rb.sum_rows(ms, &dm),
            1e-5,
            1e-5,
        );
        // T changes the loss: the test would not pass with the untempered kernels.
        let (plain, ..) = cpu::retrieval_loss_direct(&rb.user_rows(), &rb.movie_rows(), dim);
        assert!(
            (plain - loss).abs() > 1e-3 * plain.abs(),
            "{plain} vs {loss}"
        );
    }
}

/// `--remove-accidental-hits` straight from TFRS's definition on the B x B batch: column j of row i is
/// masked when j != i holds the same movie. Returns (loss, du (B, D), dm (B, D)), with unit column weights
/// when `log_q` subtracts log(m_j / B) from every logit of column j (the logQ correction).
fn direct_without_hits(rb: &RepeatedBatch, log_q: bool) -> (f64, Vec<f64>, Vec<f64>) {
    let (u, m, d) = (f64s(&rb.user_rows()), f64s(&rb.movie_rows()), rb.dim);
    let movie = &rb.batch.movie;
    let b = movie.len();
    let count = |j: usize| movie.iter().filter(|&&x| x == movie[j]).count() as f64;
    let (mut loss, mut du, mut dm) = (0.0, vec![0.0; b * d], vec![0.0; b * d]);
    for i in 0..b {
        let kept: Vec<usize> = (0..b).filter(|&j| j == i || movie[j] != movie[i]).collect();
        let s: Vec<f64> = kept
            .iter()
            .map(|&j| {
                let q = if log_q {
                    (count(j) / b as f64).ln()
                } else {
                    0.0
                };
                (0..d).map(|k| u[i * d + k] * m[j * d + k]).sum::<f64>() - q
            })
            .collect();
        let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        let own = kept.iter().position(|&j| j == i).unwrap();
        loss += lse - s[own];
        for (n, &j) in kept.iter().enumerate() {
            let g = (s[n] - lse).exp() - if j == i { 1.0 } else { 0.0 };
            for k in 0..d {
                du[i * d + k] += g * m[j * d + k];
                dm[j * d + k] += g * u[i * d + k];
            }
        }
    }
    (loss, du, dm)
}

/// The twins of --remove-accidental-hits against the masked B x B loss, with the tutorial's column weights
/// (m_c) and with the logQ correction's unit weights (the loss then differs by the constant log q terms of
/// the labels, so only the gradients are compared there).
#[test]
fn removing_accidental_hits_equals_the_masked_batch_formula() {
    for (seed, dim, log_q) in [(47, 6, false), (48, 5, true)] {
        let rb = RepeatedBatch::new(seed, 40, 7, 9, dim, 1.0);
        let b = &rb.batch;
        let (us, ms) = (&b.users, &b.movies);
        let weights = if log_q {
            vec![1.0; ms.count.len()]
        } else {
            ms.count.clone()
        };
        let (ud, md) = (rb.user_d(), rb.movie_d());
        let (users, row_lse) = cpu::retrieval_softmax_users_without_hits(
            &ud,
            &md,
            &weights,
            &us.offsets,
            &us.rows,
            &ms.of_row,
            &ms.offsets,
            dim,
            1.0,
        );
        let grad_movie = cpu::retrieval_softmax_movies_without_hits(
            &ud,
            &md,
            &weights,
            &row_lse,
            &us.of_row,
            &ms.of_row,
            &ms.offsets,
            dim,
            1.0,
        );
        let (loss, du, dm) = direct_without_hits(&rb, log_q);
        let what = |t: &str| format!("{t} (D {dim}, logQ {log_q})");
        if !log_q {
            let total: f64 = users.loss.iter().map(|&v| v as f64).sum();
            assert_close64(&what("loss"), &[total], &[loss], 1e-5, 1e-6);
            let (plain, ..) = cpu::retrieval_loss_direct(&rb.user_rows(), &rb.movie_rows(), dim);
            assert!(
                plain - loss > 1e-3,
                "removing hits lowers the loss: {plain} vs {loss}"
            );
        }
        let want_du = rb.sum_rows(us, &du);
        assert_close64(
            &what("grad_user"),
            &f64s(&users.grad_user),
            &want_du,
            1e-5,
            1e-5,
        );
        assert_close64(
            &what("grad_movie"),
            &f64s(&grad_movie),
            &rb.sum_rows(ms, &dm),
            1e-5,
            1e-5,
        );
    }
}

/// A random multi-hot field over `entities` entity rows and `vocab` feature rows (entity e holds e % 4
/// distinct features; some hold none).
fn random_field(
    rng: &mut SplitMix64,
    entities: usize,
    vocab: usize,
) -> wgrec::data::features::Field {
    let (mut offsets, mut ids) = (vec![0u32], Vec::new());
    for e in 0..entities {
        let mut mine: Vec<u32> = (0..e % 4)
            .map(|_| 1 + rng.below(vocab as u64 - 1) as u32)
            .collect();
        mine.sort_unstable();
        mine.dedup();
        ids.extend(mine);
        offsets.push(ids.len() as u32);
    }
    let tokens: Vec<String> = (1..vocab).map(|v| format!("f{v:03}")).collect();
    wgrec::data::features::Field {
        name: "test",
        vocab: wgrec::data::Vocabulary::from_values(tokens.iter().map(String::as_str)),
        offsets,
        ids,
    }
}

/// The mean-pooled field's backward (PooledRows + cpu::pooled_gather_backward) against central differences
/// of L = sum c * pooled(table) over a block of a wider output; feature rows no batch entity holds get none.
#[test]
fn pooled_gather_backward_matches_central_differences() {
    let mut rng = SplitMix64::new(23);
    let (entities, vocab, dim, stride, offset, n) = (9, 8, 4, 12, 4, 11);
    let field = random_field(&mut rng, entities, vocab);
    let entity: Vec<u32> = (0..n).map(|_| rng.below(entities as u64) as u32).collect();
    let table = f64s(&uniform(&mut rng, vocab * dim, -1.0, 1.0));
    let c = uniform(&mut rng, n * stride, -1.0, 1.0);
    let loss = |t: &[f64]| -> f64 {
        let mut total = 0.0;
        for (i, &e) in entity.iter().enumerate() {
            let mine = &field.ids
                [field.offsets[e as usize] as usize..field.offsets[e as usize + 1] as usize];
            for d in 0..dim {
                if mine.is_empty() {
                    continue;
                }
                let mean =
                    mine.iter().map(|&v| t[v as usize * dim + d]).sum::<f64>() / mine.len() as f64;
                total += c[i * stride + offset + d] as f64 * mean;
            }
        }
        total
    };
    let pooled = wgrec::data::features::PooledRows::new(&field, &entity);
    let grad = cpu::pooled_gather_backward(&c, stride, offset, dim, &pooled);
    let mut analytic = vec![0.0f64; vocab * dim];
    for (f, &v) in pooled.table_rows.iter().enumerate() {
        for d in 0..dim {
            analytic[v as usize * dim + d] = grad[f * dim + d] as f64;
        }
    }
    let h = 1e-6;
    let numeric: Vec<f64> = (0..vocab * dim)
        .map(|j| {
            let (mut up, mut down) = (table.clone(), table.clone());
            up[j] += h;
            down[j] -= h;
            (loss(&up) - loss(&down)) / (2.0 * h)
        })
        .collect();
    assert_close64("dtable", &analytic, &numeric, 1e-6, 1e-5);
    assert!(
        pooled.table_rows.windows(2).all(|w| w[0] < w[1]),
        "distinct and ascending"
    );
    assert!(
        numeric.iter().any(|g| g.abs() > 1e-3),
        "the test exercises something"
    );
}
