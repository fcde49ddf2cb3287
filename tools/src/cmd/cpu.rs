//! `edgecl cpu`: what the CPU reports and which tier each kernel family runs.

use edgecl_kernels::dispatch::{self, Feature, Isa};

use super::CmdResult;
use crate::error::Context;
use crate::output::out;

pub fn run() -> CmdResult {
    let c = dispatch::caps();
    out!("architecture   {}", std::env::consts::ARCH);
    let flags = [
        ("avx2", c.avx2),
        ("fma", c.fma),
        ("f16c", c.f16c),
        ("popcnt", c.popcnt),
        ("avx512f", c.avx512f),
        ("avx512bw", c.avx512bw),
        ("avx512dq", c.avx512dq),
        ("avx512vl", c.avx512vl),
        ("avx512vnni", c.avx512vnni),
        ("avx512vpopcntdq", c.avx512vpopcntdq),
        ("neon", c.neon),
        ("dotprod", c.dotprod),
    ];
    let have: Vec<&str> = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
    out!("features       {}", if have.is_empty() { "(none used)".into() } else { have.join(" ") });
    let tiers: Vec<&str> =
        Isa::ALL.into_iter().filter(|i| i.is_available()).map(Isa::name).collect();
    out!("tiers          {}", tiers.join(" "));
    let t = dispatch::try_active().at("EDGECL_ISA")?;
    let forced = std::env::var("EDGECL_ISA").map(|v| !v.trim().is_empty()).unwrap_or(false);
    out!("active tier    {t}{}", if forced { " (forced by EDGECL_ISA)" } else { "" });
    out!();
    out!("kernel family        path");
    out!("f32 gemm, vector     {}", t.isa());
    let int8 = match t.isa() {
        Isa::Avx512 if t.has(Feature::Avx512Vnni) => "avx512 vpdpbusd (VNNI)",
        Isa::Avx512 => "avx512 vpmovsxbw + vpmaddwd",
        Isa::Avx2 => "avx2 vpmovsxbw + vpmaddwd",
        Isa::Neon if t.has(Feature::DotProd) => "neon sdot",
        Isa::Neon => "neon smull + sadalp",
        _ => "scalar",
    };
    out!("int8 gemm, scans     {int8}");
    let popcnt = match t.isa() {
        Isa::Avx512 if t.has(Feature::Avx512Vpopcntdq) => "avx512 vpopcntq",
        Isa::Avx512 | Isa::Avx2 => "avx2 popcnt below 512-bit codes, pshufb nibble table above",
        Isa::Neon => "neon vcnt",
        _ => "scalar popcount",
    };
    out!("hamming              {popcnt}");
    Ok(())
}
