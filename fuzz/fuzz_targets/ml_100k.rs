//! Fuzzes the ml_100k movies and ratings parsers (see fuzz/README.md).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wgrec::data::formats::Format;

fuzz_target!(|data: &[u8]| {
    common::parse_both(Format::Ml100k, data);
});
