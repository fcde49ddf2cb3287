//! `edgecl quantize`: vectors to int8, sign-bit or product-quantization
//! codes in a container, with the reconstruction error measured on the
//! same vectors.
//!
//! The container holds `meta` (`kind = quantized`, `n`, `dim`, `mode`),
//! the ids (`doc.ids`), the codes under the conventional section names
//! (`vectors.i8`, `vectors.bin`, `pq.codes` with `pq.codebooks`), the
//! quantizer's parameters (`quant.i8.*`, `quant.bin.*`, `pq.params`) and
//! the measured error (`quant.error`), so `edgecl inspect` shows all of
//! it. The error is measured by decoding every code and comparing with the
//! input: mean squared error, largest absolute error, and mean cosine
//! between each vector and its reconstruction.
//!
//! int8 ranges come from each dimension's (or all values') minimum and
//! maximum, or with `--percentile P` from the P-th percentile and its
//! mirror, which clips rare outliers so the common values keep more of the
//! 256 levels.
//!
//! Left out: learned rotations before PQ.

use std::path::PathBuf;

use edgecl_runtime::container::{names, ContainerBuilder};
use edgecl_runtime::kernels::pq::{ProductQuantizer, TrainConfig};
use edgecl_runtime::quant::{metrics, BinaryQuantizer, Calibration, Granularity, Int8Quantizer};

use super::CmdResult;
use crate::error::{CliError, Context};
use crate::output::out;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl quantize --vectors emb.npy --out emb.i8.ecl --mode int8
  edgecl quantize --vectors emb.jsonl --out emb.bin.ecl --mode binary --center
  edgecl quantize --vectors emb.npy --out emb.pq.ecl --mode pq4 --pq-m 48 --json
  edgecl quantize --vectors emb.npy --out emb.i8.ecl --mode int8 --decoded emb.i8.npy";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Input vectors: .npy (f32, [n, d]) or .jsonl lines {"id", "vector"}.
    #[arg(long, value_name = "FILE")]
    vectors: PathBuf,
    /// Output container file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Code type.
    #[arg(long, value_enum)]
    mode: QuantMode,
    /// int8: one scale and offset per dimension, or one for all values
    /// [default: per-dim].
    #[arg(long, value_enum)]
    calibration: Option<CalibrationArg>,
    /// int8: take each range from the P-th percentile and its mirror
    /// (100 - P) instead of the minimum and maximum; P in (50, 100].
    #[arg(long, value_name = "P")]
    percentile: Option<f32>,
    /// int8: symmetric codes (zero offset) instead of the full range.
    #[arg(long)]
    symmetric: bool,
    /// binary: subtract the mean vector before taking signs.
    #[arg(long)]
    center: bool,
    /// pq4/pq8: number of sub-quantizers (must divide the dimension)
    /// [default: sub-vectors of 2 values for pq4, 4 for pq8].
    #[arg(long, value_name = "M")]
    pq_m: Option<usize>,
    /// pq4/pq8: seed of k-means.
    #[arg(long, default_value_t = 0x1dec_5eed)]
    seed: u64,
    /// Also write the decoded vectors (.npy or .jsonl), e.g. to measure
    /// retrieval with quantized vectors.
    #[arg(long, value_name = "FILE")]
    decoded: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum QuantMode {
    Int8,
    Binary,
    Pq4,
    Pq8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CalibrationArg {
    PerDim,
    Global,
}

/// The int8 range rule a percentile flag (named `flag`) asks for: min/max
/// without it, else the percentile, which must lie in (50, 100].
pub fn percentile_calibration(p: Option<f32>, flag: &'static str) -> CmdResult<Calibration> {
    match p {
        None => Ok(Calibration::MinMax),
        Some(p) if p > 50.0 && p <= 100.0 => Ok(Calibration::Percentile(p)),
        Some(p) => Err(CliError::usage(flag, format!("{p} is not in (50, 100]"))),
    }
}

/// The default number of PQ sub-quantizers for dimension `dim`: the most
/// whose sub-vectors hold at least `min_dsub` values, within the 256 the
/// 4-bit scan supports.
pub fn default_pq_m(dim: usize, min_dsub: usize) -> Option<usize> {
    (min_dsub..=dim).find(|&s| dim.is_multiple_of(s) && dim / s <= 256).map(|s| dim / s)
}

pub fn run(args: &Args) -> CmdResult {
    // Flags that belong to another mode are mistakes, not no-ops.
    let pq = matches!(args.mode, QuantMode::Pq4 | QuantMode::Pq8);
    if args.center && args.mode != QuantMode::Binary {
        return Err(CliError::usage("--center", "applies to --mode binary only"));
    }
    if args.calibration.is_some() && args.mode != QuantMode::Int8 {
        return Err(CliError::usage("--calibration", "applies to --mode int8 only"));
    }
    let calibration = args.calibration.unwrap_or(CalibrationArg::PerDim);
    if args.percentile.is_some() && args.mode != QuantMode::Int8 {
        return Err(CliError::usage("--percentile", "applies to --mode int8 only"));
    }
    let range = percentile_calibration(args.percentile, "--percentile")?;
    if args.symmetric && args.mode != QuantMode::Int8 {
        return Err(CliError::usage("--symmetric", "applies to --mode int8 only"));
    }
    if args.pq_m.is_some() && !pq {
        return Err(CliError::usage("--pq-m", "applies to --mode pq4 or pq8 only"));
    }

    if let Some(path) = &args.decoded {
        vectors::format_of(path, "--decoded")?;
    }
    let v = vectors::read(&args.vectors, "--vectors")?;
    let (n, dim) = (v.len(), v.dim);
    let at = args.vectors.display().to_string();
    let mut b = ContainerBuilder::new();
    let mut recon = vec![0f32; v.data.len()];

    // Quantize, store codes and parameters, decode for the error.
    let (description, code_bytes) = match args.mode {
        QuantMode::Int8 => {
            let granularity = match calibration {
                CalibrationArg::PerDim => Granularity::PerDim,
                CalibrationArg::Global => Granularity::Global,
            };
            let mode = if args.symmetric {
                edgecl_runtime::quant::Mode::Symmetric
            } else {
                edgecl_runtime::quant::Mode::Asymmetric
            };
            let q = Int8Quantizer::calibrate(&v.data, dim, mode, granularity, range).at(&at)?;
            let mut codes = vec![0i8; n * dim];
            for ((x, c), r) in v
                .data
                .chunks_exact(dim)
                .zip(codes.chunks_exact_mut(dim))
                .zip(recon.chunks_exact_mut(dim))
            {
                q.quantize(x, c).at(&at)?;
                q.dequantize(c, r).at(&at)?;
            }
            q.write(&mut b, names::QUANT_I8).at(args.out.display())?;
            b.add_owned(names::VECTORS_I8, &[n as u64, dim as u64], codes)
                .at(args.out.display())?;
            let sym = if args.symmetric { "symmetric" } else { "asymmetric" };
            let gran = match calibration {
                CalibrationArg::PerDim => "per-dim",
                CalibrationArg::Global => "global",
            };
            let rule = match range {
                Calibration::MinMax => "min/max".to_string(),
                Calibration::Percentile(p) => format!("percentile {p}"),
            };
            (format!("int8 ({sym}, {gran}, {rule})"), dim)
        }
        QuantMode::Binary => {
            let q = BinaryQuantizer::calibrate(&v.data, dim, args.center).at(&at)?;
            let w = q.words();
            let mut codes = vec![0u64; n * w];
            for ((x, c), r) in v
                .data
                .chunks_exact(dim)
                .zip(codes.chunks_exact_mut(w))
                .zip(recon.chunks_exact_mut(dim))
            {
                q.encode(x, c).at(&at)?;
                q.decode(c, r).at(&at)?;
            }
            q.write(&mut b, names::QUANT_BIN).at(args.out.display())?;
            b.add_owned(names::VECTORS_BIN, &[n as u64, w as u64], codes).at(args.out.display())?;
            let centred = if args.center { "centred" } else { "not centred" };
            (format!("binary (sign bits, {centred})"), w * 8)
        }
        QuantMode::Pq4 | QuantMode::Pq8 => {
            let (nbits, min_dsub) = if args.mode == QuantMode::Pq4 { (4, 2) } else { (8, 4) };
            let m = match args.pq_m {
                Some(m) if m == 0 || !dim.is_multiple_of(m) => {
                    return Err(CliError::usage(
                        "--pq-m",
                        format!("{m} does not divide the dimension {dim}"),
                    ))
                }
                Some(m) => m,
                None => default_pq_m(dim, min_dsub).ok_or_else(|| {
                    CliError::usage("--pq-m", format!("no default for dimension {dim}; give one"))
                })?,
            };
            let cfg = TrainConfig { iters: 20, seed: args.seed };
            let q = ProductQuantizer::train(&v.data, dim, m, nbits, cfg)
                .at(format!("{at}: pq training"))?;
            let mut codes = vec![0u8; n * m];
            q.encode(&v.data, &mut codes).at(&at)?;
            let (ksub, dsub) = (q.ksub(), q.dsub());
            let cents = q.centroids();
            for (c, r) in codes.chunks_exact(m).zip(recon.chunks_exact_mut(dim)) {
                for (j, &code) in c.iter().enumerate() {
                    let from = (j * ksub + code as usize) * dsub;
                    r[j * dsub..(j + 1) * dsub].copy_from_slice(&cents[from..from + dsub]);
                }
            }
            let out = args.out.display();
            b.add_owned(names::PQ_CODES, &[n as u64, m as u64], codes).at(&out)?;
            b.add_owned(names::PQ_CODEBOOKS, &[m as u64, ksub as u64, dsub as u64], cents.to_vec())
                .at(&out)?;
            b.add_key_values(
                "pq.params",
                [
                    ("m", m.to_string()),
                    ("nbits", nbits.to_string()),
                    ("iters", cfg.iters.to_string()),
                    ("seed", cfg.seed.to_string()),
                ],
            )
            .at(&out)?;
            (format!("pq{nbits} ({m} sub-quantizers of {dsub} values)"), m)
        }
    };

    // Reconstruction error over every value.
    let mse = metrics::mse(&v.data, &recon).at(&at)?;
    let max_abs = metrics::max_abs_error(&v.data, &recon).at(&at)?;
    let cosine = metrics::mean_cosine(&v.data, &recon, dim).at(&at)?;

    let mode = format!("{:?}", args.mode).to_lowercase();
    let out = args.out.display();
    b.add_key_values(
        names::META,
        [
            ("kind", "quantized".to_string()),
            ("writer", format!("edgecl {}", env!("CARGO_PKG_VERSION"))),
            ("n", n.to_string()),
            ("dim", dim.to_string()),
            ("mode", mode.clone()),
        ],
    )
    .at(&out)?;
    b.add_strings(names::DOC_IDS, &v.ids).at(&out)?;
    b.add_key_values(
        "quant.error",
        [
            ("mse", mse.to_string()),
            ("max_abs_error", max_abs.to_string()),
            ("mean_cosine", cosine.to_string()),
        ],
    )
    .at(&out)?;
    b.write_atomic(&args.out).at(&out)?;
    if let Some(path) = &args.decoded {
        vectors::write(path, "--decoded", &v.ids, &v.texts, &recon, dim)?;
    }

    let f32_bytes = dim * 4;
    let ratio = f32_bytes as f64 / code_bytes as f64;
    if args.json {
        let report = serde_json::json!({
            "vectors": n,
            "dim": dim,
            "mode": mode,
            "description": description,
            "bytes_per_vector": code_bytes,
            "f32_bytes_per_vector": f32_bytes,
            "mse": mse,
            "max_abs_error": max_abs,
            "mean_cosine": cosine,
            "out": args.out.display().to_string(),
        });
        out!("{report}");
    } else {
        out!("{n} vectors of dimension {dim}: {description}");
        out!("{:<18} {code_bytes} (f32: {f32_bytes}, {ratio:.1}x smaller)", "bytes per vector");
        out!("{:<18} {mse:.3e}", "mse");
        out!("{:<18} {max_abs:.3e}", "max abs error");
        out!("{:<18} {cosine:.6}", "mean cosine");
        out!("wrote {out}");
    }
    Ok(())
}
