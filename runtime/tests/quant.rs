//! Int8 and binary quantization: reconstruction error against the bounds
//! the maths gives, calibration choices compared on data built to favour
//! them, parameter storage in a container, and input errors.

use edgecl_runtime::container::{Container, ContainerBuilder};
use edgecl_runtime::quant::metrics::{dot_error, max_abs_error, mean_cosine, mse};
use edgecl_runtime::quant::{
    hamming, BinaryQuantizer, Calibration, Granularity, Int8Quantizer, Mode, QuantError,
};
use proptest::prelude::*;

// Seeded Gaussian data: xorshift64* plus Box-Muller.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

// n rows of dim values, dimension j scaled by scales[j] and shifted by shift.
fn gaussian(n: usize, dim: usize, seed: u64, scale: impl Fn(usize) -> f32, shift: f32) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..n * dim).map(|i| r.normal() * scale(i % dim) + shift).collect()
}

#[test]
fn symmetric_error_within_half_step() {
    let dim = 48;
    let x = gaussian(500, dim, 1, |_| 1.0, 0.0);
    let q = Int8Quantizer::calibrate(
        &x,
        dim,
        Mode::Symmetric,
        Granularity::PerDim,
        Calibration::MinMax,
    )
    .unwrap();
    let codes = q.quantize_vec(&x).unwrap();
    assert!(codes.iter().all(|&c| c >= -127));
    let back = q.dequantize_vec(&codes).unwrap();
    // Min/max calibration covers every sample value: error <= scale / 2.
    for (i, (&a, &b)) in x.iter().zip(&back).enumerate() {
        let half = q.scale()[i % dim] / 2.0;
        assert!((a - b).abs() <= half * 1.0001, "element {i}: {a} vs {b}, half step {half}");
    }
    let cos = mean_cosine(&x, &back, dim).unwrap();
    assert!(cos > 0.999, "mean cosine {cos}");
}

#[test]
fn asymmetric_beats_symmetric_on_one_sided_data() {
    let dim = 32;
    let x: Vec<f32> = gaussian(400, dim, 2, |_| 1.0, 0.0).iter().map(|v| v.abs() + 3.0).collect();
    let err = |mode| {
        let q = Int8Quantizer::calibrate(&x, dim, mode, Granularity::PerDim, Calibration::MinMax)
            .unwrap();
        mse(&x, &q.dequantize_vec(&q.quantize_vec(&x).unwrap()).unwrap()).unwrap()
    };
    let (sym, asym) = (err(Mode::Symmetric), err(Mode::Asymmetric));
    // Symmetric wastes the negative half of its levels here.
    assert!(asym * 4.0 < sym, "asymmetric {asym} vs symmetric {sym}");
}

#[test]
fn per_dim_beats_global_on_mixed_scales() {
    let dim = 16;
    let x = gaussian(400, dim, 3, |j| if j % 2 == 0 { 10.0 } else { 0.1 }, 0.0);
    let err = |g| {
        let q = Int8Quantizer::calibrate(&x, dim, Mode::Symmetric, g, Calibration::MinMax).unwrap();
        mse(&x, &q.dequantize_vec(&q.quantize_vec(&x).unwrap()).unwrap()).unwrap()
    };
    let (global, per_dim) = (err(Granularity::Global), err(Granularity::PerDim));
    assert!(per_dim < global, "per-dim {per_dim} vs global {global}");
    let g = Int8Quantizer::calibrate(
        &x,
        dim,
        Mode::Symmetric,
        Granularity::Global,
        Calibration::MinMax,
    )
    .unwrap();
    assert_eq!(g.scale().len(), 1);
}

#[test]
fn percentile_clips_outliers() {
    let dim = 8;
    let mut x = gaussian(2000, dim, 4, |_| 1.0, 0.0);
    // A handful of huge outliers in every dimension.
    let len = x.len();
    for i in 0..dim * 3 {
        x[i * 97 % len] = 1000.0;
    }
    let bulk: Vec<usize> = (0..x.len()).filter(|&i| x[i].abs() < 100.0).collect();
    let bulk_err = |cal| {
        let q =
            Int8Quantizer::calibrate(&x, dim, Mode::Symmetric, Granularity::PerDim, cal).unwrap();
        let back = q.dequantize_vec(&q.quantize_vec(&x).unwrap()).unwrap();
        let a: Vec<f32> = bulk.iter().map(|&i| x[i]).collect();
        let b: Vec<f32> = bulk.iter().map(|&i| back[i]).collect();
        mse(&a, &b).unwrap()
    };
    let (minmax, pct) = (bulk_err(Calibration::MinMax), bulk_err(Calibration::Percentile(99.5)));
    assert!(pct * 10.0 < minmax, "percentile {pct} vs minmax {minmax}");
}

#[test]
fn constant_dimension_is_exact() {
    let dim = 3;
    let x = [5.0f32, 0.0, -2.0, 5.0, 1.0, -2.0, 5.0, -1.0, -2.0];
    for mode in [Mode::Symmetric, Mode::Asymmetric] {
        let q = Int8Quantizer::calibrate(&x, dim, mode, Granularity::PerDim, Calibration::MinMax)
            .unwrap();
        let back = q.dequantize_vec(&q.quantize_vec(&x).unwrap()).unwrap();
        for i in (0..9).step_by(3) {
            assert_eq!(back[i], 5.0, "{mode:?}");
            assert!((back[i + 2] + 2.0).abs() < 1e-5, "{mode:?}: {}", back[i + 2]);
        }
    }
    let zeros = [0.0f32; 6];
    let q = Int8Quantizer::calibrate(
        &zeros,
        2,
        Mode::Symmetric,
        Granularity::Global,
        Calibration::MinMax,
    )
    .unwrap();
    assert_eq!(q.dequantize_vec(&q.quantize_vec(&zeros).unwrap()).unwrap(), zeros);
}

#[test]
fn int8_input_errors() {
    let cal = |x: &[f32], d| {
        Int8Quantizer::calibrate(x, d, Mode::Symmetric, Granularity::PerDim, Calibration::MinMax)
    };
    assert!(matches!(cal(&[1.0, 2.0, 3.0], 2), Err(QuantError::Shape { .. })));
    assert!(matches!(cal(&[], 2), Err(QuantError::Empty { what: "sample" })));
    assert!(matches!(cal(&[1.0], 0), Err(QuantError::Empty { .. })));
    assert!(matches!(cal(&[1.0, f32::NAN], 2), Err(QuantError::NonFinite { index: 1, .. })));
    let bad_p = Int8Quantizer::calibrate(
        &[1.0],
        1,
        Mode::Symmetric,
        Granularity::Global,
        Calibration::Percentile(40.0),
    );
    assert!(matches!(bad_p, Err(QuantError::BadParameter { .. })));
    let q = cal(&[1.0, 2.0], 2).unwrap();
    assert!(matches!(q.quantize(&[1.0, 2.0], &mut [0i8; 3]), Err(QuantError::Shape { .. })));
    assert!(matches!(q.quantize_vec(&[f32::INFINITY, 0.0]), Err(QuantError::NonFinite { .. })));
    assert!(matches!(q.dequantize(&[1, 2], &mut [0f32; 1]), Err(QuantError::Shape { .. })));
    assert!(Int8Quantizer::from_params(2, Mode::Symmetric, vec![1.0, 0.0], vec![0.0, 0.0]).is_err());
    assert!(Int8Quantizer::from_params(2, Mode::Symmetric, vec![1.0], vec![0.5]).is_err());
    assert!(
        Int8Quantizer::from_params(3, Mode::Asymmetric, vec![1.0, 1.0], vec![0.0, 0.0]).is_err()
    );
}

#[test]
fn binary_codes_follow_signs() {
    let dim = 70; // two words, six bits used in the second
    let x = gaussian(20, dim, 5, |_| 1.0, 0.0);
    let q = BinaryQuantizer::calibrate(&x, dim, false).unwrap();
    assert_eq!(q.words(), 2);
    let codes = q.encode_vec(&x).unwrap();
    for (r, row) in x.chunks(dim).enumerate() {
        let code = &codes[2 * r..2 * r + 2];
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(code[j / 64] >> (j % 64) & 1 == 1, v > 0.0, "row {r} dim {j}");
        }
        assert_eq!(code[1] >> 6, 0, "unused bits must stay zero");
    }
    // Hamming between a code and its complement-in-use is the dimension.
    let neg: Vec<f32> = x[..dim].iter().map(|v| -v).collect();
    let c2 = q.encode_vec(&neg).unwrap();
    assert_eq!(hamming(&codes[..2], &c2).unwrap(), dim as u32);
    // Mismatched or empty codes are errors, not a prefix comparison.
    assert!(matches!(hamming(&codes[..2], &c2[..1]), Err(QuantError::Shape { .. })));
    assert!(matches!(hamming(&[], &[]), Err(QuantError::Empty { .. })));
}

#[test]
fn binary_centring_helps_offset_data() {
    let dim = 64;
    let x = gaussian(500, dim, 6, |_| 1.0, 2.0);
    let cos = |centre| {
        let q = BinaryQuantizer::calibrate(&x, dim, centre).unwrap();
        let codes = q.encode_vec(&x).unwrap();
        let mut back = vec![0f32; x.len()];
        q.decode(&codes, &mut back).unwrap();
        // Measure the error on the centred vectors: that is what ranking sees.
        let m = q.mean().to_vec();
        let centre_rows =
            |v: &[f32]| -> Vec<f32> { v.iter().enumerate().map(|(i, a)| a - m[i % dim]).collect() };
        (mean_cosine(&centre_rows(&x), &centre_rows(&back), dim).unwrap(), mse(&x, &back).unwrap())
    };
    let ((cos_c, mse_c), (_, mse_u)) = (cos(true), cos(false));
    // Gaussian signs keep about sqrt(2 / pi) ~ 0.80 of the direction.
    assert!(cos_c > 0.75 && cos_c < 0.85, "centred cosine {cos_c}");
    assert!(mse_c < mse_u, "centred mse {mse_c} vs uncentred {mse_u}");
}

#[test]
fn parameters_round_trip_through_a_container() {
    let dim = 24;
    let x = gaussian(100, dim, 7, |j| 1.0 + j as f32, 0.5);
    let i8q = Int8Quantizer::calibrate(
        &x,
        dim,
        Mode::Asymmetric,
        Granularity::PerDim,
        Calibration::Percentile(99.0),
    )
    .unwrap();
    let binq = BinaryQuantizer::calibrate(&x, dim, true).unwrap();
    let codes = i8q.quantize_vec(&x).unwrap();
    let mut b = ContainerBuilder::new();
    i8q.write(&mut b, "quant.i8").unwrap();
    binq.write(&mut b, "quant.bin").unwrap();
    b.add("vectors.i8", &[100, dim as u64], &codes).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse_verified(&bytes).unwrap();
    assert_eq!(
        Int8Quantizer::load(&c, "quant.i8").unwrap().dequantize_vec(&codes).unwrap(),
        i8q.dequantize_vec(&codes).unwrap()
    );
    assert_eq!(Int8Quantizer::load(&c, "quant.i8").unwrap(), i8q);
    assert_eq!(BinaryQuantizer::load(&c, "quant.bin").unwrap(), binq);
    assert_eq!(c.section::<i8>("vectors.i8").unwrap(), &codes[..]);

    // A stored non-positive scale is rejected at load.
    let mut b = ContainerBuilder::new();
    let bad =
        Int8Quantizer::from_params(2, Mode::Symmetric, vec![1.0, 1.0], vec![0.0, 0.0]).unwrap();
    bad.write(&mut b, "q").unwrap();
    let bytes = b.to_bytes().unwrap();
    let mut raw = bytes.clone();
    let off = Container::parse(&bytes).unwrap().info("q.scale").unwrap().offset as usize;
    raw.as_mut_slice()[off..off + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    let c = Container::parse(&raw).unwrap();
    assert!(matches!(
        Int8Quantizer::load(&c, "q"),
        Err(QuantError::BadParameter { what: "scale", .. })
    ));
    assert!(matches!(BinaryQuantizer::load(&c, "q"), Err(QuantError::Container(_))));
}

#[test]
fn metrics_are_exact_on_known_inputs() {
    assert_eq!(mse(&[1.0, 2.0], &[1.0, 4.0]).unwrap(), 2.0);
    assert_eq!(max_abs_error(&[1.0, 2.0], &[0.5, 4.0]).unwrap(), 2.0);
    let c = mean_cosine(&[1.0, 0.0, 0.0, 1.0], &[2.0, 0.0, 1.0, 0.0], 2).unwrap();
    assert!((c - 0.5).abs() < 1e-12);
    assert!(mse(&[1.0], &[1.0, 2.0]).is_err());
    assert!(mse(&[], &[]).is_err());

    // Inner-product error: rows (1, 0) -> (1, 1) and (0, 2) -> (0, 1),
    // queries (1, 1) and (0, 1): errors q . (a - b) = -1, 1, -1, 1.
    let e =
        dot_error(&[1.0, 0.0, 0.0, 2.0], &[1.0, 1.0, 0.0, 1.0], &[1.0, 1.0, 0.0, 1.0], 2).unwrap();
    assert_eq!((e.mean_abs, e.max_abs, e.bias), (1.0, 1.0, 0.0));
    assert!(dot_error(&[1.0, 0.0], &[1.0, 0.0], &[], 2).is_err());
    assert!(dot_error(&[1.0, 0.0], &[1.0, 0.0], &[1.0], 2).is_err());
}

#[test]
fn per_dim_int8_keeps_inner_products_closer_than_global() {
    // Dimensions whose spreads differ by 30x: a global scale wastes most
    // levels on the narrow ones, and the inner products show it.
    let dim = 16;
    let x = gaussian(400, dim, 5, |j| if j % 2 == 0 { 0.03 } else { 1.0 }, 0.0);
    let q = gaussian(20, dim, 6, |_| 1.0, 0.0);
    let err = |g| {
        let iq =
            Int8Quantizer::calibrate(&x, dim, Mode::Asymmetric, g, Calibration::MinMax).unwrap();
        let r = iq.dequantize_vec(&iq.quantize_vec(&x).unwrap()).unwrap();
        dot_error(&x, &r, &q, dim).unwrap().mean_abs
    };
    let (per_dim, global) = (err(Granularity::PerDim), err(Granularity::Global));
    assert!(per_dim < global, "per-dim {per_dim:.5} vs global {global:.5}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    // Codes survive dequantize -> quantize unchanged.
    #[test]
    fn codes_are_a_fixed_point(
        dim in 1usize..20,
        seed in any::<u64>(),
        asym in any::<bool>(),
        global in any::<bool>(),
    ) {
        let x = gaussian(30, dim, seed | 1, |j| 0.1 + j as f32, 0.3);
        let mode = if asym { Mode::Asymmetric } else { Mode::Symmetric };
        let g = if global { Granularity::Global } else { Granularity::PerDim };
        let q = Int8Quantizer::calibrate(&x, dim, mode, g, Calibration::MinMax).unwrap();
        let codes = q.quantize_vec(&x).unwrap();
        let again = q.quantize_vec(&q.dequantize_vec(&codes).unwrap()).unwrap();
        prop_assert_eq!(codes, again);
    }
}
