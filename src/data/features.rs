//! Side features of users and movies for feature towers: parsed from `u.user` / `users.dat` and `u.item` /
//! `movies.dat` / `movies.csv` into one multi-hot field per feature, each with its own vocabulary (Keras
//! StringLookup order, row 0 out-of-vocabulary) and a CSR of the feature rows of every entity row; the
//! feature towers (`model::tower`) pool them.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::BufRead;
use std::path::Path;

use anyhow::Result;

use super::formats::{latin1, line_error, split_csv, Format, Lines};
use super::Vocabulary;

/// ML-100K's genres, in the order of u.item's 19 flags (u.genre).
pub const ML_100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// ML-1M's age groups (users.dat codes); ML-100K's ages in years fall into the same groups.
const AGE_GROUPS: [(u32, &str); 7] = [
    (1, "under 18"),
    (18, "18-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-49"),
    (50, "50-55"),
    (56, "56+"),
];

/// One feature: its vocabulary and, per entity row, the feature rows it holds (several for multi-hot
/// fields such as genres and title words, which a tower mean-pools).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub vocab: Vocabulary,
    /// (E + 1,) `ids[offsets[e]..offsets[e + 1]]` are entity row e's feature rows.
    pub offsets: Vec<u32>,
    /// Feature rows (1-based vocabulary indices), ascending within an entity.
    pub ids: Vec<u32>,
}

impl Field {
    /// The feature tokens of entity row `e`.
    pub fn tokens(&self, e: usize) -> Vec<&str> {
        let ids = &self.ids[self.offsets[e] as usize..self.offsets[e + 1] as usize];
        ids.iter().filter_map(|&i| self.vocab.token(i)).collect()
    }
}

/// The fields of one entity table (users or movies), rows as the model's vocabulary numbers them.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Entity rows, the OOV row 0 included (it and entities the file does not list have no features).
    pub rows: usize,
    pub fields: Vec<Field>,
}

impl Features {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What the backward of a mean-pooled field needs for one batch: the distinct feature rows the batch's
/// entities hold and, for each, the (output row, 1 / the entity's feature count) pairs that read it, in
/// output-row order (the inverse of the field's CSR over the batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PooledRows {
    /// (F,) distinct feature rows, ascending.
    pub table_rows: Vec<u32>,
    /// (F + 1,) CSR into the pairs.
    pub pair_offsets: Vec<u32>,
    /// (P,) output row of each pair.
    pub pair_rows: Vec<u32>,
    /// (P,) 1 / the feature count of that row's entity.
    pub pair_weights: Vec<f32>,
}

impl PooledRows {
    /// For output rows whose entities are `entity` (rows of `field`'s CSR).
    pub fn new(field: &Field, entity: &[u32]) -> Self {
        let mut pairs: Vec<(u32, u32, f32)> = Vec::new(); // (feature row, output row, weight)
        for (i, &e) in entity.iter().enumerate() {
            let mine = &field.ids
                [field.offsets[e as usize] as usize..field.offsets[e as usize + 1] as usize];
            let w = 1.0 / mine.len() as f32;
            pairs.extend(mine.iter().map(|&v| (v, i as u32, w)));
        }
        pairs.sort_by_key(|&(v, i, _)| (v, i));
        let mut p = PooledRows {
            pair_offsets: vec![0],
            ..Default::default()
        };
        for (v, i, w) in pairs {
            if p.table_rows.last() != Some(&v) {
                if !p.table_rows.is_empty() {
                    p.pair_offsets.push(p.pair_rows.len() as u32);
                }
                p.table_rows.push(v);
            }
            p.pair_rows.push(i);
            p.pair_weights.push(w);
        }
        if !p.table_rows.is_empty() {
            p.pair_offsets.push(p.pair_rows.len() as u32);
        }
        p
    }
}

/// Collects each entity row's tokens per field, then builds the vocabularies and CSRs.
struct Builder {
    names: Vec<&'static str>,
    /// (entity row, tokens per field)
    rows: HashMap<u32, Vec<Vec<String>>>,
}

impl Builder {
    fn new(names: &[&'static str]) -> Self {
        Self {
            names: names.to_vec(),
            rows: HashMap::new(),
        }
    }

    /// Records `row`'s tokens unless the row already has them (a duplicate title keeps its first row's).
    fn add(&mut self, row: u32, tokens: Vec<Vec<String>>) {
        debug_assert_eq!(tokens.len(), self.names.len());
        self.rows.entry(row).or_insert(tokens);
    }

    fn finish(self, rows: usize) -> Features {
        let fields = self
            .names
            .iter()
            .enumerate()
            .map(|(f, &name)| {
                let vocab = Vocabulary::from_values(
                    self.rows
                        .values()
                        .flat_map(|t| t[f].iter().map(String::as_str)),
                );
                let (mut offsets, mut ids) = (vec![0u32], Vec::new());
                for e in 0..rows {
                    let mut mine: Vec<u32> = self
                        .rows
                        .get(&(e as u32))
                        .map(|t| t[f].iter().map(|s| vocab.lookup(s)).collect())
                        .unwrap_or_default();
                    mine.sort_unstable();
                    mine.dedup();
                    ids.extend(mine);
                    offsets.push(ids.len() as u32);
                }
                Field {
                    name,
                    vocab,
                    offsets,
                    ids,
                }
            })
            .collect();
        Features { rows, fields }
    }
}

/// The users file of each format (the CSV releases have none).
pub fn users_file(format: Format) -> Option<&'static str> {
    match format {
        Format::Ml100k => Some("u.user"),
        Format::Ml1m => Some("users.dat"),
        Format::Csv => None,
    }
}

/// The side features of `data`'s users (with `users`; None: not asked, or its format has no users file)
/// and movies, read from the folder it was loaded from (the built-in sample: its movies file, no users).
pub fn load(data: &super::Dataset, users: bool) -> Result<(Option<Features>, Features)> {
    let Some((dir, format)) = &data.source else {
        let movies = read_movies(
            Format::Csv,
            Path::new("<built-in sample>/movies.csv"),
            super::SAMPLE_MOVIES,
            &data.titles,
        )?;
        return Ok((None, movies));
    };
    let users = match users_file(*format).filter(|_| users) {
        Some(name) => {
            let path = dir.join(name);
            let reader = super::formats::open(&path)?;
            Some(read_users(*format, &path, reader, &data.users)?)
        }
        None => None,
    };
    let path = dir.join(format.files().1);
    let movies = read_movies(*format, &path, super::formats::open(&path)?, &data.titles)?;
    Ok((users, movies))
}

/// The user fields: age group, gender, occupation, zip prefix (first two characters, upper-cased).
pub const USER_FIELDS: [&str; 4] = ["age", "gender", "occupation", "zip"];

/// Parses `u.user` (`id|age|gender|occupation|zip`, ages in years) or ML-1M's `users.dat`
/// (`id::gender::age code::occupation code::zip`) into [`USER_FIELDS`], rows numbered by `users` (the
/// ratings' user vocabulary; users it does not hold are skipped).
pub fn read_users(
    format: Format,
    path: &Path,
    reader: impl BufRead,
    users: &Vocabulary,
) -> Result<Features> {
    let mut lines = Lines::new(path, reader);
    let mut b = Builder::new(&USER_FIELDS);
    let mut seen = HashMap::new();
    while let Some((number, line)) = lines.next_line()? {
        let text = latin1(line);
        let err = |msg: &dyn Display| line_error(path, number, &text, msg);
        let (id, gender, age, occupation, zip) = match format {
            Format::Ml100k => {
                let f: Vec<&str> = text.split('|').collect();
                let [id, age, gender, occupation, zip] = f[..] else {
                    return Err(err(&format_args!(
                        "expected 5 '|'-separated fields (user id, age, gender, occupation, zip code), \
                         found {}",
                        f.len()
                    )));
                };
                let years: u32 = age
                    .parse()
                    .ok()
                    .filter(|y| (1..=120).contains(y))
                    .ok_or_else(|| {
                        err(&format_args!(
                            "age {age:?} is not a whole number of years in 1..=120"
                        ))
                    })?;
                let group = AGE_GROUPS
                    .iter()
                    .rev()
                    .find(|(from, _)| years >= *from)
                    .unwrap()
                    .1;
                (id, gender, group, occupation.to_string(), zip)
            }
            Format::Ml1m => {
                let f: Vec<&str> = text.split("::").collect();
                let [id, gender, age, occupation, zip] = f[..] else {
                    return Err(err(&format_args!(
                        "expected 5 '::'-separated fields (user id, gender, age, occupation, zip code), \
                         found {}",
                        f.len()
                    )));
                };
                let group = age
                    .parse::<u32>()
                    .ok()
                    .and_then(|code| AGE_GROUPS.iter().find(|(c, _)| *c == code))
                    .ok_or_else(|| {
                        err(&format_args!(
                            "age {age:?} is not one of ML-1M's age codes 1, 18, 25, 35, 45, 50, 56"
                        ))
                    })?
                    .1;
                let occupation = occupation
                    .parse::<u32>()
                    .ok()
                    .filter(|&o| o <= 20)
                    .ok_or_else(|| {
                        err(&format_args!(
                            "occupation {occupation:?} is not a code in 0..=20"
                        ))
                    })?;
                (id, gender, group, occupation.to_string(), zip)
            }
            Format::Csv => return Err(err(&"ml-latest and ML-20M/25M have no user file")),
        };
        if !matches!(gender, "M" | "F") {
            return Err(err(&format_args!("gender {gender:?} is not M or F")));
        }
        if occupation.trim().is_empty() {
            return Err(err(&"the occupation is empty"));
        }
        let zip = zip.trim();
        if zip.is_empty() {
            return Err(err(&"the zip code is empty"));
        }
        if id.parse::<u32>().is_err() {
            return Err(err(&format_args!("user id {id:?} is not a whole number")));
        }
        if let Some(first) = seen.insert(id.to_string(), number) {
            return Err(err(&format_args!(
                "user id {id} appears more than once (first on line {first})"
            )));
        }
        let row = users.lookup(id);
        if row == 0 {
            continue; // no ratings: the model has no row for this user
        }
        let prefix: String = zip.chars().take(2).collect::<String>().to_uppercase();
        b.add(
            row,
            vec![
                vec![age.to_string()],
                vec![gender.to_string()],
                vec![occupation],
                vec![prefix],
            ],
        );
    }
    Ok(b.finish(users.rows()))
}

/// The movie fields: genres (multi-hot), release decade ("1990s"), title words (multi-hot, lower-case
/// letters and digits, the "(year)" suffix left out).
pub const MOVIE_FIELDS: [&str; 3] = ["genres", "decade", "title_words"];

/// The decade of `year`, e.g. "1990s".
fn decade(year: u32) -> String {
    format!("{}s", year / 10 * 10)
}

/// The year in a title's "(1995)" suffix.
fn title_year(title: &str) -> Option<u32> {
    let t = title.trim_end();
    let inner = t.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let y = &inner[open + 1..];
    (y.len() == 4).then(|| y.parse().ok()).flatten()
}

/// The title's words: lower-case runs of letters and digits, without the "(year)" suffix.
pub fn title_words(title: &str) -> Vec<String> {
    let t = title.trim_end();
    let body = match (title_year(t), t.rfind('(')) {
        (Some(_), Some(open)) => &t[..open],
        _ => t,
    };
    body.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Parses `u.item` (19 genre flags, release date `01-Jan-1995`), `movies.dat` or `movies.csv` (genres
/// `A|B`, year from the title) into [`MOVIE_FIELDS`], rows numbered by `titles` (duplicate titles keep the
/// first row's features).
pub fn read_movies(
    format: Format,
    path: &Path,
    reader: impl BufRead,
    titles: &Vocabulary,
) -> Result<Features> {
    let mut lines = Lines::new(path, reader);
    let mut b = Builder::new(&MOVIE_FIELDS);
    let mut header: Option<(usize, usize, usize, usize)> = None;
    while let Some((number, line)) = lines.next_line()? {
        let text = match format {
            Format::Ml100k | Format::Ml1m => latin1(line),
            Format::Csv => match std::str::from_utf8(line) {
                Ok(t) => t.to_owned(),
                Err(_) => {
                    let lossy = String::from_utf8_lossy(line);
                    return Err(line_error(path, number, &lossy, &"not valid UTF-8"));
                }
            },
        };
        let err = |msg: &dyn Display| line_error(path, number, &text, msg);
        let (title, genres, year) = match format {
            Format::Ml100k => {
                let f: Vec<&str> = text.split('|').collect();
                if f.len() != 5 + ML_100K_GENRES.len() {
                    return Err(err(&format_args!(
                        "expected 24 '|'-separated fields (movie id, title, release date, video release \
                         date, URL, 19 genre flags), found {}",
                        f.len()
                    )));
                }
                let mut genres = Vec::new();
                for (flag, name) in f[5..].iter().zip(ML_100K_GENRES) {
                    match *flag {
                        "1" => genres.push(name.to_string()),
                        "0" => {}
                        other => {
                            return Err(err(&format_args!(
                                "genre flag {name} is {other:?}, not 0 or 1"
                            )))
                        }
                    }
                }
                let date = f[2].trim();
                let year = if date.is_empty() {
                    title_year(f[1])
                } else {
                    let y = date.rsplit('-').next().and_then(|y| y.parse::<u32>().ok());
                    match y.filter(|y| (1800..=2100).contains(y)) {
                        Some(y) => Some(y),
                        None => {
                            return Err(err(&format_args!(
                                "release date {date:?} is not a date like 01-Jan-1995"
                            )))
                        }
                    }
                };
                (f[1].to_string(), genres, year)
            }
            Format::Ml1m => {
                let f: Vec<&str> = text.split("::").collect();
                let [_, title, genres] = f[..] else {
                    return Err(err(&format_args!(
                        "expected 3 '::'-separated fields (movie id, title, genres), found {}",
                        f.len()
                    )));
                };
                (title.to_string(), split_genres(genres), title_year(title))
            }
            Format::Csv => {
                let body = match header {
                    None => text.strip_prefix('\u{feff}').unwrap_or(&text),
                    Some(_) => &text,
                };
                let fields = split_csv(body).map_err(|e| err(&e))?;
                let Some((n, _, title_col, genres_col)) = header else {
                    let col = |name: &str| {
                        fields
                            .iter()
                            .position(|f| f == name)
                            .ok_or_else(|| err(&format_args!("the header has no {name} column")))
                    };
                    header = Some((fields.len(), col("movieId")?, col("title")?, col("genres")?));
                    continue;
                };
                if fields.len() != n {
                    return Err(err(&format_args!(
                        "expected {n} comma-separated fields as in the header, found {}",
                        fields.len()
                    )));
                }
                let title = fields[title_col].clone();
                let year = title_year(&title);
                (title, split_genres(&fields[genres_col]), year)
            }
        };
        let row = titles.lookup(&title);
        if row == 0 {
            return Err(err(&format_args!(
                "title {title:?} is not in the model's titles"
            )));
        }
        b.add(
            row,
            vec![
                genres,
                year.map(decade).into_iter().collect(),
                title_words(&title),
            ],
        );
    }
    Ok(b.finish(titles.rows()))
}

/// `A|B|C` genres; "(no genres listed)" (ml-latest) is none.
fn split_genres(genres: &str) -> Vec<String> {
    genres
        .split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_of(format: Format, text: &str, ids: &[&str]) -> Result<Features> {
        let vocab = Vocabulary::from_values(ids.iter().copied());
        read_users(format, Path::new("u.user"), text.as_bytes(), &vocab)
    }

    #[test]
    fn every_user_field_of_u_user_and_users_dat() {
        let text = "1|24|M|technician|85711\n2|53|F|other|94043\n3|7|M|student|T8H1N\n9|30|F|x|1\n";
        let f = users_of(Format::Ml100k, text, &["1", "2", "3"]).unwrap();
        assert_eq!(f.rows, 4);
        let row = |id: u32| -> Vec<Vec<&str>> {
            f.fields.iter().map(|x| x.tokens(id as usize)).collect()
        };
        // Vocabulary rows: "1" -> 1, "2" -> 2, "3" -> 3; user 9 has no ratings and is skipped.
        assert_eq!(row(1), [["18-24"], ["M"], ["technician"], ["85"]]);
        assert_eq!(row(2), [["50-55"], ["F"], ["other"], ["94"]]);
        assert_eq!(row(3), [["under 18"], ["M"], ["student"], ["T8"]]);
        assert!(
            row(0).iter().all(|t| t.is_empty()),
            "the OOV row has no features"
        );
        assert_eq!(
            f.field("occupation").unwrap().vocab.tokens,
            ["other", "student", "technician"]
        );

        let dat = "1::F::1::10::48067\n2::M::56::16::70072\n";
        let f = users_of(Format::Ml1m, dat, &["1", "2"]).unwrap();
        let row = |e: usize| -> Vec<Vec<&str>> { f.fields.iter().map(|x| x.tokens(e)).collect() };
        assert_eq!(row(1), [["under 18"], ["F"], ["10"], ["48"]]);
        assert_eq!(row(2), [["56+"], ["M"], ["16"], ["70"]]);
    }

    #[test]
    fn bad_user_values_name_the_file_and_line() {
        for (format, text, says) in [
            (
                Format::Ml100k,
                "1|24|M|x|1\n2|abc|F|x|1\n",
                "u.user:2: age \"abc\" is not a whole number",
            ),
            (
                Format::Ml100k,
                "1|24|X|x|1\n",
                "u.user:1: gender \"X\" is not M or F",
            ),
            (
                Format::Ml100k,
                "1|24|M|x\n",
                "u.user:1: expected 5 '|'-separated fields",
            ),
            (
                Format::Ml100k,
                "1|24|M|x|1\n1|25|F|y|2\n",
                "u.user:2: user id 1 appears more than once",
            ),
            (
                Format::Ml100k,
                "1|24|M||1\n",
                "u.user:1: the occupation is empty",
            ),
            (
                Format::Ml1m,
                "1::F::17::10::48067\n",
                "u.user:1: age \"17\" is not one of ML-1M's age codes",
            ),
            (
                Format::Ml1m,
                "1::F::18::21::48067\n",
                "u.user:1: occupation \"21\" is not a code in 0..=20",
            ),
            (
                Format::Ml1m,
                "1::F::18::2\n",
                "u.user:1: expected 5 '::'-separated fields",
            ),
        ] {
            let msg = format!("{:#}", users_of(format, text, &["1", "2"]).unwrap_err());
            assert!(msg.contains(says), "{msg}");
        }
    }

    fn movies_of(format: Format, text: &str) -> Result<Features> {
        let titles = Vocabulary::from_values([
            "Toy Story (1995)",
            "GoldenEye (1995)",
            "unknown",
            "Heat (1995)",
        ]);
        read_movies(format, Path::new("movies"), text.as_bytes(), &titles)
    }

    #[test]
    fn every_movie_field_of_u_item_movies_dat_and_movies_csv() {
        let flags = |on: &[usize]| -> String {
            (0..19)
                .map(|g| if on.contains(&g) { "|1" } else { "|0" })
                .collect()
        };
        let item = format!(
            "1|Toy Story (1995)|01-Jan-1995||http://x{}\n267|unknown|||{}\n2|GoldenEye (1995)|01-Jan-1994||u{}\n",
            flags(&[3, 4, 5]),
            flags(&[0]),
            flags(&[1, 2, 16]),
        );
        let f = movies_of(Format::Ml100k, &item).unwrap();
        let titles = Vocabulary::from_values([
            "Toy Story (1995)",
            "GoldenEye (1995)",
            "unknown",
            "Heat (1995)",
        ]);
        let row = |t: &str| -> Vec<Vec<&str>> {
            f.fields
                .iter()
                .map(|x| x.tokens(titles.lookup(t) as usize))
                .collect()
        };
        assert_eq!(
            row("Toy Story (1995)"),
            [
                vec!["Animation", "Children's", "Comedy"],
                vec!["1990s"],
                vec!["story", "toy"]
            ]
        );
        // The release date's year wins over the title's.
        assert_eq!(
            row("GoldenEye (1995)"),
            [
                vec!["Action", "Adventure", "Thriller"],
                vec!["1990s"],
                vec!["goldeneye"]
            ]
        );
        assert_eq!(row("unknown"), [vec!["unknown"], vec![], vec!["unknown"]]);
        assert!(
            row("Heat (1995)").iter().all(|t| t.is_empty()),
            "not in the file: no features"
        );

        let dat = "1::Toy Story (1995)::Animation|Children's|Comedy\n6::Heat (1995)::Action|Crime|Thriller\n";
        let f = movies_of(Format::Ml1m, dat).unwrap();
        let heat = titles.lookup("Heat (1995)") as usize;
        assert_eq!(f.fields[0].tokens(heat), ["Action", "Crime", "Thriller"]);
        assert_eq!(f.fields[1].tokens(heat), ["1990s"]);
        assert_eq!(f.fields[2].tokens(heat), ["heat"]);

        let csv = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n\
                   2,\"GoldenEye (1995)\",(no genres listed)\n";
        let f = movies_of(Format::Csv, csv).unwrap();
        let golden = titles.lookup("GoldenEye (1995)") as usize;
        assert!(f.fields[0].tokens(golden).is_empty());
        assert_eq!(f.fields[1].tokens(golden), ["1990s"]);
        assert_eq!(
            f.field("genres").unwrap().vocab.tokens,
            ["Adventure", "Animation"]
        );
    }

    #[test]
    fn bad_movie_values_name_the_file_and_line() {
        let ok = format!("1|Toy Story (1995)|01-Jan-1995||u{}", "|0".repeat(19));
        for (format, text, says) in [
            (
                Format::Ml100k,
                format!("{ok}\n2|GoldenEye (1995)|x||u{}\n", "|0".repeat(19)),
                "movies:2: release date \"x\"",
            ),
            (
                Format::Ml100k,
                format!("1|Toy Story (1995)|01-Jan-1995||u{}|2\n", "|0".repeat(18)),
                "movies:1: genre flag Western is \"2\"",
            ),
            (
                Format::Ml100k,
                "1|Toy Story (1995)|x\n".to_string(),
                "movies:1: expected 24 '|'-separated fields",
            ),
            (
                Format::Ml100k,
                format!("1|Nope (1990)|01-Jan-1990||u{}\n", "|0".repeat(19)),
                "movies:1: title \"Nope (1990)\" is not in the model's titles",
            ),
            (
                Format::Ml1m,
                "1::Toy Story (1995)\n".to_string(),
                "movies:1: expected 3 '::'-separated fields",
            ),
            (
                Format::Csv,
                "movieId,name,genres\n".to_string(),
                "movies:1: the header has no title column",
            ),
            (
                Format::Csv,
                "movieId,title,genres\n1,Toy Story (1995)\n".to_string(),
                "movies:2: expected 3 comma-separated",
            ),
        ] {
            let msg = format!("{:#}", movies_of(format, &text).unwrap_err());
            assert!(msg.contains(says), "{says}: {msg}");
        }
    }

    #[test]
    fn title_words_and_years() {
        assert_eq!(title_words("Star Wars (1977)"), ["star", "wars"]);
        assert_eq!(title_words("Misérables, Les (1995)"), ["misérables", "les"]);
        assert_eq!(
            title_words("City of Lost Children, The (1995)"),
            ["city", "of", "lost", "children", "the"]
        );
        assert_eq!(title_words("unknown"), ["unknown"]);
        assert_eq!(
            title_words("2001: A Space Odyssey (1968)"),
            ["2001", "a", "space", "odyssey"]
        );
        assert_eq!(title_year("Heat (1995) "), Some(1995));
        assert_eq!(title_year("Heat (x995)"), None);
        assert_eq!(decade(1968), "1960s");
    }
}
