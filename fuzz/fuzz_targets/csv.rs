//! Fuzzes the csv movies and ratings parsers (see fuzz/README.md).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wgrec::data::formats::Format;

fuzz_target!(|data: &[u8]| {
    common::parse_both(Format::Csv, data);
    // The CSV record splitter on its own, line by line.
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            if let Ok(fields) = wgrec::data::formats::split_csv(line) {
                assert!(!fields.is_empty());
            }
        }
    }
});
