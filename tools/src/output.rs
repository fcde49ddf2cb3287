//! Standard output that survives a closed pipe.
//!
//! `println!` panics when stdout is a pipe whose reader has gone
//! (`edgecl search ... | head`); the [`out!`] macro writes the same line
//! and, on a broken pipe, ends the program quietly with success, as a
//! filter is expected to. Other write errors end it with exit code 1.

use std::io::{ErrorKind, Write};

/// Writes one line to stdout (see the module doc).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n")) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("edgecl: error: stdout: {e}");
        std::process::exit(i32::from(crate::error::EXIT_RUNTIME));
    }
}

/// `println!` that ends the program quietly when stdout's reader is gone.
macro_rules! out {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;
