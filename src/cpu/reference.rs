//! The composed CPU reference of one whole training step (llm.c's way: every kernel's twin called in the
//! order the GPU runs them), on the host copy of the model and its Adagrad state. Tests hold each kernel
//! family's step against it.

use super::*;
use crate::data::batches::Batch;
use crate::model::tower::Towers;
use crate::model::{ModelConfig, Params};
use crate::model::{EPSILON, INITIAL_ACCUMULATOR};
use crate::options::TrainOptions;

/// The model and Adagrad state on the host, stepped with the CPU twins.
pub struct CpuModel {
    pub cfg: ModelConfig,
    pub params: Params,
    pub user_acc: Vec<f32>,
    pub movie_acc: Vec<f32>,
    pub mlp_acc: Vec<f32>,
    /// Feature towers (their parameters in `params.towers`) and their Adagrad state.
    pub towers: Towers,
    pub tower_acc: Vec<f32>,
}

/// The rating model's activations on one batch: x = concat(user, movie), both hidden layers, the head.
pub struct RatingForward {
    pub x: Vec<f32>,
    pub h1: Vec<f32>,
    pub h2: Vec<f32>,
    pub head: RatingLoss,
}

/// The rating model's forward pass and loss on batch `b` (`scale` as `rating_loss` takes it).
pub fn rating_forward(cfg: &ModelConfig, p: &Params, b: &Batch, scale: f32) -> RatingForward {
    let (l, d, rows) = (cfg.layout(), cfg.embedding_dim, b.rows());
    let mut x = vec![0.0; rows * 2 * d];
    embedding_gather(&p.user_emb, &b.user, d, &mut x, 2 * d, 0);
    embedding_gather(&p.movie_emb, &b.movie, d, &mut x, 2 * d, d);
    let w1 = &p.mlp[l.w1..l.w1 + l.k * l.h1];
    let w2 = &p.mlp[l.w2..l.w2 + l.h1 * l.h2];
    let h1 = dense_forward(&x, w1, &p.mlp[l.b1..l.b1 + l.h1], rows, l.k, l.h1, true);
    let h2 = dense_forward(&h1, w2, &p.mlp[l.b2..l.b2 + l.h2], rows, l.h1, l.h2, true);
    let head = rating_loss(
        &h2,
        &p.mlp[l.w3..l.w3 + l.h2],
        p.mlp[l.b3],
        &b.rating,
        scale,
    );
    RatingForward { x, h1, h2, head }
}

impl CpuModel {
    pub fn new(cfg: ModelConfig, params: Params) -> Self {
        Self {
            cfg,
            user_acc: vec![INITIAL_ACCUMULATOR; params.user_emb.len()],
            movie_acc: vec![INITIAL_ACCUMULATOR; params.movie_emb.len()],
            mlp_acc: vec![INITIAL_ACCUMULATOR; params.mlp.len()],
            tower_acc: vec![INITIAL_ACCUMULATOR; params.towers.len()],
            towers: Towers::default(),
            params,
        }
    }

    /// A model whose sides with a tower in `towers` compute their rows from `params.towers`.
    pub fn with_towers(cfg: ModelConfig, params: Params, towers: Towers) -> Self {
        Self {
            towers,
            ..Self::new(cfg, params)
        }
    }

    /// Side i's (offset, len) in `params.towers`.
    fn tower_span(&self, side: usize) -> (usize, usize) {
        let lens = self.towers.lens();
        (if side == 0 { 0 } else { lens[0] }, lens[side])
    }

    /// Every row of the towers' tables from their parameters (what the GPU does after each epoch).
    pub fn materialize(&mut self) {
        let d = self.cfg.embedding_dim;
        for (side, t) in self.towers.clone().sides() {
            let (at, len) = self.tower_span(side);
            let rows: Vec<u32> = (0..t.entities() as u32).collect();
            let f = super::tower::forward(t, &self.params.towers[at..at + len], &rows);
            let table = match side {
                0 => &mut self.params.user_emb,
                _ => &mut self.params.movie_emb,
            };
            table[..rows.len() * d].copy_from_slice(f.output());
        }
    }

    /// One training step, kernel by kernel; returns the batch's total loss.
    pub fn step(&mut self, b: &Batch, o: &TrainOptions) -> f64 {
        let (c, l) = (self.cfg, self.cfg.layout());
        let (d, rows, lr) = (c.embedding_dim, b.rows(), o.learning_rate);
        // Feature towers first: the batch's distinct rows of their tables from the towers.
        let towers = self.towers.clone();
        let mut tower_fwd = Vec::new();
        for (side, t) in towers.sides() {
            let (at, len) = self.tower_span(side);
            let entity = [&b.users, &b.movies][side].table_rows.clone();
            let f = super::tower::forward(t, &self.params.towers[at..at + len], &entity);
            let table = match side {
                0 => &mut self.params.user_emb,
                _ => &mut self.params.movie_emb,
            };
            for (i, &e) in entity.iter().enumerate() {
                table[e as usize * d..][..d].copy_from_slice(&f.output()[i * d..][..d]);
            }
            tower_fwd.push((side, entity, f));
        }
        let p = &mut self.params;
        // Rating task: forward, backward, Adagrad on the MLP.
        let scale = 2.0 * o.rating_weight / rows as f32;
        let RatingForward { x, h1, h2, head } = rating_forward(&c, p, b, scale);
        let w1 = p.mlp[l.w1..l.w1 + l.k * l.h1].to_vec();
        let w2 = p.mlp[l.w2..l.w2 + l.h1 * l.h2].to_vec();
        let (dw3, db3) = rating_head_backward(&h2, &head.dpred);
        let (dw2, db2) = dense_backward_weights(&h1, &head.dh2, rows, l.h1, l.h2);
        let dh1 = dense_backward_data(&head.dh2, &w2, Some(&h1), rows, l.h1, l.h2);
        let (dw1, db1) = dense_backward_weights(&x, &dh1, rows, l.k, l.h1);
        let dx = dense_backward_data(&dh1, &w1, None, rows, l.k, l.h1);
        let mut grad = vec![0.0; l.len];
        for (at, g) in [
            (l.w1, &dw1),
            (l.b1, &db1),
            (l.w2, &dw2),
            (l.b2, &db2),
            (l.w3, &dw3),
            (l.b3, &vec![db3]),
        ] {
            grad[at..at + g.len()].copy_from_slice(g);
        }
        adagrad(&mut p.mlp, &mut self.mlp_acc, &grad, lr, EPSILON);
        // Retrieval task on the distinct rows, with the embeddings as they were before this step.
        let (us, ms) = (&b.users, &b.movies);
        let mut ud = vec![0.0; us.len() * d];
        let mut md = vec![0.0; ms.len() * d];
        embedding_gather(&p.user_emb, &us.table_rows, d, &mut ud, d, 0);
        embedding_gather(&p.movie_emb, &ms.table_rows, d, &mut md, d, 0);
        let w = o.retrieval_weight;
        // --temperature T: u' = u / T, and the user side's weight times 1 / T (see RetrievalForward).
        let inv_t = o
            .tweaks
            .temperature
            .filter(|&t| t != 1.0)
            .map_or(1.0, |t| 1.0 / t);
        if inv_t != 1.0 {
            scale_rows(&mut ud, inv_t);
        }
        let (users, grad_movie) = if o.tweaks.remove_accidental_hits {
            let (users, row_lse) = retrieval_softmax_users_without_hits(
                &ud,
                &md,
                &ms.count,
                &us.offsets,
                &us.rows,
                &ms.of_row,
                &ms.offsets,
                d,
                w * inv_t,
            );
            let grad_movie = retrieval_softmax_movies_without_hits(
                &ud,
                &md,
                &ms.count,
                &row_lse,
                &us.of_row,
                &ms.of_row,
                &ms.offsets,
                d,
                w,
            );
            (users, grad_movie)
        } else {
            retrieval_softmax(&ud, &md, us, ms, d, w * inv_t, w)
        };
        // Both tables: retrieval gradient of the distinct row plus the MLP input gradient of its rows.
        let elr = o.tweaks.embedding_learning_rate.unwrap_or(lr);
        let l2 = o.tweaks.embedding_l2;
        // --embedding-learning-rate 0 freezes the tables and their accumulators (no update at all).
        if !o.embeddings_frozen() {
            let sides = [
                (&users.grad_user, 0, us, &mut p.user_emb, &mut self.user_acc),
                (&grad_movie, d, ms, &mut p.movie_emb, &mut self.movie_acc),
            ];
            let (rating, retrieval) = (o.rating_on(), o.retrieval_on());
            for (side, (grad, off, ids, table, acc)) in sides.into_iter().enumerate() {
                let dense = retrieval.then_some(grad.as_slice());
                let dx = rating.then_some((dx.as_slice(), 2 * d, off));
                let Some((_, entity, fwd)) = tower_fwd.iter().find(|(s, ..)| *s == side) else {
                    embedding_adagrad(
                        dense,
                        dx,
                        &ids.offsets,
                        &ids.rows,
                        &ids.table_rows,
                        table,
                        acc,
                        d,
                        elr,
                        EPSILON,
                        l2,
                    );
                    continue;
                };
                // A tower side: the rows' gradient goes back through the tower into its Adagrad.
                let dy = embedding_row_gradients(dense, dx, &ids.offsets, &ids.rows, ids.len(), d);
                let t = [&towers.user, &towers.movie][side]
                    .as_ref()
                    .expect("tower side");
                let (at, len) = {
                    let lens = towers.lens();
                    (if side == 0 { 0 } else { lens[0] }, lens[side])
                };
                let tp = &mut p.towers[at..at + len];
                let g = super::tower::backward(t, tp, entity, fwd, &dy);
                let ta = &mut self.tower_acc[at..at + len];
                super::tower::apply(t, tp, ta, &g, lr, elr, l2);
            }
        }
        let sq: f64 = head.sq_err.iter().map(|&v| v as f64).sum();
        let ret: f64 = users.loss.iter().map(|&v| v as f64).sum();
        o.rating_weight as f64 * sq / rows as f64 + w as f64 * ret
    }
}
