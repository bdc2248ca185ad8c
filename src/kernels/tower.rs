//! Feature towers on the GPU, the same for both kernel families: a side's tower writes its output rows
//! into the table both tasks read (the model's user or movie table), the family's step writes each
//! distinct row's gradient back instead of updating it (`grad_out`), and the tower's backward takes that
//! gradient through the dense stack and the pooled fields into Adagrad. Small dense layers over a few
//! thousand rows: the GPU family's storage-read kernels serve both families.

use crate::data::batches::{Columns, Distinct};
use crate::data::features::PooledRows;
use crate::gpu::batches::DistinctBuffers;
use crate::gpu::launch::{Launch, Pass};
use crate::gpu::{slice, whole, Gpu, Kernel};
use crate::kernels::gpu::{
    self as g, DenseBackwardDataBindings, DenseBackwardDataParams, DenseBackwardWeightsBindings,
    DenseBackwardWeightsParams, DenseForwardBindings, DenseForwardParams, EmbeddingAdagradBindings,
    EmbeddingAdagradParams,
};
use crate::kernels::model::GpuModel;
use crate::kernels::windowed::{
    AdagradDense, AdagradDenseBindings, AdagradDenseParams, EmbeddingGatherParams, PooledGather,
    PooledGatherBackward, PooledGatherBackwardBindings, PooledGatherBackwardParams,
    PooledGatherBindings, ScatterRows, ScatterRowsBindings, ScatterRowsParams,
};
use crate::model::tower::{Tower, Towers};
use crate::model::{ModelConfig, Params};
use crate::model::{EPSILON, INITIAL_ACCUMULATOR};
use anyhow::Result;

/// Rows per split of the stack's weight gradients (adagrad_dense adds the splits up).
const SPLIT_ROWS: usize = 256;

/// The pipelines a tower runs.
pub struct Kernels {
    pub pooled_gather: Kernel<PooledGather>,
    pub pooled_gather_backward: Kernel<PooledGatherBackward>,
    pub scatter_rows: Kernel<ScatterRows>,
    pub dense_forward: Kernel<g::DenseForward>,
    pub dense_forward_linear: Kernel<g::DenseForward>,
    pub dense_backward_data: Kernel<g::DenseBackwardData>,
    pub dense_backward_data_linear: Kernel<g::DenseBackwardData>,
    pub dense_backward_weights: Kernel<g::DenseBackwardWeights>,
    pub adagrad_dense: Kernel<AdagradDense>,
    pub embedding_adagrad: Kernel<g::EmbeddingAdagrad>,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Result<Self> {
        use crate::kernels::windowed::compile;
        Ok(Self {
            pooled_gather: compile(gpu, &[])?,
            pooled_gather_backward: compile(gpu, &[])?,
            scatter_rows: compile(gpu, &[])?,
            dense_forward: g::compile(gpu, &[("RELU", 1.0)])?,
            dense_forward_linear: variant(
                gpu,
                "dense_forward_linear_gpu",
                "dense_forward_gpu",
                &[("RELU", 0.0)],
            )?,
            dense_backward_data: g::compile(gpu, &[("MASK", 1.0)])?,
            dense_backward_data_linear: variant(
                gpu,
                "dense_backward_data_linear_gpu",
                "dense_backward_data_gpu",
                &[("MASK", 0.0)],
            )?,
            dense_backward_weights: g::compile(gpu, &[])?,
            adagrad_dense: compile(gpu, &[])?,
            embedding_adagrad: g::compile(gpu, &[])?,
        })
    }
}

/// A second pipeline of the GPU family's shader `name` with other override constants.
fn variant<S: crate::gpu::shader::Shader>(
    gpu: &Gpu,
    label: &'static str,
    name: &str,
    constants: &[(&str, f64)],
) -> Result<Kernel<S>> {
    Kernel::variant(gpu, label, g::source(name), constants, crate::kernels::cost)
}

/// One side's tower on the GPU: its parameters and Adagrad state (one flat vector each, as
/// `Tower::layout` lays them out) and its fields' CSRs.
pub struct SideBuffers {
    pub tower: Tower,
    pub params: wgpu::Buffer,
    pub accum: wgpu::Buffer,
    offsets: Vec<wgpu::Buffer>,
    ids: Vec<wgpu::Buffer>,
}

impl SideBuffers {
    fn new(gpu: &Gpu, tower: &Tower, params: &[f32], side: &str) -> Result<Self> {
        let l = tower.layout();
        gpu.check_binding(&format!("the {side} tower"), (l.len * 4) as u64)?;
        Ok(Self {
            params: gpu.upload(&format!("{side} tower"), params),
            accum: gpu.upload(
                &format!("{side} tower accum"),
                &vec![INITIAL_ACCUMULATOR; l.len],
            ),
            offsets: tower
                .fields
                .iter()
                .map(|f| gpu.upload(&format!("{side} {} offsets", f.name), &f.offsets))
                .collect(),
            ids: tower
                .fields
                .iter()
                .map(|f| gpu.upload(&format!("{side} {} ids", f.name), &f.ids))
                .collect(),
            tower: tower.clone(),
        })
    }

    fn stack(&self) -> wgpu::BindingResource<'_> {
        let l = self.tower.layout();
        slice(&self.params, l.stack, (l.len - l.stack).max(4))
    }

    fn table<'b>(&self, buffer: &'b wgpu::Buffer, f: usize) -> wgpu::BindingResource<'b> {
        let t = &self.tower;
        slice(buffer, t.layout().tables[f], t.table_rows(f) * t.dims[f])
    }
}

/// A tower's forward over up to `capacity` listed entities into `table`: one pooled gather per field
/// into x, the stack, and the scatter of the output rows.
struct Forward {
    capacity: usize,
    gathers: Vec<Launch>,
    layers: Vec<Launch>,
    scatter: Launch,
    /// x (cap, K0), then every layer's output (cap, n_i).
    acts: Vec<wgpu::Buffer>,
}

impl Forward {
    fn new(
        gpu: &Gpu,
        k: &Kernels,
        s: &SideBuffers,
        entity: &wgpu::Buffer,
        capacity: usize,
        table: &wgpu::Buffer,
        label: &str,
    ) -> Self {
        let t = &s.tower;
        let l = t.layout();
        let mut acts = vec![gpu.buffer(&format!("{label} x"), capacity * t.input_width())];
        for (i, d) in l.layers.iter().enumerate() {
            acts.push(gpu.buffer(&format!("{label} layer {}", i + 1), capacity * d.n));
        }
        let gathers = (0..t.fields.len())
            .map(|f| {
                Launch::new(
                    gpu,
                    &k.pooled_gather,
                    &format!("pooled_gather ({label}, {})", t.fields[f].name),
                    PooledGatherBindings {
                        table: s.table(&s.params, f),
                        offsets: whole(&s.offsets[f]),
                        ids: whole(&s.ids[f]),
                        entity: whole(entity),
                        out: whole(&acts[0]),
                    },
                    &EmbeddingGatherParams::default(),
                )
            })
            .collect();
        let layers = (0..l.layers.len())
            .map(|i| {
                let kernel = match i + 1 < l.layers.len() {
                    true => &k.dense_forward,
                    false => &k.dense_forward_linear,
                };
                Launch::new(
                    gpu,
                    kernel,
                    &format!("dense_forward_gpu ({label} layer {})", i + 1),
                    DenseForwardBindings {
                        x: whole(&acts[i]),
                        mlp: s.stack(),
                        y: whole(&acts[i + 1]),
                    },
                    &DenseForwardParams::default(),
                )
            })
            .collect();
        let scatter = Launch::new(
            gpu,
            &k.scatter_rows,
            &format!("scatter_rows ({label})"),
            ScatterRowsBindings {
                y: whole(acts.last().expect("x")),
                rows: whole(entity),
                table: whole(table),
            },
            &ScatterRowsParams::default(),
        );
        Self {
            capacity,
            gathers,
            layers,
            scatter,
            acts,
        }
    }

    fn set(&self, gpu: &Gpu, t: &Tower, n: usize) {
        assert!(n <= self.capacity, "more rows than the tower's capacity");
        let k0 = t.input_width();
        for (f, launch) in self.gathers.iter().enumerate() {
            launch.set(
                gpu,
                &EmbeddingGatherParams {
                    n: n as u32,
                    dim4: (t.dims[f] / 4) as u32,
                    out_stride4: (k0 / 4) as u32,
                    out_offset4: (t.column(f) / 4) as u32,
                },
            );
        }
        let l = t.layout();
        for (launch, d) in self.layers.iter().zip(&l.layers) {
            let p = DenseForwardParams::new(n, d.k, d.n, d.w - l.stack, d.b - l.stack);
            launch.set(gpu, &p);
        }
        let p = ScatterRowsParams {
            n: n as u32,
            dim4: (t.output_width() / 4) as u32,
            ..Default::default()
        };
        self.scatter.set(gpu, &p);
    }

    fn encode(&self, pass: &mut Pass, t: &Tower, n: usize) {
        for (f, launch) in self.gathers.iter().enumerate() {
            launch.run(pass, (n * t.dims[f] / 4) as u32);
        }
        for (launch, d) in self.layers.iter().zip(t.layout().layers) {
            launch.run_groups(pass, g::groups::dense_forward(n, d.n));
        }
        self.scatter.run(pass, (n * t.output_width() / 4) as u32);
    }
}

/// The towers of a model: parameters, and the forward over every entity that fills the tables.
pub struct GpuTowers {
    pub kernels: Kernels,
    pub towers: Towers,
    /// Per side (users, movies), where the side has a tower.
    pub sides: [Option<SideBuffers>; 2],
    /// Forward over all entity rows into the model's tables.
    all: [Option<(Forward, wgpu::Buffer)>; 2],
}

impl GpuTowers {
    /// Towers with the flat parameters `params` (users' then movies'), writing into `tables`.
    pub fn new(
        gpu: &Gpu,
        towers: &Towers,
        params: &[f32],
        tables: [&wgpu::Buffer; 2],
    ) -> Result<Self> {
        let lens = towers.lens();
        if params.len() != lens[0] + lens[1] {
            anyhow::bail!(
                "tower parameters of another shape: {} floats, the towers need {}",
                params.len(),
                lens[0] + lens[1]
            );
        }
        let kernels = Kernels::new(gpu)?;
        let side_params = [&params[..lens[0]], &params[lens[0]..]];
        let names = ["user", "movie"];
        let sides = [0, 1].map(|i| {
            [&towers.user, &towers.movie][i]
                .as_ref()
                .map(|t| SideBuffers::new(gpu, t, side_params[i], names[i]))
                .transpose()
        });
        let [u, m] = sides;
        let sides = [u?, m?];
        let all = [0, 1].map(|i| {
            sides[i].as_ref().map(|s| {
                let e = s.tower.entities();
                let rows = gpu.upload("all rows", &(0..e as u32).collect::<Vec<u32>>());
                let f = Forward::new(gpu, &kernels, s, &rows, e, tables[i], names[i]);
                (f, rows)
            })
        });
        Ok(Self {
            kernels,
            towers: towers.clone(),
            sides,
            all,
        })
    }

    /// Recomputes every row of the tables from the towers' current parameters.
    pub fn materialize(&self, gpu: &Gpu) -> Result<()> {
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("towers"),
            });
        for (s, a) in self.sides.iter().zip(&self.all) {
            if let (Some(s), Some((f, _))) = (s, a) {
                f.set(gpu, &s.tower, s.tower.entities());
            }
        }
        {
            let mut pass = Pass::begin(&mut enc, "towers", None);
            for (s, a) in self.sides.iter().zip(&self.all) {
                if let (Some(s), Some((f, _))) = (s, a) {
                    f.encode(&mut pass, &s.tower, s.tower.entities());
                }
            }
        }
        gpu.queue.submit([enc.finish()]);
        gpu.wait()
    }

    /// Both sides' flat parameters (users' then movies'), or their Adagrad state.
    pub fn read(&self, gpu: &Gpu, accumulators: bool) -> Result<Vec<f32>> {
        let mut v = Vec::new();
        for s in self.sides.iter().flatten() {
            let b = if accumulators { &s.accum } else { &s.params };
            v.extend(gpu.read::<f32>(b, 0, s.tower.layout().len)?);
        }
        Ok(v)
    }

    /// Overwrites the parameters (users' then movies') or the Adagrad state.
    pub fn write(&self, gpu: &Gpu, v: &[f32], accumulators: bool) -> Result<()> {
        let lens = self.towers.lens();
        if v.len() != lens[0] + lens[1] {
            anyhow::bail!(
                "tower parameters of another shape: {} floats, the towers need {}",
                v.len(),
                lens[0] + lens[1]
            );
        }
        let mut at = 0;
        for s in self.sides.iter().flatten() {
            let n = s.tower.layout().len;
            let b = if accumulators { &s.accum } else { &s.params };
            gpu.queue
                .write_buffer(b, 0, bytemuck::cast_slice(&v[at..at + n]));
            at += n;
        }
        gpu.queue.submit([]);
        gpu.wait()
    }
}

/// A model with the towers that fill its tables (none: the plain model). What training, checkpoints and
/// resumes hold; the kernels read the tables through `Deref`.
pub struct Towered {
    pub model: GpuModel,
    pub towers: Option<GpuTowers>,
}

impl Towered {
    /// The model of `p`; the sides with a tower in `towers` compute their tables from `p.towers`.
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, p: &Params, towers: &Towers) -> Result<Self> {
        let model = GpuModel::new(gpu, cfg, p)?;
        let towers = if towers.any() {
            let t = GpuTowers::new(gpu, towers, &p.towers, [&model.user_emb, &model.movie_emb])?;
            t.materialize(gpu)?;
            Some(t)
        } else if !p.towers.is_empty() {
            anyhow::bail!("tower parameters for a model without towers");
        } else {
            None
        };
        Ok(Self { model, towers })
    }

    /// Recomputes the tables of the sides with a tower (after their parameters changed).
    pub fn materialize(&self, gpu: &Gpu) -> Result<()> {
        match &self.towers {
            Some(t) => t.materialize(gpu),
            None => Ok(()),
        }
    }

    /// Every parameter, the towers' included.
    pub fn params(&self, gpu: &Gpu) -> Result<Params> {
        let mut p = self.model.params(gpu)?;
        if let Some(t) = &self.towers {
            p.towers = t.read(gpu, false)?;
        }
        Ok(p)
    }

    /// Overwrites the parameters (not the Adagrad accumulators) with `p`, e.g. a kept epoch's copy; the
    /// tables of sides with a tower are recomputed from `p.towers`.
    pub fn set_params(&self, gpu: &Gpu, p: &Params) -> Result<()> {
        self.model.set_params(gpu, p)?;
        match &self.towers {
            Some(t) => {
                t.write(gpu, &p.towers, false)?;
                t.materialize(gpu)
            }
            None if !p.towers.is_empty() => {
                anyhow::bail!("tower parameters for a model without towers")
            }
            None => Ok(()),
        }
    }
}

impl From<GpuModel> for Towered {
    fn from(model: GpuModel) -> Self {
        Self {
            model,
            towers: None,
        }
    }
}

impl std::ops::Deref for Towered {
    type Target = GpuModel;
    fn deref(&self) -> &GpuModel {
        &self.model
    }
}

/// One side's pooled field on one batch: the distinct feature rows and their (row, weight) pairs.
struct FieldBackward {
    table_rows: wgpu::Buffer,
    pair_offsets: wgpu::Buffer,
    pair_rows: wgpu::Buffer,
    pair_weights: wgpu::Buffer,
    pooled: Launch,
    adagrad: Launch,
}

/// One side's part of a training step: the forward over the batch's distinct rows, and the backward from
/// the row gradients the family's step writes into `dy`.
struct SideStep {
    forward: Forward,
    /// (cap, D): the step's gradient of every distinct row.
    dy: wgpu::Buffer,
    weights: Vec<Launch>,
    data: Vec<Launch>,
    adagrad: Option<Launch>,
    fields: Vec<FieldBackward>,
}

/// The towers' share of a training step for batches of up to `capacity` rows, reading the batch's
/// distinct rows from the step's work buffers.
pub struct TowerStep {
    sides: [Option<SideStep>; 2],
    /// The step's options that the tower's Adagrad takes.
    learning_rate: f32,
    table_learning_rate: f32,
    l2: f32,
    frozen: bool,
}

/// What the host computes per batch for a side's backward: its pooled rows per field.
pub struct SideBatch {
    pub rows: usize,
    pub fields: Vec<PooledRows>,
}

impl TowerStep {
    pub fn new(
        gpu: &Gpu,
        model: &GpuTowers,
        distinct: [&DistinctBuffers; 2],
        tables: [&wgpu::Buffer; 2],
        capacity: usize,
        opts: &crate::options::TrainOptions,
    ) -> Result<Self> {
        let k = &model.kernels;
        let names = ["users", "movies"];
        let sides = [0, 1].map(|i| {
            model.sides[i]
                .as_ref()
                .map(|s| side_step(gpu, k, s, distinct[i], tables[i], capacity, names[i]))
        });
        let lr = opts.learning_rate;
        Ok(Self {
            sides,
            learning_rate: lr,
            table_learning_rate: opts.tweaks.embedding_learning_rate.unwrap_or(lr),
            l2: opts.tweaks.embedding_l2,
            frozen: opts.embeddings_frozen(),
        })
    }

    /// Where the family's step writes side i's row gradients (None: the side has no tower).
    pub fn row_gradients(&self) -> [Option<&wgpu::Buffer>; 2] {
        [0, 1].map(|i| self.sides[i].as_ref().map(|s| &s.dy))
    }

    /// The host side of a batch with users `users` and movies `movies` (its id columns) whose retrieval
    /// softmax has the movie columns `columns` (the tower fills the rows the step reads).
    pub fn batch(
        model: &GpuTowers,
        users: &[u32],
        movies: &[u32],
        columns: Columns,
    ) -> [Option<SideBatch>; 2] {
        [0, 1].map(|i| {
            model.sides[i].as_ref().map(|s| {
                let rows = match i {
                    0 => Distinct::new(users).table_rows,
                    _ => columns.table_rows(movies),
                };
                let fields = s
                    .tower
                    .fields
                    .iter()
                    .map(|f| PooledRows::new(f, &rows))
                    .collect();
                SideBatch {
                    rows: rows.len(),
                    fields,
                }
            })
        })
    }

    /// Writes the batch's pooled rows and sets every launch.
    pub fn set(&self, gpu: &Gpu, model: &GpuTowers, batch: &[Option<SideBatch>; 2]) {
        for ((st, s), b) in self.sides.iter().zip(&model.sides).zip(batch) {
            let (Some(st), Some(s), Some(b)) = (st, s, b) else {
                continue;
            };
            let t = &s.tower;
            let (n, l) = (b.rows, t.layout());
            st.forward.set(gpu, t, n);
            if self.frozen {
                continue;
            }
            let stack_len = l.len - l.stack;
            for (j, d) in l.layers.iter().enumerate() {
                let p = DenseBackwardWeightsParams::new(
                    n,
                    d.k,
                    d.n,
                    SPLIT_ROWS,
                    stack_len,
                    d.w - l.stack,
                    d.b - l.stack,
                );
                st.weights[j].set(gpu, &p);
                let p = DenseBackwardDataParams::new(n, d.k, d.n, d.w - l.stack);
                st.data[j].set(gpu, &p);
            }
            if let Some(a) = &st.adagrad {
                let p = AdagradDenseParams {
                    len4: (stack_len / 4) as u32,
                    splits: g::splits(n, SPLIT_ROWS) as u32,
                    learning_rate: self.learning_rate,
                    epsilon: EPSILON,
                };
                a.set(gpu, &p);
            }
            for (f, (fb, pooled)) in st.fields.iter().zip(&b.fields).enumerate() {
                let write = |buf: &wgpu::Buffer, data: &[u8]| {
                    if !data.is_empty() {
                        gpu.queue.write_buffer(buf, 0, data);
                    }
                };
                write(&fb.table_rows, bytemuck::cast_slice(&pooled.table_rows));
                write(&fb.pair_offsets, bytemuck::cast_slice(&pooled.pair_offsets));
                write(&fb.pair_rows, bytemuck::cast_slice(&pooled.pair_rows));
                write(&fb.pair_weights, bytemuck::cast_slice(&pooled.pair_weights));
                let dim4 = (t.dims[f] / 4) as u32;
                fb.pooled.set(
                    gpu,
                    &PooledGatherBackwardParams {
                        features: pooled.table_rows.len() as u32,
                        dim4,
                        in_stride4: (t.input_width() / 4) as u32,
                        in_offset4: (t.column(f) / 4) as u32,
                    },
                );
                fb.adagrad.set(
                    gpu,
                    &EmbeddingAdagradParams {
                        n: pooled.table_rows.len() as u32,
                        dim4,
                        parts: 1,
                        use_dense: 1,
                        learning_rate: self.table_learning_rate,
                        epsilon: EPSILON,
                        l2: self.l2,
                        ..Default::default()
                    },
                );
            }
        }
    }

    /// The forward over the batch's distinct rows, before the family's step.
    pub fn encode_forward(
        &self,
        pass: &mut Pass,
        model: &GpuTowers,
        batch: &[Option<SideBatch>; 2],
    ) {
        for ((st, s), b) in self.sides.iter().zip(&model.sides).zip(batch) {
            if let (Some(st), Some(s), Some(b)) = (st, s, b) {
                st.forward.encode(pass, &s.tower, b.rows);
            }
        }
    }

    /// The backward and Adagrad, after the family's step (nothing when the embeddings are frozen).
    pub fn encode_backward(
        &self,
        pass: &mut Pass,
        model: &GpuTowers,
        batch: &[Option<SideBatch>; 2],
    ) {
        if self.frozen {
            return;
        }
        for ((st, s), b) in self.sides.iter().zip(&model.sides).zip(batch) {
            let (Some(st), Some(s), Some(b)) = (st, s, b) else {
                continue;
            };
            let (t, n) = (&s.tower, b.rows);
            let l = t.layout();
            for (j, d) in l.layers.iter().enumerate().rev() {
                st.weights[j].run_groups(
                    pass,
                    g::groups::dense_backward_weights(d.k, d.n, g::splits(n, SPLIT_ROWS)),
                );
                st.data[j].run_groups(pass, g::groups::dense_backward_data(n, d.k));
            }
            if let Some(a) = &st.adagrad {
                a.run(pass, ((l.len - l.stack) / 4) as u32);
            }
            for (f, (fb, pooled)) in st.fields.iter().zip(&b.fields).enumerate() {
                let rows = pooled.table_rows.len();
                fb.pooled.run(pass, (rows * t.dims[f] / 4) as u32);
                fb.adagrad.run(pass, (rows * t.dims[f] / 4) as u32);
            }
        }
    }

    /// Dispatches the towers add to a step on `batch`.
    pub fn dispatches(&self, model: &GpuTowers, batch: &[Option<SideBatch>; 2]) -> usize {
        let mut n = 0;
        for (s, b) in model.sides.iter().zip(batch) {
            if let (Some(s), Some(b)) = (s, b) {
                let t = &s.tower;
                let layers = t.layers.len();
                n += t.fields.len() + layers + 1;
                if !self.frozen {
                    let active = b.fields.iter().filter(|p| !p.table_rows.is_empty()).count();
                    n += 2 * layers + usize::from(layers > 0) + 2 * active;
                }
            }
        }
        n
    }
}

fn side_step(
    gpu: &Gpu,
    k: &Kernels,
    s: &SideBuffers,
    distinct: &DistinctBuffers,
    table: &wgpu::Buffer,
    cap: usize,
    name: &str,
) -> SideStep {
    let t = &s.tower;
    let l = t.layout();
    let forward = Forward::new(gpu, k, s, &distinct.table_rows, cap, table, name);
    let dy = gpu.buffer(&format!("{name} row gradients"), cap * t.output_width());
    // dinputs[j]: the gradient of layer j's input; without a stack the concatenation's is dy itself.
    let dinputs: Vec<wgpu::Buffer> = l
        .layers
        .iter()
        .map(|d| gpu.buffer(&format!("{name} tower dx"), cap * d.k))
        .collect();
    let stack_len = l.len - l.stack;
    let grad = gpu.buffer(
        &format!("{name} tower grad"),
        g::splits(cap, SPLIT_ROWS) * stack_len.max(4),
    );
    let dout = |j: usize| match j + 1 < l.layers.len() {
        true => &dinputs[j + 1],
        false => &dy,
    };
    let weights = (0..l.layers.len())
        .map(|j| {
            Launch::new(
                gpu,
                &k.dense_backward_weights,
                &format!("dense_backward_weights_gpu ({name} tower layer {})", j + 1),
                DenseBackwardWeightsBindings {
                    x: whole(&forward.acts[j]),
                    dy: whole(dout(j)),
                    grad: whole(&grad),
                },
                &DenseBackwardWeightsParams::default(),
            )
        })
        .collect();
    let data = (0..l.layers.len())
        .map(|j| {
            let kernel = match j > 0 {
                true => &k.dense_backward_data,
                false => &k.dense_backward_data_linear,
            };
            Launch::new(
                gpu,
                kernel,
                &format!("dense_backward_data_gpu ({name} tower layer {})", j + 1),
                DenseBackwardDataBindings {
                    dy: whole(dout(j)),
                    mlp: s.stack(),
                    h: whole(&forward.acts[j]),
                    dx: whole(&dinputs[j]),
                },
                &DenseBackwardDataParams::default(),
            )
        })
        .collect();
    let adagrad = (!l.layers.is_empty()).then(|| {
        Launch::new(
            gpu,
            &k.adagrad_dense,
            &format!("adagrad_dense ({name} tower)"),
            AdagradDenseBindings {
                grad: whole(&grad),
                param: s.stack(),
                accum: slice(&s.accum, l.stack, stack_len),
            },
            &AdagradDenseParams::default(),
        )
    });
    let dx0 = dinputs.first().unwrap_or(&dy);
    let unused = gpu.buffer("unused", 4);
    let fields = (0..t.fields.len())
        .map(|f| {
            let field = &t.fields[f];
            // A batch touches at most every row of the table, and each of its cap entities at most the
            // field's largest feature count.
            let rows_cap = t.table_rows(f).min(cap * t.max_per_entity(f)).max(1);
            let pairs_cap = (cap * t.max_per_entity(f)).max(1);
            let b = |what: &str, n: usize| gpu.buffer(&format!("{name} {} {what}", field.name), n);
            let table_rows = b("table rows", rows_cap);
            let pair_offsets = b("pair offsets", rows_cap + 1);
            let pair_rows = b("pair rows", pairs_cap);
            let pair_weights = b("pair weights", pairs_cap);
            let dfeature = b("gradient", rows_cap * t.dims[f]);
            let pooled = Launch::new(
                gpu,
                &k.pooled_gather_backward,
                &format!("pooled_gather_backward ({name}, {})", field.name),
                PooledGatherBackwardBindings {
                    dout: whole(dx0),
                    pair_offsets: whole(&pair_offsets),
                    pair_rows: whole(&pair_rows),
                    pair_weights: whole(&pair_weights),
                    dfeature: whole(&dfeature),
                },
                &PooledGatherBackwardParams::default(),
            );
            let adagrad = Launch::new(
                gpu,
                &k.embedding_adagrad,
                &format!("embedding_adagrad_gpu ({name}, {})", field.name),
                EmbeddingAdagradBindings {
                    grad_part: whole(&dfeature),
                    dx: whole(&unused),
                    batch: whole(&table_rows),
                    table: s.table(&s.params, f),
                    accum: s.table(&s.accum, f),
                },
                &EmbeddingAdagradParams::default(),
            );
            FieldBackward {
                table_rows,
                pair_offsets,
                pair_rows,
                pair_weights,
                pooled,
                adagrad,
            }
        })
        .collect();
    SideStep {
        forward,
        dy,
        weights,
        data,
        adagrad,
        fields,
    }
}
