//! Checkpoints: one safetensors file with the embedding tables, the MLP weights (Keras shapes), the Adagrad
//! accumulators and each user's training movies, and in the header's `__metadata__` the vocabularies, the
//! model config and the training state (options, epochs done, batch-order PRNG, history, data split).
//! A model with feature towers also stores their parameters and Adagrad state (`towers`), each field's
//! features per entity (`towers/SIDE/FIELD/offsets`, `.../ids`) and, in `__metadata__["towers"]`, their
//! shapes and feature vocabularies: loading recomputes the tables from the towers.
//! Written through a temporary file and a rename; every way a file can be wrong is reported with its path.

use crate::data::{DataOptions, Dataset, Ratings, SplitKind, Vocabulary};
use crate::gpu::Gpu;
use crate::kernels::tower::Towered;
use crate::model::tower::{Tower, Towers};
use crate::model::{MlpLayout, ModelConfig, Params};
use crate::output::{Output, Staged};
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// `__metadata__["format"]` of every wgrec checkpoint, and the version this build reads and writes.
pub const FORMAT: &str = "wgrec-checkpoint";
pub const FORMAT_VERSION: &str = "1";

/// Adagrad accumulators, shaped like the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Accumulators {
    pub user_emb: Vec<f32>,  // (U, D)
    pub movie_emb: Vec<f32>, // (M, D)
    pub mlp: Vec<f32>,       // (L,) laid out by MlpLayout
    pub towers: Vec<f32>,    // as Params::towers
}

/// Each user's training movies (table rows), for `--exclude-seen`: a CSR over user rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    pub offsets: Vec<u32>, // (U + 1,)
    pub movies: Vec<u32>,  // (N,) ascending and distinct per user
}

impl Seen {
    pub fn from_ratings(train: &Ratings, users: usize) -> Self {
        let mut per_user: Vec<Vec<u32>> = vec![Vec::new(); users];
        for (&u, &m) in train.user.iter().zip(&train.movie) {
            per_user[u as usize].push(m);
        }
        let mut s = Seen {
            offsets: vec![0],
            movies: Vec::new(),
        };
        for mut v in per_user {
            v.sort_unstable();
            v.dedup();
            s.movies.extend(v);
            s.offsets.push(s.movies.len() as u32);
        }
        s
    }

    pub fn of(&self, user: u32) -> &[u32] {
        let u = user as usize;
        &self.movies[self.offsets[u] as usize..self.offsets[u + 1] as usize]
    }
}

/// How the ratings were split, so `evaluate` can rebuild the same test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// `--split-dir` as given, or None for a split made by `kind` with `seed`.
    pub split_dir: Option<String>,
    pub seed: u64,
    /// `--split` (checkpoints from before this field: random).
    #[serde(default)]
    pub kind: SplitKind,
    /// `--dataset`, when the data came from a named release.
    #[serde(default)]
    pub dataset: Option<String>,
    /// `--test-fraction` of a stratified split, when given (absent: the default, 0.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
}

impl SplitInfo {
    /// In words, for notes: "split from DIR" or "temporal split, seed 42, data set ml-100k".
    pub fn describe(&self) -> String {
        let mut s = match &self.split_dir {
            Some(d) => format!("split from {d}"),
            None => format!("{:?} split, seed {}", self.kind, self.seed).to_lowercase(),
        };
        if let Some(d) = &self.dataset {
            s += &format!(", data set {d}");
        }
        s
    }

    /// What `data_opts` (the options the data was loaded with) records.
    pub fn of(data_opts: &DataOptions) -> Self {
        Self {
            split_dir: data_opts
                .split_dir
                .as_ref()
                .map(|p| p.display().to_string()),
            seed: data_opts.seed,
            kind: data_opts.split,
            dataset: data_opts.dataset.clone(),
            test_fraction: data_opts.test_fraction,
        }
    }
}

/// One epoch of the history (as `trainer::EpochLog`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub seconds: f64,
}

/// What training did and needs to go on: `__metadata__["training"]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    pub rating_weight: f32,
    pub retrieval_weight: f32,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub learning_rate: f32,
    pub seed: u64,
    pub reshuffle: bool,
    /// Epochs trained so far, all runs together.
    pub epochs_done: usize,
    /// State of the batch-order SplitMix64 after the last epoch, as a decimal string (JSON numbers lose
    /// integers above 2^53).
    pub batch_rng_state: String,
    pub split: SplitInfo,
    pub data: String,
    pub adapter: String,
    pub history: Vec<EpochRecord>,
    /// Test metrics at save time, with TFRS's names.
    pub test: serde_json::Value,
}

/// The model config as stored in `__metadata__["model"]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct StoredConfig {
    users: usize,
    movies: usize,
    embedding_dim: usize,
    hidden1: usize,
    hidden2: usize,
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub cfg: ModelConfig,
    pub params: Params,
    pub accumulators: Accumulators,
    pub users: Vocabulary,
    pub titles: Vocabulary,
    pub seen: Seen,
    pub training: TrainingState,
    /// Feature towers (none: the tables are the model).
    pub towers: Towers,
}

/// One tower as stored in `__metadata__["towers"]`: its widths and its feature fields' vocabularies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StoredTower {
    id_dim: usize,
    feature_dim: usize,
    layers: Vec<usize>,
    fields: Vec<StoredField>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StoredField {
    name: String,
    tokens: Vec<String>,
}

/// The towers' shapes as the metadata stores them: [users, movies].
fn stored_towers(t: &Towers) -> [Option<StoredTower>; 2] {
    [&t.user, &t.movie].map(|t| {
        t.as_ref().map(|t| StoredTower {
            id_dim: t.dims[0],
            feature_dim: t.dims.get(1).copied().unwrap_or(0),
            layers: t.layers.clone(),
            fields: t.fields[1..]
                .iter()
                .map(|f| StoredField {
                    name: f.name.to_string(),
                    tokens: f.vocab.tokens.clone(),
                })
                .collect(),
        })
    })
}

const SIDES: [&str; 2] = ["user", "movie"];

/// A stored field name as the parser spells it (field names are `&'static str`).
fn field_name(side: usize, name: &str) -> Result<&'static str> {
    let known: &[&'static str] = match side {
        0 => &crate::data::features::USER_FIELDS,
        _ => &crate::data::features::MOVIE_FIELDS,
    };
    known.iter().copied().find(|k| *k == name).ok_or_else(|| {
        anyhow!(
            "corrupted metadata: the {} tower has an unknown field {name:?}",
            SIDES[side]
        )
    })
}

/// Every stored feature field's CSR (`towers/SIDE/FIELD/offsets` and `.../ids`, the id field is implicit),
/// named, users' fields first.
fn feature_tensors(towers: &Towers) -> Vec<(String, &[u32])> {
    let mut v = Vec::new();
    for (side, t) in towers.sides() {
        for f in &t.fields[1..] {
            let at = format!("towers/{}/{}", SIDES[side], f.name);
            v.push((format!("{at}/offsets"), f.offsets.as_slice()));
            v.push((format!("{at}/ids"), f.ids.as_slice()));
        }
    }
    v
}

/// The MLP tensors: name (Keras-like) and (offset, rows, cols) in the flat MlpLayout vector.
fn mlp_tensors(l: &MlpLayout) -> [(&'static str, usize, usize, usize); 6] {
    [
        ("rating/dense_0/kernel", l.w1, l.k, l.h1),
        ("rating/dense_0/bias", l.b1, l.h1, 0),
        ("rating/dense_1/kernel", l.w2, l.h1, l.h2),
        ("rating/dense_1/bias", l.b2, l.h2, 0),
        ("rating/dense_2/kernel", l.w3, l.h2, 1),
        ("rating/dense_2/bias", l.b3, 1, 0),
    ]
}

fn shape(rows: usize, cols: usize) -> Vec<usize> {
    if cols == 0 {
        vec![rows]
    } else {
        vec![rows, cols]
    }
}

/// Every tensor of a checkpoint for `cfg`: (name, dtype, shape). `seen_len`: the length of seen/movies.
fn expected_tensors(
    cfg: &ModelConfig,
    users: usize,
    seen_len: usize,
    towers: &Towers,
) -> Vec<(String, Dtype, Vec<usize>)> {
    let d = cfg.embedding_dim;
    let mut v = Vec::new();
    let lens = towers.lens();
    if towers.any() {
        for name in ["towers", "adagrad/towers"] {
            v.push((name.into(), Dtype::F32, vec![lens[0] + lens[1]]));
        }
        for (name, values) in feature_tensors(towers) {
            v.push((name, Dtype::I32, vec![values.len()]));
        }
    }
    for prefix in ["", "adagrad/"] {
        v.push((
            format!("{prefix}user_embedding"),
            Dtype::F32,
            vec![cfg.users, d],
        ));
        v.push((
            format!("{prefix}movie_embedding"),
            Dtype::F32,
            vec![cfg.movies, d],
        ));
        for (name, _, rows, cols) in mlp_tensors(&cfg.layout()) {
            v.push((format!("{prefix}{name}"), Dtype::F32, shape(rows, cols)));
        }
    }
    v.push(("seen/offsets".into(), Dtype::I32, vec![users + 1]));
    v.push(("seen/movies".into(), Dtype::I32, vec![seen_len]));
    v
}

/// FNV-1a (64-bit) over the tensors' bytes in name order: the checksum of checkpoints written before the
/// header's metadata was covered too. Still verified, so those files load (with a note).
fn fnv1a64<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.into_iter().collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in sorted {
        for &b in name.as_bytes().iter().chain(bytes) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}")
}

/// SHA-256 over the header's metadata (every entry but "checksum", by key) and the tensors (name, dtype,
/// shape, bytes, by name), each field length-prefixed: safetensors has no checksum of its own, and a
/// flipped bit in a weight or a changed title would otherwise load silently.
fn checksum<'a>(
    metadata: &HashMap<String, String>,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    let mut entries: Vec<(&String, &String)> =
        metadata.iter().filter(|(k, _)| *k != "checksum").collect();
    entries.sort();
    for (k, v) in entries {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by_key(|t| t.0);
    for (name, dtype, shape, bytes) in sorted {
        field(name.as_bytes());
        field(format!("{dtype:?}{shape:?}").as_bytes());
        field(bytes);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn le_bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn le_bytes_i32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect()
}

/// The I32 values of tensor `name` as rows or offsets; a negative one is corruption.
fn u32s_of(t: &TensorView, name: &str) -> Result<Vec<u32>> {
    t.data()
        .chunks_exact(4)
        .map(|b| {
            let v = i32::from_le_bytes(b.try_into().expect("4 bytes"));
            u32::try_from(v).map_err(|_| anyhow!("tensor {name:?} holds a negative value {v}"))
        })
        .collect()
}

impl Checkpoint {
    /// Reads the parameters and accumulators of `model` back from the GPU.
    pub fn from_gpu(
        gpu: &Gpu,
        model: &Towered,
        data: &Dataset,
        training: TrainingState,
    ) -> Result<Self> {
        let (user_emb, movie_emb, mlp) = model.accumulators(gpu)?;
        let (towers, tower_acc) = match &model.towers {
            Some(t) => (t.towers.clone(), t.read(gpu, true)?),
            None => (Towers::default(), Vec::new()),
        };
        Ok(Self {
            cfg: model.cfg,
            params: model.params(gpu)?,
            accumulators: Accumulators {
                user_emb,
                movie_emb,
                mlp,
                towers: tower_acc,
            },
            towers,
            users: data.users.clone(),
            titles: data.titles.clone(),
            seen: Seen::from_ratings(&data.train, data.users.rows()),
            training,
        })
    }

    /// Uploads the parameters and the Adagrad accumulators; the tables of sides with a tower are
    /// computed on the GPU from the towers and the stored features.
    pub fn to_gpu(&self, gpu: &Gpu) -> Result<Towered> {
        let model = Towered::new(gpu, &self.cfg, &self.params, &self.towers)?;
        if let Some(t) = &model.towers {
            t.write(gpu, &self.accumulators.towers, true)?;
        }
        let a = &self.accumulators;
        for (buf, v) in [
            (&model.user_acc, &a.user_emb),
            (&model.movie_acc, &a.movie_emb),
            (&model.mlp_acc, &a.mlp),
        ] {
            gpu.queue.write_buffer(buf, 0, bytemuck::cast_slice(v));
        }
        Ok(model)
    }

    /// The file's bytes: tensors in safetensors layout, metadata in the header.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let l = self.cfg.layout();
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (prefix, user, movie, mlp) in [
            (
                "",
                &self.params.user_emb,
                &self.params.movie_emb,
                &self.params.mlp,
            ),
            (
                "adagrad/",
                &self.accumulators.user_emb,
                &self.accumulators.movie_emb,
                &self.accumulators.mlp,
            ),
        ] {
            let d = self.cfg.embedding_dim;
            tensors.push((
                format!("{prefix}user_embedding"),
                Dtype::F32,
                vec![self.cfg.users, d],
                le_bytes_f32(user),
            ));
            tensors.push((
                format!("{prefix}movie_embedding"),
                Dtype::F32,
                vec![self.cfg.movies, d],
                le_bytes_f32(movie),
            ));
            for (name, off, rows, cols) in mlp_tensors(&l) {
                let n = rows * cols.max(1);
                tensors.push((
                    format!("{prefix}{name}"),
                    Dtype::F32,
                    shape(rows, cols),
                    le_bytes_f32(&mlp[off..off + n]),
                ));
            }
        }
        if self.towers.any() {
            for (name, v) in [
                ("towers", &self.params.towers),
                ("adagrad/towers", &self.accumulators.towers),
            ] {
                tensors.push((name.into(), Dtype::F32, vec![v.len()], le_bytes_f32(v)));
            }
            for (name, v) in feature_tensors(&self.towers) {
                tensors.push((name, Dtype::I32, vec![v.len()], le_bytes_i32(v)));
            }
        }
        tensors.push((
            "seen/offsets".into(),
            Dtype::I32,
            vec![self.seen.offsets.len()],
            le_bytes_i32(&self.seen.offsets),
        ));
        tensors.push((
            "seen/movies".into(),
            Dtype::I32,
            vec![self.seen.movies.len()],
            le_bytes_i32(&self.seen.movies),
        ));
        let c = &self.cfg;
        let stored = StoredConfig {
            users: c.users,
            movies: c.movies,
            embedding_dim: c.embedding_dim,
            hidden1: c.hidden1,
            hidden2: c.hidden2,
        };
        let mut metadata: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("wgrec_version", env!("CARGO_PKG_VERSION").to_string()),
            ("model", serde_json::to_string(&stored)?),
            ("users", serde_json::to_string(&self.users.tokens)?),
            ("titles", serde_json::to_string(&self.titles.tokens)?),
            ("training", serde_json::to_string(&self.training)?),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if self.towers.any() {
            let stored = stored_towers(&self.towers);
            metadata.insert("towers".into(), serde_json::to_string(&stored)?);
        }
        let sum = checksum(
            &metadata,
            tensors
                .iter()
                .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
        );
        metadata.insert("checksum".into(), sum);
        let views = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| anyhow!("building the checkpoint's tensors: {e}"))?;
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| anyhow!("serializing the checkpoint: {e}"))
    }

    /// Writes the checkpoint to `out` (a temp file beside it, synced, renamed over it).
    pub fn save(&self, out: &Output) -> Result<()> {
        self.stage(out)?.commit()
    }

    /// Stages the checkpoint for `out`, to be committed with a command's other outputs.
    pub fn stage(&self, out: &Output) -> Result<Staged> {
        out.stage(&self.to_bytes()?)
    }

    /// Reads and checks a checkpoint; every error names the file and says what is wrong with it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            read_model_file(path).with_context(|| format!("checkpoint {}", path.display()))?;
        let (ck, covered) =
            Self::parse(&bytes).with_context(|| format!("checkpoint {}", path.display()))?;
        if !covered {
            eprintln!(
                "note: checkpoint {} was written by an older wgrec: its checksum covers the tensors but \
                 not the header's metadata (vocabularies, config); saving it again covers both",
                path.display()
            );
        }
        Ok(ck)
    }

    /// Parses and checks a checkpoint's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes).map(|(ck, _)| ck)
    }

    /// As `from_bytes`; also says whether the checksum covered the metadata (false: an older file).
    fn parse(bytes: &[u8]) -> Result<(Self, bool)> {
        let header_len = match bytes.get(..8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => bail!(
                "not a safetensors file: {} bytes, shorter than the 8-byte header length",
                bytes.len()
            ),
        };
        if header_len > bytes.len() as u64 - 8 {
            let looks_like_json = bytes.get(8) == Some(&b'{');
            if looks_like_json {
                bail!(
                    "truncated: the header claims {header_len} bytes but only {} follow",
                    bytes.len() - 8
                );
            }
            bail!(
                "not a safetensors file: it does not start with a header length and a JSON header"
            );
        }
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| {
            if bytes.get(8) == Some(&b'{') {
                match e {
                    safetensors::SafeTensorError::MetadataIncompleteBuffer => {
                        anyhow!("truncated or corrupted: the tensor data does not match the header's offsets")
                    }
                    e => anyhow!("corrupted safetensors header: {e}"),
                }
            } else {
                anyhow!("not a safetensors file: {e}")
            }
        })?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow!("truncated or corrupted tensor data: {e}"))?;
        let md = meta.metadata().as_ref();
        let get = |key: &str| -> Result<&String> {
            md.and_then(|m| m.get(key))
                .ok_or_else(|| anyhow!("the header's __metadata__ has no {key:?} entry"))
        };
        match md.and_then(|m| m.get("format")) {
            Some(f) if f == FORMAT => {}
            _ => bail!(
                "a safetensors file, but not a wgrec checkpoint (its __metadata__ has no \"format\": \"{FORMAT}\")"
            ),
        }
        let version = get("format_version")?;
        if version != FORMAT_VERSION {
            bail!("checkpoint format version {version}, but this wgrec reads version {FORMAT_VERSION}");
        }
        let json = |key: &str| -> Result<serde_json::Value> {
            serde_json::from_str(get(key)?)
                .with_context(|| format!("corrupted metadata: {key:?} is not valid JSON"))
        };
        let stored: StoredConfig = serde_json::from_value(json("model")?)
            .context("corrupted metadata: \"model\" is not a model config")?;
        let users: Vec<String> = serde_json::from_value(json("users")?)
            .context("corrupted metadata: \"users\" is not a list of user ids")?;
        let titles: Vec<String> = serde_json::from_value(json("titles")?)
            .context("corrupted metadata: \"titles\" is not a list of titles")?;
        let training: TrainingState = serde_json::from_value(json("training")?)
            .context("corrupted metadata: \"training\" is not a training state")?;
        let (users, titles) = (Vocabulary { tokens: users }, Vocabulary { tokens: titles });
        for (what, v) in [("user", &users), ("title", &titles)] {
            if v.tokens.windows(2).any(|w| w[0] >= w[1]) {
                bail!("corrupted metadata: the {what} vocabulary is not sorted and distinct");
            }
        }
        let cfg = ModelConfig {
            users: stored.users,
            movies: stored.movies,
            embedding_dim: stored.embedding_dim,
            hidden1: stored.hidden1,
            hidden2: stored.hidden2,
        };
        crate::kernels::windowed::check_shape(&cfg).context("unsupported model config")?;
        if cfg.users != users.rows() || cfg.movies != titles.rows() {
            bail!(
                "inconsistent metadata: the model has {} user and {} movie rows, the vocabularies {} and {} \
                 (with the out-of-vocabulary row)",
                cfg.users,
                cfg.movies,
                users.rows(),
                titles.rows()
            );
        }
        let seen_len = st
            .tensor("seen/movies")
            .map(|t| t.shape().iter().product())
            .unwrap_or(0);
        let towers = match md.and_then(|m| m.get("towers")) {
            None => Towers::default(),
            Some(_) => {
                let stored: [Option<StoredTower>; 2] = serde_json::from_value(json("towers")?)
                    .context("corrupted metadata: \"towers\" is not a pair of tower shapes")?;
                read_towers(&st, stored, [cfg.users, cfg.movies])?
            }
        };
        let width = towers.output_width(cfg.embedding_dim)?;
        if width != cfg.embedding_dim {
            bail!(
                "inconsistent metadata: the towers end in {width} columns, the model's tables have {}",
                cfg.embedding_dim
            );
        }
        let expected = expected_tensors(&cfg, users.rows(), seen_len, &towers);
        for (name, dtype, shape) in &expected {
            let t = st
                .tensor(name)
                .map_err(|_| anyhow!("tensor {name:?} is missing"))?;
            if t.dtype() != *dtype || t.shape() != shape.as_slice() {
                bail!(
                    "tensor {name:?} is {:?} {:?}, but the model config (U {}, M {}, D {}, H1 {}, H2 {}) needs {:?} {:?}",
                    t.dtype(),
                    t.shape(),
                    cfg.users,
                    cfg.movies,
                    cfg.embedding_dim,
                    cfg.hidden1,
                    cfg.hidden2,
                    dtype,
                    shape
                );
            }
        }
        if st.len() != expected.len() {
            let extra: Vec<&str> = st
                .names()
                .into_iter()
                .filter(|n| !expected.iter().any(|(e, _, _)| e == n))
                .collect();
            bail!("unexpected tensors {extra:?}");
        }
        let stored_sum = get("checksum")?;
        let covered = !stored_sum.starts_with("fnv1a64:");
        let sum = if covered {
            checksum(
                md.expect("has a format entry"),
                expected.iter().map(|(n, d, s)| {
                    let t = st.tensor(n).expect("checked above");
                    (n.as_str(), *d, s.as_slice(), t.data())
                }),
            )
        } else {
            fnv1a64(
                expected
                    .iter()
                    .map(|(n, _, _)| (n.as_str(), st.tensor(n).expect("checked above").data())),
            )
        };
        if *stored_sum != sum {
            bail!(
                "corrupted: the checksum of its metadata and tensors is {sum}, the header recorded \
                 {stored_sum}"
            );
        }
        for (name, dtype, shape) in &expected {
            if *dtype != Dtype::F32 {
                continue;
            }
            let data = st.tensor(name).expect("checked above").data();
            // Adagrad accumulators are sums of squares: a negative one would turn the step into NaN.
            let accumulator = name.starts_with("adagrad/");
            let value =
                |i: usize| f32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().expect("4"));
            let bad = (0..data.len() / 4).find(|&i| {
                let v = value(i);
                !v.is_finite() || (accumulator && v < 0.0)
            });
            if let Some(i) = bad {
                let at = match shape.as_slice() {
                    [_, cols] => format!("[{}, {}]", i / cols, i % cols),
                    _ => format!("[{i}]"),
                };
                let rule = if accumulator {
                    "Adagrad accumulators must be finite and not negative"
                } else {
                    "a model's weights must be finite"
                };
                bail!("tensor {name:?} holds {} at {at}: {rule}", value(i));
            }
        }
        let f32s = |name: &str| -> Vec<f32> {
            st.tensor(name)
                .expect("checked above")
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        };
        let u32s = |name: &str| u32s_of(&st.tensor(name).expect("checked above"), name);
        let tower_f32s = |name: &str| match towers.any() {
            true => f32s(name),
            false => Vec::new(),
        };
        let l = cfg.layout();
        let mlp = |prefix: &str| {
            let mut v = vec![0.0; l.len];
            for (name, off, rows, cols) in mlp_tensors(&l) {
                let t = f32s(&format!("{prefix}{name}"));
                v[off..off + rows * cols.max(1)].copy_from_slice(&t);
            }
            v
        };
        let seen = Seen {
            offsets: u32s("seen/offsets")?,
            movies: u32s("seen/movies")?,
        };
        let ok_offsets = seen.offsets.first() == Some(&0)
            && seen.offsets.windows(2).all(|w| w[0] <= w[1])
            && seen.offsets.last().copied() == Some(seen.movies.len() as u32);
        if !ok_offsets
            || (0..users.rows()).any(|u| {
                let m = seen.of(u as u32);
                m.windows(2).any(|w| w[0] >= w[1]) || m.iter().any(|&r| r as usize >= cfg.movies)
            })
        {
            bail!("corrupted: seen/offsets and seen/movies are not per-user ascending movie rows");
        }
        Ok((
            Self {
                cfg,
                params: Params {
                    user_emb: f32s("user_embedding"),
                    movie_emb: f32s("movie_embedding"),
                    mlp: mlp(""),
                    towers: tower_f32s("towers"),
                },
                accumulators: Accumulators {
                    user_emb: f32s("adagrad/user_embedding"),
                    movie_emb: f32s("adagrad/movie_embedding"),
                    mlp: mlp("adagrad/"),
                    towers: tower_f32s("adagrad/towers"),
                },
                users,
                titles,
                seen,
                training,
                towers,
            },
            covered,
        ))
    }

    /// Fails unless `data` has exactly this checkpoint's vocabularies (row i must mean the same user and title).
    pub fn check_vocabularies(&self, path: &Path, data: &Dataset) -> Result<()> {
        for (what, mine, theirs) in [
            ("user", &self.users, &data.users),
            ("title", &self.titles, &data.titles),
        ] {
            if mine != theirs {
                let first = mine
                    .tokens
                    .iter()
                    .zip(&theirs.tokens)
                    .position(|(a, b)| a != b)
                    .unwrap_or(mine.tokens.len().min(theirs.tokens.len()));
                bail!(
                    "checkpoint {} was trained with another {what} vocabulary than the data ({} vs {} {what}s, \
                     first difference at index {}: {:?} vs {:?})",
                    path.display(),
                    mine.tokens.len(),
                    theirs.tokens.len(),
                    first + 1,
                    mine.tokens.get(first),
                    theirs.tokens.get(first)
                );
            }
        }
        Ok(())
    }
}

/// The towers of a checkpoint from their stored shapes and the features tensors, every CSR checked.
fn read_towers(
    st: &SafeTensors,
    stored: [Option<StoredTower>; 2],
    entities: [usize; 2],
) -> Result<Towers> {
    let mut sides = [None, None];
    for (side, t) in stored.into_iter().enumerate() {
        let Some(t) = t else { continue };
        let mut fields = Vec::new();
        for f in &t.fields {
            let name = field_name(side, &f.name)?;
            let vocab = Vocabulary {
                tokens: f.tokens.clone(),
            };
            if vocab.tokens.windows(2).any(|w| w[0] >= w[1]) {
                bail!("corrupted metadata: the vocabulary of {} feature {name} is not sorted and distinct", SIDES[side]);
            }
            let at = format!("towers/{}/{name}", SIDES[side]);
            let read = |what: &str| -> Result<Vec<u32>> {
                let n = format!("{at}/{what}");
                let t = st
                    .tensor(&n)
                    .map_err(|_| anyhow!("tensor {n:?} is missing"))?;
                if t.dtype() != Dtype::I32 || t.shape().len() != 1 {
                    bail!(
                        "tensor {n:?} is {:?} {:?}, not a list of I32",
                        t.dtype(),
                        t.shape()
                    );
                }
                u32s_of(&t, &n)
            };
            let (offsets, ids) = (read("offsets")?, read("ids")?);
            let csr = offsets.len() == entities[side] + 1
                && offsets.first() == Some(&0)
                && offsets.windows(2).all(|w| w[0] <= w[1])
                && offsets.last().copied() == Some(ids.len() as u32)
                && ids.iter().all(|&i| (i as usize) < vocab.rows());
            if !csr {
                bail!(
                    "corrupted: {at}/offsets and {at}/ids are not a CSR of {} rows over {} features",
                    entities[side],
                    vocab.rows()
                );
            }
            fields.push(crate::data::features::Field {
                name,
                vocab,
                offsets,
                ids,
            });
        }
        let tower = Tower::new(
            entities[side],
            t.id_dim,
            fields,
            t.feature_dim.max(4),
            t.layers,
        )
        .with_context(|| format!("corrupted metadata: the {} tower", SIDES[side]))?;
        sides[side] = Some(tower);
    }
    let [user, movie] = sides;
    Ok(Towers { user, movie })
}

/// Headers longer than this are refused before they are read (safetensors's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Reads a model file: a regular file only (a FIFO would block, /dev/zero never end), whose size matches
/// what its header says the tensors need, checked before the tensors are read.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("cannot read it: {e}"))?;
    if meta.is_dir() {
        bail!("it is a directory, not a .safetensors file");
    }
    if !meta.is_file() {
        bail!(
            "not a regular file (a FIFO, device or socket): give the path of a .safetensors file"
        );
    }
    let size = meta.len();
    let mut f = std::fs::File::open(path).map_err(|e| anyhow!("cannot open it: {e}"))?;
    let mut head = Vec::new();
    (&mut f).take(8).read_to_end(&mut head)?;
    if head.len() == 8 {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if n <= MAX_HEADER && n <= size - 8 {
            let mut header = Vec::new();
            (&mut f).take(n).read_to_end(&mut header)?;
            let need = tensor_bytes(&header).map(|end| 8 + n + end);
            match need {
                Some(need) if need > size => bail!(
                    "truncated: its header describes {need} bytes of header and tensors, the file has {size}"
                ),
                Some(need) if need < size => bail!(
                    "corrupted: {} bytes follow the tensors its header describes",
                    size - need
                ),
                _ => {}
            }
            head.extend(header);
        }
    }
    // from_bytes reports every other problem (short file, bad header) from the bytes themselves.
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend(head);
    f.take(size - bytes.len() as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The end of the last tensor's data that a safetensors header describes, if it parses.
fn tensor_bytes(header: &[u8]) -> Option<u64> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    v.iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .try_fold(0u64, |end, e| Some(end.max(e?)))
}
