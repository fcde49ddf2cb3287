//! The `edgecl` program.

use std::process::ExitCode;

use edgecl_kernels::dispatch::{self, Isa, Tier};

fn cpu() -> ExitCode {
    let c = dispatch::caps();
    println!("detected: {c:?}");
    for isa in Isa::ALL {
        let mark = if isa.is_available() { "yes" } else { "no" };
        println!("tier {:<7} {mark}", isa.name());
    }
    match dispatch::try_active() {
        Ok(t) => {
            println!("active tier: {t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("cpu") => cpu(),
        _ => {
            let _ = Tier::best();
            eprintln!("usage: edgecl cpu");
            ExitCode::from(2)
        }
    }
}
