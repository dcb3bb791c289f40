#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod atomic_write;
mod command_line;
mod git_commit;
mod machine;
mod utc_time;

pub use atomic_write::{sync_dir, temp_sibling, write_atomic, write_synced};
pub use command_line::command_line;
pub use git_commit::git_commit;
pub use machine::machine;
pub use utc_time::{UtcTime, utc_stamp};
