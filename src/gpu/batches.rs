//! Batches on the GPU: every batch's id columns resident (or streamed past a memory budget), copied
//! into the work buffers one step reads.

use crate::data::batches::{batch_of, Batch, Columns, Distinct};
use crate::data::Ratings;
use crate::gpu::Gpu;
use anyhow::Result;

/// One id column's distinct structure on the GPU (see `batches::Distinct`), capacity B.
pub struct DistinctBuffers {
    pub table_rows: wgpu::Buffer, // (NU,)
    pub count: wgpu::Buffer,      // (NU,) f32
    pub offsets: wgpu::Buffer,    // (NU + 1,)
    pub rows: wgpu::Buffer,       // (B,)
    pub of_row: wgpu::Buffer,     // (B,)
}

/// The work buffers one step reads its batch from, capacity B rows.
pub struct BatchBuffers {
    pub capacity: usize,
    pub user: wgpu::Buffer,   // (B,) table rows
    pub movie: wgpu::Buffer,  // (B,)
    pub rating: wgpu::Buffer, // (B,) f32
    pub users: DistinctBuffers,
    pub movies: DistinctBuffers,
}

const FIELDS: usize = 13;

fn distinct_fields(d: &Distinct) -> [Vec<u32>; 5] {
    [
        d.table_rows.clone(),
        d.count.iter().map(|v| v.to_bits()).collect(),
        d.offsets.clone(),
        d.rows.clone(),
        d.of_row.clone(),
    ]
}

/// A batch as the 13 u32 columns the work buffers hold, in `BatchBuffers::fields` order.
fn batch_fields(b: &Batch) -> Vec<Vec<u32>> {
    let mut f = vec![
        b.user.clone(),
        b.movie.clone(),
        b.rating.iter().map(|v| v.to_bits()).collect(),
    ];
    f.extend(distinct_fields(&b.users));
    f.extend(distinct_fields(&b.movies));
    f
}

impl BatchBuffers {
    pub fn new(gpu: &Gpu, label: &str, capacity: usize) -> Self {
        let b = |name: &str, n: usize| gpu.buffer(&format!("{label}.{name}"), n);
        let distinct = |side: &str| DistinctBuffers {
            table_rows: b(&format!("{side}.table_rows"), capacity),
            // Read through uniform windows by the retrieval kernels.
            count: gpu.windowed_buffer(&format!("{label}.{side}.count"), capacity),
            offsets: b(&format!("{side}.offsets"), capacity + 1),
            rows: b(&format!("{side}.rows"), capacity),
            of_row: b(&format!("{side}.of_row"), capacity),
        };
        Self {
            capacity,
            user: b("user", capacity),
            movie: b("movie", capacity),
            rating: b("rating", capacity),
            users: distinct("users"),
            movies: distinct("movies"),
        }
    }

    fn fields(&self) -> [&wgpu::Buffer; FIELDS] {
        let (u, m) = (&self.users, &self.movies);
        [
            &self.user,
            &self.movie,
            &self.rating,
            &u.table_rows,
            &u.count,
            &u.offsets,
            &u.rows,
            &u.of_row,
            &m.table_rows,
            &m.count,
            &m.offsets,
            &m.rows,
            &m.of_row,
        ]
    }
}

/// The batches of an epoch. Up to `RESIDENT_BYTES` they live on the GPU, packed field after field, and a step
/// copies its slices into the work buffers (a few hundred KiB of device-local copies instead of host
/// uploads). Larger sets (tens of millions of ratings) are streamed: the host keeps the ratings in batch
/// order and each step builds its batch and writes it into the work buffers.
pub struct BatchStore {
    storage: Storage,
    /// Every batch's movie columns (`Batch::with_columns`).
    columns: Columns,
    pub batches: Vec<BatchShape>,
}

enum Storage {
    Resident {
        buffer: wgpu::Buffer,
        /// Per batch and field: (offset, len) in u32s.
        spans: Vec<[(usize, usize); FIELDS]>,
    },
    Streamed {
        /// The ratings in batch order: batch b is rows [b B, (b + 1) B).
        ordered: Ratings,
        batch_size: usize,
    },
}

/// Largest packed batch set kept on the GPU.
pub const RESIDENT_BYTES: u64 = 256 << 20;

/// What the host needs to know of a batch to size its dispatches.
#[derive(Clone, Copy, Debug)]
pub struct BatchShape {
    pub rows: usize,
    pub users: usize,
    pub movies: usize,
}

/// u32s of a packed batch of `rows` rows: 13 fields of `rows`, the two offsets fields one longer, and
/// with catalogue columns the movies' table rows, counts and offsets as long as the catalogue.
fn packed_len(rows: usize, columns: Columns) -> usize {
    let extra = match columns {
        Columns::Catalogue(n) => 3 * (n as usize).saturating_sub(rows),
        _ => 0,
    };
    FIELDS * rows + 2 + extra
}

impl BatchStore {
    /// `ratings` taken in the order `perm`, cut into batches of `batch_size` rows (the last may be smaller).
    pub fn new(
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
        batch_size: usize,
        columns: Columns,
    ) -> Result<Self> {
        Self::with_budget(
            gpu,
            label,
            ratings,
            perm,
            batch_size,
            columns,
            RESIDENT_BYTES,
        )
    }

    /// As `new`, resident only up to `budget` bytes.
    pub fn with_budget(
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
        batch_size: usize,
        columns: Columns,
        budget: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            anyhow::bail!("the batch size must be at least 1");
        }
        let bytes: u64 = perm
            .chunks(batch_size)
            .map(|c| packed_len(c.len(), columns) as u64 * 4)
            .sum();
        if bytes <= budget.min(gpu.limits.max_buffer_size) {
            let mut data = Vec::with_capacity((bytes / 4) as usize);
            let mut spans = Vec::new();
            let mut batches = Vec::new();
            for chunk in perm.chunks(batch_size) {
                let b = batch_of(ratings, chunk).with_columns(columns);
                spans.push(pack(&mut data, &b));
                batches.push(shape(&b));
            }
            return Ok(Self {
                storage: Storage::Resident {
                    buffer: gpu.upload(label, &data),
                    spans,
                },
                columns,
                batches,
            });
        }
        let ordered = Ratings {
            user: perm.iter().map(|&i| ratings.user[i as usize]).collect(),
            movie: perm.iter().map(|&i| ratings.movie[i as usize]).collect(),
            rating: perm.iter().map(|&i| ratings.rating[i as usize]).collect(),
        };
        let batches = (0..ordered.len())
            .step_by(batch_size)
            .map(|r0| {
                shape(&Self::streamed_batch(
                    &ordered,
                    batch_size,
                    r0 / batch_size,
                    columns,
                ))
            })
            .collect();
        Ok(Self {
            storage: Storage::Streamed {
                ordered,
                batch_size,
            },
            columns,
            batches,
        })
    }

    /// The movie columns every batch was built with.
    pub fn columns(&self) -> Columns {
        self.columns
    }

    /// Whether the batches live on the GPU (false: streamed from the host every step).
    pub fn resident(&self) -> bool {
        matches!(self.storage, Storage::Resident { .. })
    }

    fn streamed_batch(ordered: &Ratings, batch_size: usize, b: usize, columns: Columns) -> Batch {
        let r = b * batch_size..((b + 1) * batch_size).min(ordered.len());
        Batch::new(
            ordered.user[r.clone()].to_vec(),
            ordered.movie[r.clone()].to_vec(),
            ordered.rating[r].to_vec(),
        )
        .with_columns(columns)
    }

    /// Replaces the batches with `ratings` in a new order `perm`, same batch size and storage (`--reshuffle`).
    pub fn rewrite(
        &mut self,
        gpu: &Gpu,
        label: &str,
        ratings: &Ratings,
        perm: &[u32],
    ) -> Result<()> {
        let batch_size = self.batches.first().map_or(1, |b| b.rows);
        let budget = if self.resident() { u64::MAX } else { 0 };
        *self = Self::with_budget(gpu, label, ratings, perm, batch_size, self.columns, budget)?;
        Ok(())
    }

    /// Puts batch `batch` into the work buffers: copies recorded into `enc`, or queue writes that land before
    /// the next submission.
    pub fn copy_to(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
        work: &BatchBuffers,
    ) {
        match &self.storage {
            Storage::Resident { buffer, spans } => {
                for (&(off, len), dst) in spans[batch].iter().zip(work.fields()) {
                    if len > 0 {
                        enc.copy_buffer_to_buffer(buffer, off as u64 * 4, dst, 0, len as u64 * 4);
                    }
                }
            }
            Storage::Streamed {
                ordered,
                batch_size,
            } => {
                let b = Self::streamed_batch(ordered, *batch_size, batch, self.columns);
                for (field, dst) in batch_fields(&b).iter().zip(work.fields()) {
                    if !field.is_empty() {
                        gpu.queue.write_buffer(dst, 0, bytemuck::cast_slice(field));
                    }
                }
            }
        }
    }
}

/// Appends batch `b`'s fields to `data`, each padded to its capacity (so that batches with the same rows
/// and columns pack to the same size); returns their spans.
fn pack(data: &mut Vec<u32>, b: &Batch) -> [(usize, usize); FIELDS] {
    let mut span = [(0, 0); FIELDS];
    for (i, (s, f)) in span.iter_mut().zip(batch_fields(b)).enumerate() {
        *s = (data.len(), f.len());
        data.extend_from_slice(&f);
        // The two offsets fields: rows + 1; catalogue columns are longer than the rows.
        let capacity = (b.rows() + usize::from(i == 5 || i == 10)).max(f.len());
        data.resize(data.len() + capacity - f.len(), 0);
    }
    span
}

fn shape(b: &Batch) -> BatchShape {
    BatchShape {
        rows: b.rows(),
        users: b.users.len(),
        movies: b.movies.len(),
    }
}
