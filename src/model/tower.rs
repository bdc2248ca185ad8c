//! Feature towers (TFRS's query and candidate models with side features): a side's vector is
//! concat(id embedding, mean-pooled embedding of each feature field), optionally through a dense stack
//! (ReLU between layers, the last layer linear). Each side's parameters are one flat vector: the field
//! tables in field order, then the stack's (W, b) pairs, every tensor on a 64-float boundary.

use super::ALIGN;
use crate::data::features::Field;
use crate::data::{SplitMix64, Vocabulary};
use anyhow::{bail, Result};

/// One side's tower: its fields (field 0 is the id itself, one row per entity) and its dense stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Tower {
    /// Field 0: "id", the identity CSR over the entity rows; then the feature fields.
    pub fields: Vec<Field>,
    /// Embedding width of each field.
    pub dims: Vec<usize>,
    /// Output widths of the dense layers (empty: the concatenation is the tower's output).
    pub layers: Vec<usize>,
}

/// A dense layer's place in a side's flat vector: W (k, n) at `w`, b (n,) at `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseAt {
    pub w: usize,
    pub b: usize,
    pub k: usize,
    pub n: usize,
}

/// Offsets (f32s) of every tensor in a side's flat vector.
#[derive(Clone, Debug, PartialEq)]
pub struct TowerLayout {
    /// Field f's table (rows_f, dim_f).
    pub tables: Vec<usize>,
    pub layers: Vec<DenseAt>,
    /// Where the dense stack starts (its tensors, offsets relative to the vector's start).
    pub stack: usize,
    pub len: usize,
}

/// The identity field of `entities` rows: entity e holds id row e (row 0, the OOV entity, included).
pub fn id_field(entities: usize) -> Field {
    Field {
        name: "id",
        vocab: Vocabulary { tokens: Vec::new() },
        offsets: (0..=entities as u32).collect(),
        ids: (0..entities as u32).collect(),
    }
}

impl Tower {
    /// A tower over `entities` rows: the id (width `id_dim`), `features` (each `feature_dim` wide) and
    /// the dense stack `layers`. Every width must be a positive multiple of 4 (vec4 kernels).
    pub fn new(
        entities: usize,
        id_dim: usize,
        features: Vec<Field>,
        feature_dim: usize,
        layers: Vec<usize>,
    ) -> Result<Self> {
        for (what, w) in [
            ("embedding dimension", id_dim),
            ("feature dimension", feature_dim),
        ]
        .into_iter()
        .chain(layers.iter().map(|&w| ("tower layer width", w)))
        {
            if w == 0 || !w.is_multiple_of(4) || w > 1024 {
                bail!("a {what} of a feature tower must be a multiple of 4 in 4..=1024, got {w}");
            }
        }
        for f in &features {
            if f.offsets.len() != entities + 1 {
                bail!(
                    "feature {} covers {} rows, the tower {entities}",
                    f.name,
                    f.offsets.len().saturating_sub(1)
                );
            }
        }
        let mut dims = vec![id_dim];
        dims.extend(features.iter().map(|_| feature_dim));
        let mut fields = vec![id_field(entities)];
        fields.extend(features);
        Ok(Self {
            fields,
            dims,
            layers,
        })
    }

    /// Entity rows (the id field's).
    pub fn entities(&self) -> usize {
        self.fields[0].offsets.len() - 1
    }

    /// Rows of field f's table: the entities for the id, the vocabulary (with OOV) for a feature.
    pub fn table_rows(&self, f: usize) -> usize {
        if f == 0 {
            self.entities()
        } else {
            self.fields[f].vocab.rows()
        }
    }

    /// Width of the concatenation the stack reads.
    pub fn input_width(&self) -> usize {
        self.dims.iter().sum()
    }

    /// Width of the tower's output, the vector both tasks see.
    pub fn output_width(&self) -> usize {
        self.layers.last().copied().unwrap_or(self.input_width())
    }

    /// Columns of the concatenation where field f starts.
    pub fn column(&self, f: usize) -> usize {
        self.dims[..f].iter().sum()
    }

    /// Most feature rows one entity holds in field f (sizes the pooled backward's buffers).
    pub fn max_per_entity(&self, f: usize) -> usize {
        let o = &self.fields[f].offsets;
        o.windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Names of the feature fields (the id left out), as the flags spell them.
    pub fn feature_names(&self) -> Vec<&'static str> {
        self.fields[1..].iter().map(|f| f.name).collect()
    }

    pub fn layout(&self) -> TowerLayout {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at = (at + n).next_multiple_of(ALIGN);
            o
        };
        let tables = (0..self.fields.len())
            .map(|f| take(self.table_rows(f) * self.dims[f]))
            .collect();
        let stack = take(0);
        let mut k = self.input_width();
        let layers = self
            .layers
            .iter()
            .map(|&n| {
                let (w, b) = (take(k * n), take(n));
                let l = DenseAt { w, b, k, n };
                k = n;
                l
            })
            .collect();
        TowerLayout {
            tables,
            layers,
            stack,
            len: at,
        }
    }

    /// Keras initialisers as `Params::init` draws them: every table uniform(-0.05, 0.05), dense kernels
    /// glorot_uniform, biases zero; tensor t of side `side` (0 users, 1 movies) draws from the stream
    /// `seed * 0x100 + 16 + 32 side + t`, apart from the base model's streams.
    pub fn init(&self, seed: u64, side: u64) -> Vec<f32> {
        let l = self.layout();
        let mut v = vec![0.0; l.len];
        let stream = |t: usize| {
            SplitMix64::new(
                seed.wrapping_mul(0x100)
                    .wrapping_add(16 + 32 * side + t as u64),
            )
        };
        let mut fill = |at: usize, n: usize, limit: f32, rng: &mut SplitMix64| {
            for x in &mut v[at..at + n] {
                *x = -limit + 2.0 * limit * rng.next_f32();
            }
        };
        for (f, &at) in l.tables.iter().enumerate() {
            fill(at, self.table_rows(f) * self.dims[f], 0.05, &mut stream(f));
        }
        for (i, d) in l.layers.iter().enumerate() {
            let limit = (6.0 / (d.k + d.n) as f32).sqrt();
            fill(d.w, d.k * d.n, limit, &mut stream(self.fields.len() + i));
        }
        v
    }
}

/// Both sides' towers; a side without one keeps its plain embedding table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Towers {
    pub user: Option<Tower>,
    pub movie: Option<Tower>,
}

impl Towers {
    /// The towers `opts` asks for over `data`'s vocabularies, with id embeddings `id_dim` wide; the
    /// features are read from the files the data came from.
    pub fn from_options(
        opts: &crate::options::TowerOptions,
        data: &crate::data::Dataset,
        id_dim: usize,
    ) -> Result<Self> {
        // The users file is read only for user features: a data set may lack it or hold a bad one.
        let (users, movies) = crate::data::features::load(data, !opts.user_features.is_empty())?;
        let pick = |side: &str,
                    have: Option<&crate::data::features::Features>,
                    names: &[String]| {
            names
                .iter()
                .map(|name| {
                    let Some(f) = have else {
                        bail!(
                            "--{side}-features: {} has no {side}s file (u.user or users.dat), so no \
                             {side} features",
                            data.description
                        );
                    };
                    f.field(name)
                        .cloned()
                        .ok_or_else(|| anyhow::anyhow!("--{side}-features: no field {name}"))
                })
                .collect::<Result<Vec<Field>>>()
        };
        let user_fields = pick("user", users.as_ref(), &opts.user_features)?;
        let movie_fields = pick("movie", Some(&movies), &opts.movie_features)?;
        let side = |entities, fields: Vec<Field>, layers: &[usize]| match fields.is_empty()
            && layers.is_empty()
        {
            true => Ok(None),
            false => {
                Tower::new(entities, id_dim, fields, opts.feature_dim, layers.to_vec()).map(Some)
            }
        };
        let towers = Self {
            user: side(data.users.rows(), user_fields, &opts.user_tower)?,
            movie: side(data.titles.rows(), movie_fields, &opts.movie_tower)?,
        };
        towers.output_width(id_dim)?;
        Ok(towers)
    }

    pub fn any(&self) -> bool {
        self.user.is_some() || self.movie.is_some()
    }

    /// (side index, tower) of the sides that have one: 0 users, 1 movies.
    pub fn sides(&self) -> impl Iterator<Item = (usize, &Tower)> {
        [&self.user, &self.movie]
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
    }

    /// f32s of each side's flat vector (0 without a tower).
    pub fn lens(&self) -> [usize; 2] {
        [&self.user, &self.movie].map(|t| t.as_ref().map_or(0, |t| t.layout().len))
    }

    /// Both sides' initial vectors, users first, as `Params::towers` holds them.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        self.sides()
            .flat_map(|(side, t)| t.init(seed, side as u64))
            .collect()
    }

    /// The width both tasks see, checked: every side's output (a plain side's is `embedding_dim`) must
    /// be the same, since retrieval scores u . m and the rating MLP reads concat(u, m).
    pub fn output_width(&self, embedding_dim: usize) -> Result<usize> {
        let widths = [&self.user, &self.movie]
            .map(|t| t.as_ref().map_or(embedding_dim, Tower::output_width));
        if widths[0] != widths[1] {
            let name = |side: usize| match [&self.user, &self.movie][side] {
                Some(t) if t.layers.is_empty() => format!(
                    "{} columns (the {}-wide id and {} features of {} columns)",
                    widths[side],
                    t.dims[0],
                    t.dims.len() - 1,
                    t.dims.get(1).copied().unwrap_or(0)
                ),
                Some(_) => format!("{} columns (its last layer)", widths[side]),
                None => format!("{} columns (a plain embedding)", widths[side]),
            };
            bail!(
                "the user side gives {} and the movie side {}: both must meet in one width (retrieval \
                 scores their dot product); end both towers in the same width with --user-tower and \
                 --movie-tower (e.g. --user-tower 64,32 --movie-tower 64,32)",
                name(0),
                name(1)
            );
        }
        Ok(widths[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::features::Field;

    fn genres() -> Field {
        Field {
            name: "genres",
            vocab: Vocabulary::from_values(["a", "b", "c"]),
            offsets: vec![0, 0, 2, 3],
            ids: vec![1, 3, 2],
        }
    }

    #[test]
    fn layout_is_aligned_disjoint_and_sized_by_the_fields() {
        let t = Tower::new(3, 8, vec![genres()], 4, vec![16, 8]).unwrap();
        assert_eq!((t.input_width(), t.output_width(), t.column(1)), (12, 8, 8));
        assert_eq!((t.table_rows(0), t.table_rows(1)), (3, 4));
        let l = t.layout();
        let spans = [
            (l.tables[0], 3 * 8),
            (l.tables[1], 4 * 4),
            (l.layers[0].w, 12 * 16),
            (l.layers[0].b, 16),
            (l.layers[1].w, 16 * 8),
            (l.layers[1].b, 8),
        ];
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0);
        }
        assert!(spans.iter().all(|(o, _)| o % ALIGN == 0));
        assert_eq!(l.stack, l.layers[0].w);
        let v = t.init(7, 0);
        assert_eq!(v.len(), l.len);
        assert!(v[l.tables[1]..l.tables[1] + 16]
            .iter()
            .all(|x| x.abs() <= 0.05));
        assert!(v[l.layers[0].b..l.layers[0].b + 16]
            .iter()
            .all(|&x| x == 0.0));
        assert_ne!(t.init(7, 1), v);
        assert_eq!(t.init(7, 0), v);
    }

    #[test]
    fn widths_are_checked() {
        assert!(Tower::new(3, 6, vec![], 4, vec![]).is_err());
        assert!(Tower::new(3, 8, vec![genres()], 4, vec![10]).is_err());
        assert!(Tower::new(4, 8, vec![genres()], 4, vec![]).is_err());
        let plain = Towers {
            user: Some(Tower::new(3, 8, vec![genres()], 4, vec![]).unwrap()),
            movie: None,
        };
        let err = plain.output_width(8).unwrap_err().to_string();
        assert!(
            err.contains("12 columns") && err.contains("--user-tower"),
            "{err}"
        );
        let stacked = Towers {
            user: Some(Tower::new(3, 8, vec![genres()], 4, vec![8]).unwrap()),
            movie: None,
        };
        assert_eq!(stacked.output_width(8).unwrap(), 8);
    }
}
