//! Training batches and the distinct-row structure of each batch.
//!
//! The retrieval loss works on the distinct users x distinct movies of a batch, weighted by how often each
//! appears, instead of the B x B logit matrix; this module builds that structure on the host once per batch
//! (batches are fixed across epochs unless `--reshuffle`).

use crate::data::{Ratings, SplitMix64};

/// The distinct values of one id column of a batch, with CSR lists of the rows holding each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distinct {
    /// (n,) table row of each distinct id, ascending.
    pub table_rows: Vec<u32>,
    /// (n,) how many batch rows hold it, as f32 (the kernels weight by it).
    pub count: Vec<f32>,
    /// (n + 1,) `rows[offsets[a]..offsets[a + 1]]` are the batch rows of distinct id a.
    pub offsets: Vec<u32>,
    /// (B,) batch rows grouped by distinct id, ascending within a group.
    pub rows: Vec<u32>,
    /// (B,) distinct index of every batch row.
    pub of_row: Vec<u32>,
}

impl Distinct {
    pub fn new(ids: &[u32]) -> Self {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by_key(|&r| (ids[r as usize], r));
        let mut d = Distinct {
            of_row: vec![0; ids.len()],
            ..Default::default()
        };
        for &r in &order {
            let id = ids[r as usize];
            if d.table_rows.last() != Some(&id) {
                d.table_rows.push(id);
                d.count.push(0.0);
                d.offsets.push(d.rows.len() as u32);
            }
            *d.count.last_mut().unwrap() += 1.0;
            d.of_row[r as usize] = (d.table_rows.len() - 1) as u32;
            d.rows.push(r);
        }
        d.offsets.push(d.rows.len() as u32);
        d
    }

    pub fn len(&self) -> usize {
        self.table_rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table_rows.is_empty()
    }
}

/// One batch: table rows of its users and movies, ratings, and their distinct structures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub user: Vec<u32>,   // (B,)
    pub movie: Vec<u32>,  // (B,)
    pub rating: Vec<f32>, // (B,)
    pub users: Distinct,
    pub movies: Distinct,
}

impl Batch {
    pub fn new(user: Vec<u32>, movie: Vec<u32>, rating: Vec<f32>) -> Self {
        let users = Distinct::new(&user);
        let movies = Distinct::new(&movie);
        Self {
            user,
            movie,
            rating,
            users,
            movies,
        }
    }

    pub fn rows(&self) -> usize {
        self.user.len()
    }
}

/// A permutation of `0..n` by Fisher-Yates with SplitMix64 (`data::SplitMix64::shuffle`).
pub fn permutation(n: usize, rng: &mut SplitMix64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut p);
    p
}

/// Cuts `ratings`, taken in the order `perm`, into batches of `batch_size` (the last one may be smaller):
/// what TFRS's `shuffle().batch().cache()` gives.
pub fn make_batches(ratings: &Ratings, perm: &[u32], batch_size: usize) -> Vec<Batch> {
    perm.chunks(batch_size)
        .map(|chunk| batch_of(ratings, chunk))
        .collect()
}

/// The batch of the ratings at indices `chunk`, in that order.
pub fn batch_of(ratings: &Ratings, chunk: &[u32]) -> Batch {
    let pick = |v: &[u32]| chunk.iter().map(|&i| v[i as usize]).collect::<Vec<_>>();
    let rating = chunk.iter().map(|&i| ratings.rating[i as usize]).collect();
    Batch::new(pick(&ratings.user), pick(&ratings.movie), rating)
}

/// The movie columns of the retrieval softmax of every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Columns {
    /// The batch's distinct movies, each weighted by how many rows hold it: TFRS's in-batch softmax.
    #[default]
    Batch,
    /// The batch's distinct movies, weight 1 each: the logQ correction with the in-batch frequency as
    /// the sampling probability (`--logq-correction`).
    Distinct,
    /// Every movie of a table of this many rows, weight 1 each (`--full-softmax`): the softmax over
    /// the whole catalogue. Row 0 (out of vocabulary) is a column only when a batch row holds it.
    Catalogue(u32),
}

impl Columns {
    /// The table rows of the movie columns of a batch whose movie column is `movies`, ascending.
    pub fn table_rows(self, movies: &[u32]) -> Vec<u32> {
        match self {
            Columns::Catalogue(n) => {
                let first = u32::from(!movies.contains(&0));
                (first..n).collect()
            }
            _ => Distinct::new(movies).table_rows,
        }
    }
}

impl Distinct {
    /// The rows of `ids` grouped by every table row in `table_rows` (ascending, a superset of `ids`'
    /// values): rows without a row of their own have an empty group.
    pub fn over(ids: &[u32], table_rows: Vec<u32>) -> Self {
        let d = Distinct::new(ids);
        let mut offsets = Vec::with_capacity(table_rows.len() + 1);
        let mut count = vec![0.0; table_rows.len()];
        let mut index = vec![0u32; d.len()];
        let mut a = 0;
        for (c, &row) in table_rows.iter().enumerate() {
            offsets.push(d.offsets[a]);
            if d.table_rows.get(a) == Some(&row) {
                count[c] = d.count[a];
                index[a] = c as u32;
                a += 1;
            }
        }
        assert_eq!(a, d.len(), "table_rows must hold every id, ascending");
        offsets.push(d.rows.len() as u32);
        Distinct {
            count,
            table_rows,
            offsets,
            of_row: d.of_row.iter().map(|&a| index[a as usize]).collect(),
            rows: d.rows,
        }
    }
}

impl Batch {
    /// The batch with the movie columns `columns`: row counts as weights (TFRS), or weight 1 for every
    /// distinct movie (logQ correction), or every movie of the catalogue with weight 1.
    pub fn with_columns(mut self, columns: Columns) -> Self {
        match columns {
            Columns::Batch => {}
            Columns::Distinct => self.movies.count.fill(1.0),
            Columns::Catalogue(_) => {
                self.movies = Distinct::over(&self.movie, columns.table_rows(&self.movie));
                self.movies.count.fill(1.0);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_groups_rows_by_id() {
        let d = Distinct::new(&[5, 2, 5, 9, 2, 5]);
        assert_eq!(d.table_rows, vec![2, 5, 9]);
        assert_eq!(d.count, vec![2.0, 3.0, 1.0]);
        assert_eq!(d.offsets, vec![0, 2, 5, 6]);
        assert_eq!(d.rows, vec![1, 4, 0, 2, 5, 3]);
        assert_eq!(d.of_row, vec![1, 0, 1, 2, 0, 1]);
    }

    #[test]
    fn catalogue_columns_list_every_movie_with_empty_groups() {
        let b = Batch::new(vec![1, 1, 2], vec![4, 2, 4], vec![5.0; 3])
            .with_columns(Columns::Catalogue(6));
        let m = &b.movies;
        assert_eq!(m.table_rows, vec![1, 2, 3, 4, 5]);
        assert_eq!(m.count, vec![1.0; 5]);
        assert_eq!(m.offsets, vec![0, 0, 1, 1, 3, 3]);
        assert_eq!(m.rows, vec![1, 0, 2]);
        assert_eq!(m.of_row, vec![3, 1, 3]);
        let over = Distinct::over(&[4, 2, 4], vec![1, 2, 3, 4, 5]);
        assert_eq!(
            over.count,
            vec![0.0, 1.0, 0.0, 2.0, 0.0],
            "row counts before the unit weights"
        );
        // The OOV row is a column only when a row holds it.
        let oov =
            Batch::new(vec![1, 2], vec![0, 2], vec![5.0; 2]).with_columns(Columns::Catalogue(3));
        assert_eq!(oov.movies.table_rows, vec![0, 1, 2]);
        assert_eq!(oov.movies.offsets, vec![0, 1, 1, 2]);
        assert_eq!(oov.movies.of_row, vec![0, 2]);
        // The other columns keep the batch's distinct movies.
        let d = Batch::new(vec![1, 1], vec![3, 3], vec![5.0; 2]);
        assert_eq!(
            d.clone().with_columns(Columns::Batch).movies.count,
            vec![2.0]
        );
        assert_eq!(d.with_columns(Columns::Distinct).movies.count, vec![1.0]);
    }

    #[test]
    fn batches_cover_every_rating_once() {
        let n = 1000;
        let r = Ratings {
            user: (0..n).map(|i| i % 7).collect(),
            movie: (0..n).map(|i| i % 13).collect(),
            rating: (0..n).map(|i| (i % 5) as f32).collect(),
        };
        let perm = permutation(n as usize, &mut SplitMix64::new(3));
        let batches = make_batches(&r, &perm, 300);
        assert_eq!(
            batches.iter().map(Batch::rows).collect::<Vec<_>>(),
            vec![300, 300, 300, 100]
        );
        let mut seen: Vec<(u32, u32)> = batches
            .iter()
            .flat_map(|b| b.user.iter().copied().zip(b.movie.iter().copied()))
            .collect();
        let mut all: Vec<(u32, u32)> = r
            .user
            .iter()
            .copied()
            .zip(r.movie.iter().copied())
            .collect();
        seen.sort();
        all.sort();
        assert_eq!(seen, all);
    }
}
