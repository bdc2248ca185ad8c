//! Shared by the targets: feed one input to a format's movies parser and its ratings parser.

use std::collections::HashMap;
use std::path::Path;
use wgrec::data::formats::{read_movies, read_ratings, Format, Users};

/// Parses `data` as a movies file and as a ratings file of `format`; the ratings see the movies the
/// input itself defines when it parses as a movies file, else ids 1-20. Errors are fine, panics not;
/// an error must name the file.
pub fn parse_both(format: Format, data: &[u8]) {
    let movie_of = match read_movies(format, Path::new("movies"), data) {
        Ok(m) => {
            assert_eq!(m.candidates.len(), m.movie_of.len());
            m.movie_of
        }
        Err(e) => {
            assert!(format!("{e:#}").starts_with("movies:"), "{e:#}");
            (1..=20).map(|id| (id, id % 5 + 1)).collect::<HashMap<u32, u32>>()
        }
    };
    let mut users = Users::default();
    match read_ratings(
        format,
        Path::new("ratings"),
        data,
        data.len() as u64,
        &movie_of,
        "movies",
        &mut users,
        true,
    ) {
        Ok(cols) => {
            assert!(!cols.is_empty());
            assert_eq!(cols.timestamp.len(), cols.len());
            assert!(cols.rating.iter().all(|r| (0.0..=5.0).contains(r)));
            assert!(cols.user.iter().all(|&u| (u as usize) < users.len()));
        }
        Err(e) => assert!(format!("{e:#}").starts_with("ratings:"), "{e:#}"),
    }
}
