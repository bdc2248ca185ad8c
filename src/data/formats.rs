//! The MovieLens file formats: detecting which one a directory holds and streaming parsers for its
//! movies and ratings files. Every parser reads line by line with a bounded line length, so memory
//! grows with the number of ratings (12 bytes each, 20 with timestamps), never with the file size, and
//! every malformed line is one error naming the file, the line number and the line.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::BufRead;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::Vocabulary;

/// Lines quoted in error messages are cut to this many characters.
const MAX_SHOWN_CHARS: usize = 200;
/// No MovieLens line comes near this; longer lines are rejected before they fill memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The MovieLens layouts wgrec reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ML-100K: `u.data` (user, item, rating, timestamp; tab-separated) and `u.item` (`|`-separated,
    /// Latin-1).
    Ml100k,
    /// ML-1M: `ratings.dat` and `movies.dat`, `::`-separated, Latin-1.
    Ml1m,
    /// ml-latest(-small), ML-20M, ML-25M: `ratings.csv` and `movies.csv`, UTF-8 CSV with a header,
    /// quoted titles, half-star ratings.
    Csv,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Ml100k, Format::Ml1m, Format::Csv];

    /// (ratings file, movies file).
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Format::Ml100k => ("u.data", "u.item"),
            Format::Ml1m => ("ratings.dat", "movies.dat"),
            Format::Csv => ("ratings.csv", "movies.csv"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Ml100k => "ml-100k",
            Format::Ml1m => "ml-1m",
            Format::Csv => "MovieLens CSV (ml-latest, ML-20M, ML-25M)",
        }
    }

    /// The file-name word for movie ids in ratings (u.data calls them items).
    fn item_word(self) -> &'static str {
        match self {
            Format::Ml100k => "item",
            _ => "movie",
        }
    }
}

/// Why [`detect`] found no format.
#[derive(Debug)]
pub enum NotFound {
    /// Nothing usable here; look elsewhere.
    Missing(String),
    /// A data file name exists but is not a regular file (a directory, say): an error, not a miss.
    Broken(String),
}

/// Which format `dir` holds, or why it holds none.
pub fn detect(dir: &Path) -> std::result::Result<Format, NotFound> {
    if !dir.is_dir() {
        return Err(NotFound::Missing(if dir.exists() {
            "not a directory".into()
        } else {
            "no such directory".into()
        }));
    }
    let mut partial = Vec::new();
    for format in Format::ALL {
        let (ratings, movies) = format.files();
        let state = |f: &str| {
            let p = dir.join(f);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => Ok(true),
                Ok(_) => Err(NotFound::Broken(format!(
                    "{} is not a regular file",
                    p.display()
                ))),
                // A name that exists but cannot be followed (a dangling link, a loop) is not a miss.
                Err(e) => match std::fs::symlink_metadata(&p) {
                    Ok(_) => Err(NotFound::Broken(format!(
                        "{} is a symbolic link that cannot be followed: {e}",
                        p.display()
                    ))),
                    Err(_) => Ok(false),
                },
            }
        };
        match (state(ratings)?, state(movies)?) {
            (true, true) => return Ok(format),
            (false, false) => {}
            (true, false) => partial.push(format!("{ratings} but no {movies}")),
            (false, true) => partial.push(format!("{movies} but no {ratings}")),
        }
    }
    Err(NotFound::Missing(if partial.is_empty() {
        // The ML-100K wording first: it is the format most people look for.
        "no u.data or u.item".into()
    } else {
        partial.join("; ")
    }))
}

/// Checks that `path` is a regular file before it is opened (a directory opens fine on Unix and only
/// fails on the first read, with a less helpful message).
pub fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{}: is not a regular file (a directory?)", path.display());
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Non-blank lines with their 1-based numbers, read with a bounded buffer; a trailing '\r' is dropped.
pub struct Lines<'p, R> {
    reader: R,
    path: &'p Path,
    buf: Vec<u8>,
    number: usize,
}

impl<'p, R: BufRead> Lines<'p, R> {
    pub fn new(path: &'p Path, reader: R) -> Self {
        Self {
            reader,
            path,
            buf: Vec::new(),
            number: 0,
        }
    }

    /// The next non-blank line, `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
        loop {
            self.buf.clear();
            self.number += 1;
            let mut at_eof = false;
            loop {
                let avail = self.reader.fill_buf().with_context(|| {
                    format!("{}:{}: reading failed", self.path.display(), self.number)
                })?;
                if avail.is_empty() {
                    at_eof = true;
                    break;
                }
                let newline = avail.iter().position(|&b| b == b'\n');
                let take = newline.unwrap_or(avail.len());
                if self.buf.len() + take > MAX_LINE_BYTES {
                    bail!(
                        "{}:{}: line longer than {MAX_LINE_BYTES} bytes (not a MovieLens file?)",
                        self.path.display(),
                        self.number
                    );
                }
                self.buf.extend_from_slice(&avail[..take]);
                match newline {
                    Some(i) => {
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let n = avail.len();
                        self.reader.consume(n);
                    }
                }
            }
            if at_eof && self.buf.is_empty() {
                return Ok(None);
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if !self.buf.trim_ascii().is_empty() {
                return Ok(Some((self.number, &self.buf)));
            }
            if at_eof {
                return Ok(None);
            }
        }
    }
}

/// `path:line: msg: "text"`, with the quoted text cut to [`MAX_SHOWN_CHARS`].
pub fn line_error(path: &Path, number: usize, text: &str, msg: &dyn Display) -> anyhow::Error {
    let shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    let more = if shown.len() < text.len() { "..." } else { "" };
    anyhow!("{}:{number}: {msg}: {shown:?}{more}", path.display())
}

/// Latin-1 maps each byte to the code point of the same value.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Splits one CSV record (RFC 4180: fields may be quoted, `""` is a quote inside quotes). Quoted fields
/// spanning lines do not occur in MovieLens and are reported as an unterminated quote.
pub fn split_csv(line: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field"),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text after a closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("quote inside an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// The movies file, reduced to what the model needs.
#[derive(Clone, Debug)]
pub struct Movies {
    /// Unique titles, Keras StringLookup order.
    pub titles: Vocabulary,
    /// Title index of every movie row, in file order (duplicate titles kept): the retrieval candidates.
    pub candidates: Vec<u32>,
    /// Movie id -> title index, so duplicate titles share one embedding row.
    pub movie_of: HashMap<u32, u32>,
}

/// Parses a movies file (`u.item`, `movies.dat` or `movies.csv`) into ids and titles.
pub fn read_movies(format: Format, path: &Path, reader: impl BufRead) -> Result<Movies> {
    let mut lines = Lines::new(path, reader);
    let mut rows: Vec<(u32, String)> = Vec::new();
    let mut seen = HashMap::new();
    let mut header: Option<(Vec<String>, usize, usize)> = None;
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
        let (id, title) = match format {
            Format::Ml100k => {
                let mut fields = text.split('|');
                match (fields.next(), fields.next()) {
                    (Some(id), Some(title)) => (id.to_owned(), title.to_owned()),
                    _ => return Err(err(&"expected '|'-separated fields (movie id, title, ...)")),
                }
            }
            Format::Ml1m => {
                let fields: Vec<&str> = text.split("::").collect();
                let [id, title, _genres] = fields[..] else {
                    return Err(err(&format_args!(
                        "expected 3 '::'-separated fields (movie id, title, genres), found {}",
                        fields.len()
                    )));
                };
                (id.to_owned(), title.to_owned())
            }
            Format::Csv => {
                // A byte-order mark before the header (spreadsheet exports write one) is not data.
                let body = match header {
                    None => text.strip_prefix('\u{feff}').unwrap_or(&text),
                    Some(_) => &text,
                };
                let fields = split_csv(body).map_err(|e| err(&e))?;
                let Some((names, id_col, title_col)) = &header else {
                    let (id_col, title_col) = header_columns(&fields, &["movieId", "title"])
                        .map_err(|e| err(&e))
                        .map(|c| (c[0], c[1]))?;
                    header = Some((fields, id_col, title_col));
                    continue;
                };
                if &fields == names {
                    return Err(err(&"the header appears again"));
                }
                if fields.len() != names.len() {
                    return Err(err(&format_args!(
                        "expected {} comma-separated fields as in the header, found {}",
                        names.len(),
                        fields.len()
                    )));
                }
                (fields[*id_col].clone(), fields[*title_col].clone())
            }
        };
        let id: u32 = id
            .parse()
            .map_err(|_| err(&format_args!("movie id {id:?} is not a whole number")))?;
        if seen.insert(id, number).is_some() {
            return Err(err(&format_args!("movie id {id} appears more than once")));
        }
        rows.push((id, title));
    }
    if rows.is_empty() {
        bail!(
            "{}:{}: no movies in the file{}",
            path.display(),
            lines.number,
            if header.is_some() {
                " (only a header)"
            } else {
                ""
            }
        );
    }
    let titles = Vocabulary::from_values(rows.iter().map(|(_, title)| title.as_str()));
    let candidates: Vec<u32> = rows.iter().map(|(_, title)| titles.lookup(title)).collect();
    let movie_of = rows
        .iter()
        .map(|(id, _)| *id)
        .zip(candidates.iter().copied())
        .collect();
    Ok(Movies {
        titles,
        candidates,
        movie_of,
    })
}

/// Positions of the `wanted` columns in a CSV header; a name given twice or missing is an error.
fn header_columns(fields: &[String], wanted: &[&str]) -> std::result::Result<Vec<usize>, String> {
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].contains(f) {
            return Err(format!("column {f:?} appears twice in the header"));
        }
    }
    wanted
        .iter()
        .map(|w| {
            fields.iter().position(|f| f == w).ok_or_else(|| {
                format!(
                    "expected a header naming the columns {}; no column {w:?}",
                    wanted.join(", ")
                )
            })
        })
        .collect()
}

/// User ids as written in the file, interned to dense provisional ids in order of first appearance.
#[derive(Debug, Default)]
pub struct Users {
    ids: HashMap<Box<str>, u32>,
    /// Provisional id by numeric value, for ids written canonically (no leading zeros) below
    /// [`DENSE_LIMIT`]: MovieLens ids are, and a table lookup is much cheaper than hashing a string.
    by_number: Vec<u32>,
    names: Vec<Box<str>>,
}

/// Ids below this use direct tables (at most 64 MiB) instead of hash maps.
const DENSE_LIMIT: u32 = 1 << 24;
const NONE: u32 = u32::MAX;

/// Whether a direct table reaching id `max` is worth it for `count` ids: MovieLens ids are dense
/// (ML-25M: movie ids up to 209,171 for 62,423 movies), adversarial ones need not be.
fn dense_ok(max: u32, count: usize) -> bool {
    (max as usize) < 4096 + 64 * count
}

impl Users {
    /// `name` is non-empty ASCII digits (checked by the caller).
    fn intern(&mut self, name: &str) -> u32 {
        let canonical = name.len() == 1 || !name.starts_with('0');
        match name.parse::<u32>() {
            // The table grows with the ids seen so far, so one huge id in a small file cannot make it
            // large (memory stays proportional to the data).
            Ok(n) if canonical && n < DENSE_LIMIT && dense_ok(n, self.names.len()) => {
                let n = n as usize;
                if n >= self.by_number.len() {
                    self.by_number.resize((n + 1).next_power_of_two(), NONE);
                }
                if self.by_number[n] == NONE {
                    // It may have gone through the map while the table was still too small for it.
                    self.by_number[n] = match self.ids.get(name) {
                        Some(&id) => id,
                        None => self.push(name),
                    };
                }
                self.by_number[n]
            }
            _ => match self.ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.push(name);
                    self.ids.insert(name.into(), id);
                    id
                }
            },
        }
    }

    fn push(&mut self, name: &str) -> u32 {
        let id = self.names.len() as u32;
        self.names.push(name.into());
        id
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The user vocabulary (Keras order) of every interned id.
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary::from_values(self.names.iter().map(|n| &**n))
    }

    /// Provisional id -> index in `vocab` (0 when absent).
    pub fn remap(&self, vocab: &Vocabulary) -> Vec<u32> {
        self.names.iter().map(|n| vocab.lookup(n)).collect()
    }
}

/// Ratings as parallel columns; `user` holds provisional ids from [`Users`] until remapped.
#[derive(Debug, Default)]
pub struct Columns {
    pub user: Vec<u32>,
    pub movie: Vec<u32>,
    pub rating: Vec<f32>,
    /// Only kept when asked for (the temporal split needs it).
    pub timestamp: Vec<i64>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

/// Movie id -> title index: a table when the ids are small (they are in MovieLens), else the map.
enum TitleOf<'a> {
    Dense(Vec<u32>),
    Map(&'a HashMap<u32, u32>),
}

impl<'a> TitleOf<'a> {
    fn new(movie_of: &'a HashMap<u32, u32>) -> Self {
        match movie_of.keys().max() {
            Some(&max) if max < DENSE_LIMIT && dense_ok(max, movie_of.len()) => {
                let mut table = vec![NONE; max as usize + 1];
                for (&id, &title) in movie_of {
                    table[id as usize] = title;
                }
                TitleOf::Dense(table)
            }
            _ => TitleOf::Map(movie_of),
        }
    }

    fn get(&self, id: u32) -> Option<u32> {
        match self {
            TitleOf::Dense(table) => table.get(id as usize).copied().filter(|&t| t != NONE),
            TitleOf::Map(map) => map.get(&id).copied(),
        }
    }
}

/// Streams a ratings file (`u.data`, `ratings.dat`, `ratings.csv`), mapping movie ids to title indices
/// through `movie_of` (named `movies_file` in errors) and interning users in `users`. `size_hint` (the
/// file length, if known) reserves the columns up front so they do not grow by copying.
#[allow(clippy::too_many_arguments)]
pub fn read_ratings(
    format: Format,
    path: &Path,
    reader: impl BufRead,
    size_hint: u64,
    movie_of: &HashMap<u32, u32>,
    movies_file: &str,
    users: &mut Users,
    keep_time: bool,
) -> Result<Columns> {
    let mut cols = Columns::default();
    // MovieLens rating lines are 16-30 bytes; this over-reserves address space, not resident memory.
    let guess = usize::try_from(size_hint / 16).unwrap_or(0).min(1 << 26);
    cols.user.reserve(guess);
    cols.movie.reserve(guess);
    cols.rating.reserve(guess);
    if keep_time {
        cols.timestamp.reserve(guess);
    }
    let item = format.item_word();
    let title_of = TitleOf::new(movie_of);
    let mut lines = Lines::new(path, reader);
    // CSV: the header's fields and the positions of userId, movieId, rating, timestamp.
    let mut header: Option<(Vec<String>, [usize; 4])> = None;
    while let Some((number, line)) = lines.next_line()? {
        // Fields of a line with quotes; most lines have none and are split without allocating.
        let owned: Vec<String>;
        let err = |msg: &dyn Display| line_error(path, number, &String::from_utf8_lossy(line), msg);
        let text = std::str::from_utf8(line).map_err(|_| err(&"not valid UTF-8"))?;
        let mut f = [""; 4];
        match format {
            Format::Ml100k | Format::Ml1m => {
                let sep = if format == Format::Ml100k { "\t" } else { "::" };
                // Fixed array instead of a Vec: no allocation per line.
                let mut found = 0;
                for (i, field) in text.split(sep).enumerate() {
                    if let Some(slot) = f.get_mut(i) {
                        *slot = field;
                    }
                    found += 1;
                }
                if found != 4 {
                    let how = if format == Format::Ml100k {
                        "tab"
                    } else {
                        "'::'"
                    };
                    return Err(err(&format_args!(
                        "expected 4 {how}-separated fields (user, {item}, rating, timestamp), found {found}"
                    )));
                }
            }
            Format::Csv => {
                let Some((names, cols_at)) = &header else {
                    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
                    let fields = split_csv(body).map_err(|e| err(&e))?;
                    let at = header_columns(&fields, &["userId", "movieId", "rating", "timestamp"])
                        .map_err(|e| err(&e))?;
                    header = Some((fields, [at[0], at[1], at[2], at[3]]));
                    continue;
                };
                let n = if text.contains('"') {
                    owned = split_csv(text).map_err(|e| err(&e))?;
                    if &owned == names {
                        return Err(err(&"the header appears again"));
                    }
                    if owned.len() == names.len() {
                        for (slot, &at) in f.iter_mut().zip(cols_at) {
                            *slot = &owned[at];
                        }
                    }
                    owned.len()
                } else {
                    let mut found = 0;
                    for (i, field) in text.split(',').enumerate() {
                        if let Some(k) = cols_at.iter().position(|&c| c == i) {
                            f[k] = field;
                        }
                        found += 1;
                    }
                    if found == names.len()
                        && names.iter().zip(text.split(',')).all(|(a, b)| a == b)
                    {
                        return Err(err(&"the header appears again"));
                    }
                    found
                };
                if n != names.len() {
                    return Err(err(&format_args!(
                        "expected {} comma-separated fields as in the header, found {n}",
                        names.len()
                    )));
                }
            }
        }
        let [user, movie, rating, timestamp] = f;
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(&format_args!("user id {user:?} is not a whole number")));
        }
        if user.len() > 10 {
            return Err(err(&format_args!(
                "user id {user:?} is too long: at most 10 digits"
            )));
        }
        let id: u32 = movie
            .parse()
            .map_err(|_| err(&format_args!("{item} id {movie:?} is not a whole number")))?;
        let title = title_of
            .get(id)
            .ok_or_else(|| err(&format_args!("{item} id {id} is not in {movies_file}")))?;
        let rating = rating
            .parse::<f32>()
            .ok()
            .filter(|r| (0.0..=5.0).contains(r)) // also rejects NaN
            .ok_or_else(|| err(&format_args!("rating {rating:?} is not a number in [0, 5]")))?;
        // Only the temporal split uses it, but a bad timestamp means the line is not what we think.
        let time = timestamp
            .parse::<i64>()
            .map_err(|_| err(&format_args!("timestamp {timestamp:?} is not an integer")))?;
        cols.user.push(users.intern(user));
        cols.movie.push(title);
        cols.rating.push(rating);
        if keep_time {
            cols.timestamp.push(time);
        }
    }
    if cols.is_empty() {
        bail!(
            "{}:{}: no ratings in the file{}",
            path.display(),
            lines.number,
            if header.is_some() {
                " (only a header)"
            } else {
                ""
            }
        );
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_interned_as_written() {
        let mut users = Users::default();
        let ids: Vec<u32> = ["7", "07", "7", "0", "00", "4294967295", "16777216", "07"]
            .iter()
            .map(|n| users.intern(n))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2, 3, 4, 5, 1]);
        assert!(users.by_number.len() <= 8, "{}", users.by_number.len());
        let vocab = users.vocabulary();
        assert_eq!(
            vocab.tokens,
            ["0", "00", "07", "16777216", "4294967295", "7"]
        );
        assert_eq!(users.remap(&vocab), [6, 3, 1, 2, 5, 4]);

        // An id first seen while the table was too small for it keeps its id once the table has grown.
        let mut users = Users::default();
        assert_eq!(users.intern("100000"), 0);
        assert!(users.by_number.is_empty());
        for i in 0..2000 {
            users.intern(&i.to_string());
        }
        assert_eq!(users.intern("100000"), 0);
        assert_eq!(users.by_number[100_000], 0);
        assert_eq!(users.len(), 2001);
    }

    #[test]
    fn large_movie_ids_fall_back_to_the_map() {
        let sparse: HashMap<u32, u32> = [(5, 1), (1_000_000, 2)].into_iter().collect();
        assert!(matches!(TitleOf::new(&sparse), TitleOf::Map(_)));
        let map: HashMap<u32, u32> = [(5, 1), (u32::MAX - 1, 2)].into_iter().collect();
        let t = TitleOf::new(&map);
        assert!(matches!(t, TitleOf::Map(_)));
        assert_eq!(
            (t.get(5), t.get(u32::MAX - 1), t.get(6)),
            (Some(1), Some(2), None)
        );
        let small: HashMap<u32, u32> = [(5, 1), (9, 2)].into_iter().collect();
        let t = TitleOf::new(&small);
        assert!(matches!(t, TitleOf::Dense(_)));
        assert_eq!(
            (t.get(5), t.get(9), t.get(6), t.get(10), t.get(u32::MAX)),
            (Some(1), Some(2), None, None, None)
        );
    }
}
