//! Text functions: `word_count`, `reverse`, and `fail`, which always returns
//! an error.

mod fail;
mod reverse;
mod word_count;

cloudless_sdk::export_function!(word_count, word_count::word_count);
cloudless_sdk::export_function!(reverse, reverse::reverse);
cloudless_sdk::export_function!(fail, fail::fail);
