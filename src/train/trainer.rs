//! Training: the epoch loop with Keras-style progress over batches resident on the GPU, each step one
//! command buffer (copy the batch's ids, then the kernel family's forward, backward, update, loss sums).

use crate::data::batches::permutation;
use crate::data::{Ratings, SplitMix64};
use crate::gpu::batches::*;
use crate::gpu::launch::Pass;
use crate::gpu::profile::Profiler;
use crate::gpu::Gpu;
use crate::kernels::gpu::GpuStep;
use crate::kernels::tower::{TowerStep, Towered};
use crate::kernels::windowed::step::WindowedStep;
use crate::kernels::windowed::Kernels;
use crate::kernels::Ops;
use crate::options::TrainOptions;
use anyhow::{bail, Result};
use std::time::Instant;

/// One epoch of the history, as Keras's `History` records it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// Mean over the epoch's batches of the total loss, weighted by batch size.
    pub loss: f64,
    pub seconds: f64,
}

/// The batch order of an epoch: the seed's permutation, redrawn per epoch only with `reshuffle`.
/// The batch stream is separate from the initialisation streams (`Params::init`).
fn batch_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ 0xBA7C_4E55_0000_0000)
}

/// The order of the `n` training ratings in the first epoch's batches (what a CPU reference replays).
pub fn batch_order(seed: u64, n: usize) -> Vec<u32> {
    permutation(n, &mut batch_rng(seed))
}

/// The step of the kernel family the trainer runs: both read the batch the trainer copies into `ids`.
enum Step {
    Windowed(Box<WindowedStep>),
    Gpu(Box<GpuStep>),
}

pub struct Trainer<'g> {
    gpu: &'g Gpu,
    pub model: Towered,
    opts: TrainOptions,
    /// The training split, kept only to draw new batches each epoch (`--reshuffle`): at ML-25M size a
    /// copy is 240 MB.
    train: Option<Ratings>,
    rng: SplitMix64,
    store: BatchStore,
    ids: BatchBuffers,
    step: Step,
    losses: wgpu::Buffer,
    epochs_done: usize,
    profiler: Option<&'g Profiler>,
    /// With feature towers: their share of each step, and the epoch's user and movie columns in batch
    /// order (the host plans each batch's pooled backward from them).
    tower_step: Option<(TowerStep, [Vec<u32>; 2])>,
}

/// The user and movie columns of `train` in the order `perm`.
fn ordered_ids(train: &Ratings, perm: &[u32]) -> [Vec<u32>; 2] {
    [&train.user, &train.movie].map(|c| perm.iter().map(|&i| c[i as usize]).collect())
}

impl<'g> Trainer<'g> {
    /// A trainer on the windowed family.
    pub fn new(
        gpu: &'g Gpu,
        kernels: &Kernels,
        model: impl Into<Towered>,
        train: &Ratings,
        opts: &TrainOptions,
    ) -> Result<Self> {
        Self::on_family(gpu, Ops::Windowed(kernels), model, train, opts)
    }

    /// A trainer whose steps run on the family of `ops`.
    pub fn on_family(
        gpu: &'g Gpu,
        ops: Ops,
        model: impl Into<Towered>,
        train: &Ratings,
        opts: &TrainOptions,
    ) -> Result<Self> {
        let model: Towered = model.into();
        opts.validate()?;
        if train.is_empty() {
            bail!("the training split is empty");
        }
        let movies = model.cfg.movies;
        let cap = opts.step_capacity(train.len(), movies)?;
        let mut rng = batch_rng(opts.seed);
        let perm = permutation(train.len(), &mut rng);
        let columns = opts.columns(movies);
        let store = BatchStore::new(gpu, "train batches", train, &perm, opts.batch_size, columns)?;
        let ids = BatchBuffers::new(gpu, "batch", cap);
        let losses = gpu.buffer("losses", 2 * store.batches.len());
        let tower_step = match &model.towers {
            Some(t) => Some((
                TowerStep::new(
                    gpu,
                    t,
                    [&ids.users, &ids.movies],
                    [&model.user_emb, &model.movie_emb],
                    cap,
                    opts,
                )?,
                ordered_ids(train, &perm),
            )),
            None => None,
        };
        let rows_out = tower_step
            .as_ref()
            .map_or([None, None], |(t, _)| t.row_gradients());
        let step = match ops {
            Ops::Windowed(kernels) => Step::Windowed(Box::new(WindowedStep::new(
                gpu, kernels, &model, &ids, cap, opts, &losses, rows_out,
            )?)),
            Ops::Gpu(_) if opts.tweaks.remove_accidental_hits => bail!(
                "--remove-accidental-hits is implemented in the windowed kernel family only; train \
                 with --kernels windowed"
            ),
            Ops::Gpu(k) => Step::Gpu(Box::new(GpuStep::with_towers(
                gpu, k, &model, cap, opts, &losses, rows_out,
            )?)),
        };
        Ok(Self {
            gpu,
            model,
            opts: opts.clone(),
            train: opts.reshuffle.then(|| train.clone()),
            rng,
            store,
            ids,
            step,
            losses,
            epochs_done: 0,
            profiler: None,
            tower_step,
        })
    }

    /// Times every dispatch of the following steps with `profiler`.
    pub fn profile(&mut self, profiler: &'g Profiler) {
        self.profiler = Some(profiler);
    }

    /// Rows, distinct users and distinct movies of every batch.
    pub fn batch_shapes(&self) -> Vec<BatchShape> {
        self.store.batches.clone()
    }

    pub fn batches(&self) -> usize {
        self.store.batches.len()
    }

    /// Epochs trained so far, including those before a resume.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// State of the batch-order PRNG (it only advances with `reshuffle`).
    pub fn batch_rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// Continues a run saved after `epochs_done` epochs with the batch-order PRNG at `batch_rng_state`:
    /// the next epoch draws (with `reshuffle`) or reuses (without) the batches an uninterrupted run would.
    pub fn resume_at(&mut self, epochs_done: usize, batch_rng_state: u64) {
        self.epochs_done = epochs_done;
        self.rng = SplitMix64::new(batch_rng_state);
    }

    /// Encodes and submits one training step on batch `b`.
    fn step(&self, b: usize) -> Result<()> {
        let (gpu, s) = (self.gpu, self.store.batches[b]);
        let towers = match (&self.tower_step, &self.model.towers) {
            (Some((step, [users, movies])), Some(model)) => {
                let r = b * self.opts.batch_size..(b * self.opts.batch_size + s.rows);
                let columns = self.store.columns();
                let batch = TowerStep::batch(model, &users[r.clone()], &movies[r], columns);
                step.set(gpu, model, &batch);
                Some((step, model, batch))
            }
            _ => None,
        };
        match &self.step {
            Step::Windowed(step) => step.set(gpu, &s, b),
            Step::Gpu(step) => step.set(gpu, &s, b),
        }
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train step"),
            });
        self.store.copy_to(gpu, &mut enc, b, &self.ids);
        if let Step::Gpu(step) = &self.step {
            step.batch.copy_from(&mut enc, &self.ids);
        }
        {
            let mut pass = Pass::begin(&mut enc, "train step", self.profiler);
            if let Some((t, model, batch)) = &towers {
                t.encode_forward(&mut pass, model, batch);
            }
            match &self.step {
                Step::Windowed(step) => step.encode(&mut pass, &s),
                Step::Gpu(step) => step.encode(&mut pass, &s),
            }
            if let Some((t, model, batch)) = &towers {
                t.encode_backward(&mut pass, model, batch);
            }
        }
        crate::gpu::profile::submit(gpu, enc, self.profiler)
    }

    /// Total loss of batch b from the sums the step left in `losses` (waits for the GPU).
    fn batch_loss(&self, b: usize) -> Result<f64> {
        let v: Vec<f32> = self.gpu.read(&self.losses, 2 * b, 2)?;
        Ok(self.total_loss(b, v[0], v[1]))
    }

    fn total_loss(&self, b: usize, sq_err_sum: f32, retrieval_sum: f32) -> f64 {
        let o = &self.opts;
        let rows = self.store.batches[b].rows as f64;
        let mut loss = 0.0;
        if o.rating_on() {
            loss += o.rating_weight as f64 * sq_err_sum as f64 / rows;
        }
        if o.retrieval_on() {
            loss += o.retrieval_weight as f64 * retrieval_sum as f64;
        }
        loss
    }

    /// Runs one epoch; `progress` gets (step, steps, running loss) after every step when given.
    pub fn epoch(
        &mut self,
        mut progress: Option<&mut dyn FnMut(usize, usize, f64)>,
    ) -> Result<EpochLog> {
        let t0 = Instant::now();
        if let Some(train) = self.train.as_ref().filter(|_| self.epochs_done > 0) {
            let perm = permutation(train.len(), &mut self.rng);
            self.store
                .rewrite(self.gpu, "train batches", train, &perm)?;
            if let Some((_, ids)) = &mut self.tower_step {
                *ids = ordered_ids(train, &perm);
            }
        }
        let n = self.batches();
        let (mut weighted, mut rows) = (0.0, 0.0);
        for b in 0..n {
            self.step(b)?;
            if let Some(p) = progress.as_deref_mut() {
                let loss = self.batch_loss(b)?;
                let r = self.store.batches[b].rows as f64;
                weighted += loss * r;
                rows += r;
                p(b + 1, n, weighted / rows);
            }
        }
        if progress.is_none() {
            let sums: Vec<f32> = self.gpu.read(&self.losses, 0, 2 * n)?;
            for b in 0..n {
                let r = self.store.batches[b].rows as f64;
                weighted += self.total_loss(b, sums[2 * b], sums[2 * b + 1]) * r;
                rows += r;
            }
        }
        self.gpu.wait()?;
        // Every row of the towers' tables from the epoch's last parameters, for evaluation and reads.
        self.model.materialize(self.gpu)?;
        self.epochs_done += 1;
        let loss = weighted / rows;
        if !loss.is_finite() {
            bail!(
                "training diverged: the loss of epoch {} is {loss}; try a smaller --learning-rate",
                self.epochs_done
            );
        }
        Ok(EpochLog {
            epoch: self.epochs_done,
            loss,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}
