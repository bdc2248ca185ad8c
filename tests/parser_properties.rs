//! Property tests (proptest) over the MovieLens parsers: arbitrary bytes never panic and errors name the
//! file and line; well-formed files in every format parse back to what was written; CSV quoting round
//! trips; the temporal split holds out exactly each user's latest fifth.

use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use wgrec::data::formats::{self, Format, Lines, Users};
use wgrec::data::split::test_mask;

fn movie_map() -> HashMap<u32, u32> {
    (1..=20).map(|id| (id, id % 7 + 1)).collect()
}

fn parse_ratings(format: Format, bytes: &[u8]) -> anyhow::Result<(formats::Columns, Users)> {
    let mut users = Users::default();
    let cols = formats::read_ratings(
        format,
        Path::new("r.txt"),
        bytes,
        bytes.len() as u64,
        &movie_map(),
        "m.txt",
        &mut users,
        true,
    )?;
    Ok((cols, users))
}

/// Bytes that look like MovieLens lines often enough to get past the first checks.
fn noisy_lines() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"1".to_vec()),
        Just(b"20".to_vec()),
        Just(b"4.5".to_vec()),
        Just(b"NaN".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"::".to_vec()),
        Just(b",".to_vec()),
        Just(b"|".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"userId,movieId,rating,timestamp\n".to_vec()),
        Just(b"movieId,title,genres\n".to_vec()),
        Just(vec![0xE9]),
        Just(vec![0xFF]),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn any_format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Ml100k), Just(Format::Ml1m), Just(Format::Csv)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(format in any_format(), bytes in noisy_lines()) {
        if let Err(e) = parse_ratings(format, &bytes) {
            prop_assert!(format!("{e:#}").starts_with("r.txt:"), "{e:#}");
        }
        if let Err(e) = formats::read_movies(format, Path::new("m.txt"), &bytes[..]) {
            prop_assert!(format!("{e:#}").starts_with("m.txt:"), "{e:#}");
        }
    }

    #[test]
    fn lines_match_a_plain_split(bytes in noisy_lines()) {
        let mut lines = Lines::new(Path::new("x"), &bytes[..]);
        let mut got = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            got.push((n, line.to_vec()));
        }
        let want: Vec<(usize, Vec<u8>)> = bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l).to_vec()))
            .filter(|(_, l)| !l.trim_ascii().is_empty())
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn csv_quoting_round_trips(fields in proptest::collection::vec("[a-z ,\"é]{0,6}", 1..6)) {
        let line: Vec<String> = fields
            .iter()
            .map(|f| {
                if f.contains([',', '"']) || f.starts_with('"') {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect();
        prop_assert_eq!(formats::split_csv(&line.join(",")).unwrap(), fields);
    }

    #[test]
    fn well_formed_ratings_parse_back(
        format in any_format(),
        rows in proptest::collection::vec((0u32..1000, 1u32..=20, 0u32..=10, 0i64..2_000_000_000), 1..60),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if format == Format::Csv {
            text += &format!("userId,movieId,rating,timestamp{eol}");
        }
        for &(u, m, halves, t) in &rows {
            let r = f64::from(halves) / 2.0;
            text += &match format {
                Format::Ml100k => format!("{u}\t{m}\t{r}\t{t}{eol}"),
                Format::Ml1m => format!("{u}::{m}::{r}::{t}{eol}"),
                Format::Csv => format!("{u},{m},{r:.1},{t}{eol}"),
            };
        }
        let (cols, users) = parse_ratings(format, text.as_bytes()).unwrap();
        let vocab = users.vocabulary();
        let remap = users.remap(&vocab);
        prop_assert_eq!(cols.len(), rows.len());
        for (i, &(u, m, halves, t)) in rows.iter().enumerate() {
            let name = u.to_string();
            prop_assert_eq!(vocab.token(remap[cols.user[i] as usize]), Some(name.as_str()));
            prop_assert_eq!(cols.movie[i], movie_map()[&m]);
            prop_assert_eq!(cols.rating[i], halves as f32 / 2.0);
            prop_assert_eq!(cols.timestamp[i], t);
        }
    }

    #[test]
    fn temporal_mask_holds_out_each_users_latest_fifth(
        rows in proptest::collection::vec((1u32..6, 0i64..50), 0..200),
    ) {
        let user: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let time: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let mask = test_mask(&user, &time, 6);
        for u in 1..6 {
            let mine: Vec<usize> = (0..rows.len()).filter(|&i| user[i] == u).collect();
            let test: Vec<usize> = mine.iter().copied().filter(|&i| mask[i]).collect();
            prop_assert_eq!(test.len(), mine.len() / 5);
            let latest_train = mine.iter().filter(|&&i| !mask[i]).map(|&i| time[i]).max();
            for &i in &test {
                prop_assert!(latest_train.is_none_or(|t| time[i] >= t));
            }
        }
    }
}
