//! CPU feature detection and the choice of kernel tier.
//!
//! The CPU is probed once per process ([`caps`]) and the tier every kernel
//! uses is chosen once ([`active`]): the best one the CPU has, or the one
//! named by the `EDGECL_ISA` environment variable (`scalar`, `avx2`,
//! `avx512`, `neon`). Naming a tier the CPU lacks is an error, never a
//! silent fallback to a slower path.
//!
//! A [`Tier`] is a token: it can only be made for features the CPU has, so a
//! kernel that receives one may run that tier's instructions without further
//! checks. Tests and benches call each kernel's `*_with(tier, ..)` variant
//! with every tier from [`Tier::all_available`] to compare them against the
//! scalar reference.
//!
//! Tiers and what they require:
//!
//! | tier     | required features                                    | optional capabilities |
//! |----------|------------------------------------------------------|-----------------------|
//! | `scalar` | none                                                 |                       |
//! | `avx2`   | AVX2, FMA, F16C, POPCNT                              |                       |
//! | `avx512` | `avx2` plus AVX-512 F, BW, DQ, VL                    | VNNI, VPOPCNTDQ       |
//! | `neon`   | aarch64 Advanced SIMD (always present on aarch64)    | dotprod (`sdot`)      |
//!
//! The optional capabilities are switched off one at a time with
//! [`Tier::without`], so the fallback inside a tier is tested on a CPU that
//! has the capability too.
//!
//! The library prints nothing; `edgecl cpu` shows what was detected.

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust; the reference every other tier is tested against.
    Scalar,
    /// x86-64 with AVX2 and FMA (Haswell, Zen 1 and later).
    Avx2,
    /// x86-64 with AVX-512 F/BW/DQ/VL (Skylake-SP, Ice Lake, Zen 4 and later).
    Avx512,
    /// aarch64 Advanced SIMD.
    Neon,
}

impl Isa {
    /// Every tier, in the order of preference from worst to best.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The name used by `EDGECL_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a tier name as `EDGECL_ISA` spells it (case-insensitive).
    pub fn parse(name: &str) -> Option<Isa> {
        let name = name.trim().to_ascii_lowercase();
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU can run the tier.
    pub fn is_available(self) -> bool {
        let c = caps();
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => c.avx2 && c.fma && c.f16c && c.popcnt,
            Isa::Avx512 => {
                Isa::Avx2.is_available() && c.avx512f && c.avx512bw && c.avx512dq && c.avx512vl
            }
            Isa::Neon => c.neon,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the CPU reports, probed once per process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub popcnt: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512dq: bool,
    pub avx512vl: bool,
    pub avx512vnni: bool,
    pub avx512vpopcntdq: bool,
    pub neon: bool,
    pub dotprod: bool,
}

impl Caps {
    fn detect() -> Caps {
        #[allow(unused_mut)]
        let mut c = Caps::default();
        #[cfg(target_arch = "x86_64")]
        {
            c.avx2 = std::arch::is_x86_feature_detected!("avx2");
            c.fma = std::arch::is_x86_feature_detected!("fma");
            c.f16c = std::arch::is_x86_feature_detected!("f16c");
            c.popcnt = std::arch::is_x86_feature_detected!("popcnt");
            c.avx512f = std::arch::is_x86_feature_detected!("avx512f");
            c.avx512bw = std::arch::is_x86_feature_detected!("avx512bw");
            c.avx512dq = std::arch::is_x86_feature_detected!("avx512dq");
            c.avx512vl = std::arch::is_x86_feature_detected!("avx512vl");
            c.avx512vnni = std::arch::is_x86_feature_detected!("avx512vnni");
            c.avx512vpopcntdq = std::arch::is_x86_feature_detected!("avx512vpopcntdq");
        }
        #[cfg(target_arch = "aarch64")]
        {
            c.neon = std::arch::is_aarch64_feature_detected!("neon");
            c.dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
        }
        c
    }
}

/// The CPU's features, detected on first use and cached for the process.
pub fn caps() -> &'static Caps {
    static CAPS: OnceLock<Caps> = OnceLock::new();
    CAPS.get_or_init(Caps::detect)
}

/// An optional capability inside a tier, which [`Tier::without`] can mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// AVX-512 VNNI (`vpdpbusd`), inside the `avx512` tier.
    Avx512Vnni,
    /// AVX-512 VPOPCNTDQ (`vpopcntq`), inside the `avx512` tier.
    Avx512Vpopcntdq,
    /// The Armv8.2 dot product (`sdot`/`udot`), inside the `neon` tier.
    DotProd,
}

/// Proof that the CPU runs a tier, with the optional capabilities in use.
///
/// Made only by [`Tier::new`], [`Tier::scalar`], [`Tier::best`] and
/// [`active`], each of which checks the CPU first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tier {
    isa: Isa,
    vnni: bool,
    vpopcntdq: bool,
    dotprod: bool,
}

impl Tier {
    /// The tier for `isa` with every optional capability the CPU has, or
    /// `None` when the CPU lacks the tier.
    pub fn new(isa: Isa) -> Option<Tier> {
        if !isa.is_available() {
            return None;
        }
        let c = caps();
        Some(Tier {
            isa,
            vnni: isa == Isa::Avx512 && c.avx512vnni,
            vpopcntdq: isa == Isa::Avx512 && c.avx512vpopcntdq,
            dotprod: isa == Isa::Neon && c.dotprod,
        })
    }

    /// The portable tier, always available.
    pub fn scalar() -> Tier {
        Tier { isa: Isa::Scalar, vnni: false, vpopcntdq: false, dotprod: false }
    }

    /// The best tier this CPU has.
    pub fn best() -> Tier {
        [Isa::Avx512, Isa::Neon, Isa::Avx2]
            .into_iter()
            .find_map(Tier::new)
            .unwrap_or_else(Tier::scalar)
    }

    /// Every tier this CPU runs, each with all its capabilities, scalar first.
    pub fn all_available() -> Vec<Tier> {
        Isa::ALL.into_iter().filter_map(Tier::new).collect()
    }

    /// Every tier this CPU runs, plus each one again with each optional
    /// capability masked, so tests reach every code path the machine can.
    pub fn all_variants() -> Vec<Tier> {
        let mut out = Vec::new();
        for t in Tier::all_available() {
            out.push(t);
            for f in [Feature::Avx512Vnni, Feature::Avx512Vpopcntdq, Feature::DotProd] {
                if t.has(f) {
                    out.push(t.without(f));
                }
            }
        }
        out
    }

    /// The same tier with one optional capability switched off.
    pub fn without(self, feature: Feature) -> Tier {
        let mut t = self;
        match feature {
            Feature::Avx512Vnni => t.vnni = false,
            Feature::Avx512Vpopcntdq => t.vpopcntdq = false,
            Feature::DotProd => t.dotprod = false,
        }
        t
    }

    /// Whether an optional capability is in use.
    pub fn has(self, feature: Feature) -> bool {
        match feature {
            Feature::Avx512Vnni => self.vnni,
            Feature::Avx512Vpopcntdq => self.vpopcntdq,
            Feature::DotProd => self.dotprod,
        }
    }

    /// The instruction-set tier.
    pub fn isa(self) -> Isa {
        self.isa
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.isa.name())?;
        let extras =
            [(self.vnni, "+vnni"), (self.vpopcntdq, "+vpopcntdq"), (self.dotprod, "+dotprod")];
        for (on, name) in extras {
            if on {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// Why `EDGECL_ISA` could not be honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsaError {
    /// The variable names no tier.
    Unknown { value: String },
    /// The variable names a tier this CPU cannot run.
    Unsupported { isa: Isa },
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsaError::Unknown { value } => write!(
                f,
                "EDGECL_ISA={value:?} names no tier; expected one of scalar, avx2, avx512, neon"
            ),
            IsaError::Unsupported { isa } => {
                write!(f, "EDGECL_ISA={isa} asks for a tier this CPU does not support")
            }
        }
    }
}

impl std::error::Error for IsaError {}

/// Reads a tier request such as `EDGECL_ISA` holds: `None` or an empty
/// string means the best tier.
pub fn tier_from_request(request: Option<&str>) -> Result<Tier, IsaError> {
    match request.map(str::trim) {
        None | Some("") => Ok(Tier::best()),
        Some(value) => {
            let isa =
                Isa::parse(value).ok_or_else(|| IsaError::Unknown { value: value.to_string() })?;
            Tier::new(isa).ok_or(IsaError::Unsupported { isa })
        }
    }
}

/// The tier chosen for this process: `EDGECL_ISA` if set, else the best.
///
/// Programs should call this once at start-up to report a bad `EDGECL_ISA`
/// as an error; [`active`] panics on it instead.
pub fn try_active() -> Result<Tier, IsaError> {
    static ACTIVE: OnceLock<Result<Tier, IsaError>> = OnceLock::new();
    ACTIVE.get_or_init(|| tier_from_request(std::env::var("EDGECL_ISA").ok().as_deref())).clone()
}

/// The tier every dispatching kernel uses.
///
/// # Panics
///
/// When `EDGECL_ISA` names an unknown tier or one the CPU lacks: running a
/// different tier than asked for would make a forced test or bench lie.
pub fn active() -> Tier {
    match try_active() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parsing() {
        assert_eq!(tier_from_request(None), Ok(Tier::best()));
        assert_eq!(tier_from_request(Some("  ")), Ok(Tier::best()));
        assert_eq!(tier_from_request(Some("SCALAR")), Ok(Tier::scalar()));
        assert!(matches!(tier_from_request(Some("sse9")), Err(IsaError::Unknown { .. })));
        for isa in Isa::ALL {
            let got = tier_from_request(Some(isa.name()));
            if isa.is_available() {
                assert_eq!(got.map(Tier::isa), Ok(isa));
            } else {
                assert_eq!(got, Err(IsaError::Unsupported { isa }));
            }
        }
    }

    #[test]
    fn variants_are_runnable_and_distinct() {
        let v = Tier::all_variants();
        assert_eq!(v[0], Tier::scalar());
        for (i, a) in v.iter().enumerate() {
            assert!(a.isa().is_available());
            assert!(v[i + 1..].iter().all(|b| a != b));
        }
    }

    #[test]
    fn without_masks_only_that_feature() {
        let t = Tier::best();
        let u = t.without(Feature::Avx512Vnni);
        assert!(!u.has(Feature::Avx512Vnni));
        assert_eq!(u.has(Feature::Avx512Vpopcntdq), t.has(Feature::Avx512Vpopcntdq));
        assert_eq!(u.isa(), t.isa());
    }
}
