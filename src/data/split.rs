//! The per-user temporal split: each user's latest ratings are the test set, so no model is
//! evaluated on ratings older than the ones it trained on (the random split leaks the future).

use super::formats::Columns;
use super::Ratings;

/// Splits `all` (users already vocabulary indices below `user_rows`, timestamps kept): for each user,
/// the latest `n / 5` (rounded down) of their `n` ratings by timestamp, ties broken by file order, go
/// to the test set; users with fewer than 5 ratings are only in training. Both sets keep file order.
///
/// Memory: a counting sort by user (4 bytes per rating) and a mask (1 byte per rating) on top of
/// the columns, which are moved into the two sets one at a time.
pub fn temporal(all: Columns, user_rows: usize) -> (Ratings, Ratings) {
    let is_test = test_mask(&all.user, &all.timestamp, user_rows);
    let Columns {
        user,
        movie,
        rating,
        timestamp,
    } = all;
    drop(timestamp);
    let (train_user, test_user) = partition(user, &is_test);
    let (train_movie, test_movie) = partition(movie, &is_test);
    let (train_rating, test_rating) = partition(rating, &is_test);
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
    // Counting sort of the rating indices by user; indices stay in file order within a user.
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
    drop(next);
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
}
