//! The end-to-end test harness: one binary, one module per topic. Helpers live in `util`.

mod util;

/// `gyges matcher`: exit codes, output, message file forms.
mod matcher_cli;

/// The matcher's data path allocates nothing per message.
mod matcher_alloc;
