//! The splits made from all ratings: the per-user temporal split (each user's latest ratings are the test
//! set, so no model is evaluated on ratings older than the ones it trained on; the random split leaks the
//! future), Microsoft Recommenders' per-user stratified split, and the folds of a seeded k-fold
//! cross-validation.

use super::formats::Columns;
use super::{Ratings, SplitMix64};

/// Splits `all` (users already vocabulary indices below `user_rows`, timestamps kept): for each user,
/// the latest `n / 5` (rounded down) of their `n` ratings by timestamp, ties broken by file order, go
/// to the test set; users with fewer than 5 ratings are only in training. Both sets keep file order.
///
/// Memory: a counting sort by user (4 bytes per rating) and a mask (1 byte per rating) on top of
/// the columns, which are moved into the two sets one at a time.
pub fn temporal(all: Columns, user_rows: usize) -> (Ratings, Ratings) {
    let is_test = test_mask(&all.user, &all.timestamp, user_rows);
    split_by_mask(all, &is_test)
}

/// Microsoft Recommenders' `python_stratified_split` (the split of their ML-100K benchmark): for each user,
/// the user's ratings in file order are shuffled by one [`SplitMix64::new`]`(seed)` stream (users in
/// vocabulary order), and the first `round((1 - test_fraction) * n)` of them (halves to even, as Python's
/// `round`) go to training, the rest to the test set. Every user with two or more ratings is in both sets
/// at `test_fraction` 0.25 (n = 1 stays in training). Both sets keep file order.
pub fn stratified(
    all: Columns,
    user_rows: usize,
    test_fraction: f64,
    seed: u64,
) -> (Ratings, Ratings) {
    let is_test = stratified_mask(&all.user, user_rows, test_fraction, seed);
    split_by_mask(all, &is_test)
}

/// `true` for the ratings [`stratified`] puts in the test set.
pub fn stratified_mask(user: &[u32], user_rows: usize, test_fraction: f64, seed: u64) -> Vec<bool> {
    assert!(
        (0.0..1.0).contains(&test_fraction),
        "test fraction in [0, 1)"
    );
    let (start, mut order) = by_user(user, user_rows);
    let mut rng = SplitMix64::new(seed);
    let mut is_test = vec![false; user.len()];
    for w in start.windows(2) {
        let mine = &mut order[w[0]..w[1]];
        rng.shuffle(mine);
        let n_train = ((1.0 - test_fraction) * mine.len() as f64).round_ties_even() as usize;
        for &i in &mine[n_train.min(mine.len())..] {
            is_test[i as usize] = true;
        }
    }
    is_test
}

/// Fold `index` of `folds` seeded random folds: the ratings shuffled by [`SplitMix64::new`]`(seed)`
/// ([`SplitMix64::shuffle`] of 0..n), the shuffled positions `index * n / folds .. (index + 1) * n / folds`
/// are the test set, the rest training. The folds of one seed are disjoint and cover every rating once.
/// Both sets keep file order.
pub fn fold(all: Columns, folds: usize, index: usize, seed: u64) -> (Ratings, Ratings) {
    let is_test = fold_mask(all.len(), folds, index, seed);
    split_by_mask(all, &is_test)
}

/// `true` for the ratings [`fold`] puts in the test set.
pub fn fold_mask(n: usize, folds: usize, index: usize, seed: u64) -> Vec<bool> {
    assert!(index < folds, "fold {index} of {folds}");
    let mut order: Vec<u32> = (0..n as u32).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    let mut is_test = vec![false; n];
    for &i in &order[index * n / folds..(index + 1) * n / folds] {
        is_test[i as usize] = true;
    }
    is_test
}

/// The columns divided by `is_test`, moved one at a time.
fn split_by_mask(all: Columns, is_test: &[bool]) -> (Ratings, Ratings) {
    let Columns {
        user,
        movie,
        rating,
        timestamp,
    } = all;
    drop(timestamp);
    let (train_user, test_user) = partition(user, is_test);
    let (train_movie, test_movie) = partition(movie, is_test);
    let (train_rating, test_rating) = partition(rating, is_test);
    (
        Ratings {
            user: train_user,
            movie: train_movie,
            rating: train_rating,
        },
        Ratings {
            user: test_user,
            movie: test_movie,
            rating: test_rating,
        },
    )
}

/// `true` for the ratings [`temporal`] puts in the test set.
pub fn test_mask(user: &[u32], timestamp: &[i64], user_rows: usize) -> Vec<bool> {
    assert_eq!(user.len(), timestamp.len(), "one timestamp per rating");
    let (start, mut order) = by_user(user, user_rows);
    let mut is_test = vec![false; user.len()];
    for w in start.windows(2) {
        let mine = &mut order[w[0]..w[1]];
        mine.sort_by_key(|&i| timestamp[i as usize]); // stable: ties keep file order
        let n_test = mine.len() / 5;
        for &i in &mine[mine.len() - n_test..] {
            is_test[i as usize] = true;
        }
    }
    is_test
}

/// A counting sort of the rating indices by user: (CSR offsets (user_rows + 1,), indices (N,)), indices in
/// file order within a user.
fn by_user(user: &[u32], user_rows: usize) -> (Vec<usize>, Vec<u32>) {
    let mut start = vec![0usize; user_rows + 1];
    for &u in user {
        start[u as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; user.len()];
    for (i, &u) in user.iter().enumerate() {
        order[next[u as usize]] = i as u32;
        next[u as usize] += 1;
    }
    (start, order)
}

/// (the elements where `is_test` is false, those where it is true), each in their original order.
fn partition<T: Copy>(xs: Vec<T>, is_test: &[bool]) -> (Vec<T>, Vec<T>) {
    let n_test = is_test.iter().filter(|&&t| t).count();
    let mut train = Vec::with_capacity(xs.len() - n_test);
    let mut test = Vec::with_capacity(n_test);
    for (x, &t) in xs.into_iter().zip(is_test) {
        if t {
            test.push(x);
        } else {
            train.push(x);
        }
    }
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_fifth_of_each_user_is_test() {
        // User 1: 6 ratings (1 to test: the latest, t=90); user 2: 10 ratings (2 to test: t=100 and
        // the later of the two t=50 ties, i.e. the one further down the file); user 3: 4 ratings (none).
        let user = [1, 2, 1, 1, 2, 2, 2, 2, 1, 3, 2, 2, 1, 2, 3, 3, 1, 2, 3, 2];
        let time = [
            5, 1, 90, 7, 2, 3, 50, 4, 8, 1, 5, 6, 9, 50, 2, 3, 10, 100, 4, 7,
        ];
        let mask = test_mask(&user, &time, 4);
        let test: Vec<usize> = (0..user.len()).filter(|&i| mask[i]).collect();
        assert_eq!(test, [2, 13, 17]);

        let cols = Columns {
            user: user.to_vec(),
            movie: (0..20).collect(),
            rating: (0..20).map(|i| i as f32).collect(),
            timestamp: time.to_vec(),
        };
        let (train, test) = temporal(cols, 4);
        assert_eq!(test.movie, [2, 13, 17]);
        assert_eq!(test.user, [1, 2, 2]);
        assert_eq!(train.len(), 17);
        assert!(
            train.movie.windows(2).all(|w| w[0] < w[1]),
            "file order kept"
        );
        assert_eq!(train.rating[0], 0.0);
    }

    /// Ratings of 4 users with 1, 2, 7 and 40 ratings, interleaved in file order.
    fn interleaved() -> Vec<u32> {
        let mut user = Vec::new();
        for i in 0..40 {
            for (u, n) in [(1, 1), (2, 2), (3, 7), (4, 40)] {
                if i < n {
                    user.push(u);
                }
            }
        }
        user
    }

    #[test]
    fn stratified_split_keeps_each_users_ratio_and_is_seeded() {
        let user = interleaved();
        let count = |mask: &[bool], u: u32, test: bool| {
            (0..user.len())
                .filter(|&i| user[i] == u && mask[i] == test)
                .count()
        };
        let mask = stratified_mask(&user, 5, 0.25, 7);
        // round(0.75 n) to training, halves to even: n = 1 -> 1, 2 -> 2 (1.5), 7 -> 5 (5.25), 40 -> 30.
        for (u, train, test) in [(1, 1, 0), (2, 2, 0), (3, 5, 2), (4, 30, 10)] {
            assert_eq!(
                (count(&mask, u, false), count(&mask, u, true)),
                (train, test),
                "user {u}"
            );
        }
        let mask_half = stratified_mask(&user, 5, 0.5, 7);
        // n = 7: round(3.5) = 4 (even).
        assert_eq!(count(&mask_half, 3, false), 4);
        assert_eq!(count(&mask_half, 4, true), 20);
        assert_eq!(stratified_mask(&user, 5, 0.25, 7), mask, "seeded");
        assert_ne!(
            stratified_mask(&user, 5, 0.25, 8),
            mask,
            "another seed, another split"
        );

        let cols = Columns {
            user: user.clone(),
            movie: (0..user.len() as u32).collect(),
            rating: vec![1.0; user.len()],
            timestamp: Vec::new(),
        };
        let (train, test) = stratified(cols, 5, 0.25, 7);
        assert_eq!((train.len(), test.len()), (38, 12));
        // Disjoint and complete (movie = file position), each in file order.
        let mut all: Vec<u32> = train.movie.iter().chain(&test.movie).copied().collect();
        assert!(train.movie.windows(2).all(|w| w[0] < w[1]));
        assert!(test.movie.windows(2).all(|w| w[0] < w[1]));
        all.sort_unstable();
        assert_eq!(all, (0..user.len() as u32).collect::<Vec<_>>());
        let want: Vec<u32> = (0..user.len() as u32)
            .filter(|&i| mask[i as usize])
            .collect();
        assert_eq!(test.movie, want);
    }

    #[test]
    fn random_folds_are_disjoint_cover_everything_and_are_seeded() {
        let n = 103;
        let masks: Vec<Vec<bool>> = (0..5).map(|i| fold_mask(n, 5, i, 3)).collect();
        for i in 0..n {
            assert_eq!(
                masks.iter().filter(|m| m[i]).count(),
                1,
                "rating {i} in one test fold"
            );
        }
        let sizes: Vec<usize> = masks
            .iter()
            .map(|m| m.iter().filter(|&&t| t).count())
            .collect();
        assert_eq!(sizes, [20, 21, 20, 21, 21]); // i * 103 / 5 boundaries: 0, 20, 41, 61, 82, 103
        assert_eq!(fold_mask(n, 5, 2, 3), masks[2]);
        assert_ne!(fold_mask(n, 5, 2, 4), masks[2]);

        let cols = Columns {
            user: vec![1; n],
            movie: (0..n as u32).collect(),
            rating: vec![1.0; n],
            timestamp: Vec::new(),
        };
        let (train, test) = fold(cols, 5, 1, 3);
        assert_eq!((train.len(), test.len()), (82, 21));
        assert!(test.movie.iter().all(|&m| masks[1][m as usize]));
        assert!(train.movie.iter().all(|&m| !masks[1][m as usize]));
    }
}
