//! The TOML plan: arbitrary config text through the loader and the planner, as `gyges
//! validate` reads it. Any text gives a plan or an error naming where; never a panic.
#![no_main]

use gyges::config::plan::{self, Overrides};
use gyges::config::{add_text, Document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut document = Document {
        origin: "fuzz.toml".into(),
        ..Document::default()
    };
    if add_text(&mut document, "fuzz.toml", text).is_err() {
        return;
    }
    let overrides = Overrides {
        allow_offline_cores: true,
        ..Overrides::default()
    };
    if let Err(error) = plan::build(&document, &overrides) {
        assert!(!error.to_string().is_empty(), "an error says what is wrong");
    }
});
