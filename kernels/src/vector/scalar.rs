//! Reference vector kernels: straightforward loops, f32 throughout except
//! where a wider accumulator is noted. The SIMD tiers are tested against
//! these, and the scalar tier runs them.
//!
//! exp, erf and GELU here are not the SIMD polynomials: [`exp`] is the
//! standard library's `f32::exp` (correctly rounded in practice, gradual
//! underflow), and [`erf_slice`], [`gelu`] and [`gelu_backward`] evaluate
//! [`erf`] in f64. They are slower than the tiers' approximations and more
//! accurate, which is what a reference should be.

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

pub fn scale(alpha: f32, x: &mut [f32]) {
    for xi in x {
        *xi *= alpha;
    }
}

pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

pub fn sub(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x - y;
    }
}

/// `a * b + c`, rounded twice (the SIMD tiers fuse it and round once).
pub fn mul_add(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
    for i in 0..out.len() {
        out[i] = a[i] * b[i] + c[i];
    }
}

pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}

pub fn sum(x: &[f32]) -> f32 {
    x.iter().sum()
}

pub fn sum_sq(x: &[f32]) -> f32 {
    x.iter().map(|v| v * v).sum()
}

pub fn max(x: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for &v in x {
        if v.is_nan() {
            return f32::NAN;
        }
        if v > m {
            m = v;
        }
    }
    m
}

pub fn softmax(x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    let m = max(x);
    let mut s = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    let inv = 1.0 / s;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `dx += y * (dy - sum_j y[j] dy[j])`, the softmax input gradient with the
/// dot product in f64.
pub fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let d: f64 = y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
    for i in 0..y.len() {
        dx[i] += (y[i] as f64 * (dy[i] as f64 - d)) as f32;
    }
}

/// Mean and variance are accumulated in f64 so the reference is closer to
/// exact than any tier it checks.
pub fn layernorm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let rstd = 1.0 / (var + eps as f64).sqrt();
    for i in 0..x.len() {
        let xhat = (x[i] as f64 - mean) * rstd;
        out[i] = (xhat * gamma[i] as f64 + beta[i] as f64) as f32;
    }
    (mean as f32, rstd as f32)
}

#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    rstd: f32,
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let mut mean_g = 0.0f64;
    let mut mean_gx = 0.0f64;
    for i in 0..n {
        let xhat = ((x[i] - mean) * rstd) as f64;
        let g = (dy[i] * gamma[i]) as f64;
        mean_g += g;
        mean_gx += g * xhat;
    }
    mean_g /= n as f64;
    mean_gx /= n as f64;
    for i in 0..n {
        let xhat = (x[i] - mean) * rstd;
        let g = (dy[i] * gamma[i]) as f64;
        dx[i] += (rstd as f64 * (g - mean_g - xhat as f64 * mean_gx)) as f32;
        dgamma[i] += dy[i] * xhat;
        dbeta[i] += dy[i];
    }
}

/// erf by Abramowitz and Stegun 7.1.26 is too coarse (1.5e-7 absolute is
/// fine, but its relative error near 0 is poor); this uses the f64 series /
/// continued fraction through `libm`-free code: W. J. Cody's rational
/// approximations as in most C libraries, evaluated in f64.
pub fn erf(x: f64) -> f64 {
    // Cody (1969), three ranges; maximal relative error ~1e-16 in f64 use.
    // NaN fails every range test below, so it is caught here.
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 0.5 {
        const P: [f64; 5] = [
            3.209_377_589_138_469_4e3,
            3.774_852_376_853_02e2,
            1.138_641_541_510_501_6e2,
            3.161_123_743_870_565_6,
            1.857_777_061_846_031_5e-1,
        ];
        const Q: [f64; 5] = [
            2.844_236_833_439_171e3,
            1.282_616_526_077_372_3e3,
            2.440_246_379_344_441_7e2,
            2.360_129_095_234_412_1e1,
            1.0,
        ];
        let z = x * x;
        let num = P[0] + z * (P[1] + z * (P[2] + z * (P[3] + z * P[4])));
        let den = Q[0] + z * (Q[1] + z * (Q[2] + z * (Q[3] + z * Q[4])));
        return x * num / den;
    } else if ax < 4.0 {
        const P: [f64; 9] = [
            1.230_339_354_797_997_2e3,
            2.051_078_377_826_071_6e3,
            1.712_047_612_634_070_7e3,
            8.819_522_212_417_69e2,
            2.986_351_381_974_001e2,
            6.611_919_063_714_163e1,
            8.883_149_794_388_376,
            5.641_884_969_886_701e-1,
            2.153_115_354_744_038_3e-8,
        ];
        const Q: [f64; 9] = [
            1.230_339_354_803_749_4e3,
            3.439_367_674_143_721_6e3,
            4.362_619_090_143_247e3,
            3.290_799_235_733_459_7e3,
            1.621_389_574_566_690_3e3,
            5.371_811_018_620_099e2,
            1.176_939_508_913_125e2,
            1.574_492_611_070_983_3e1,
            1.0,
        ];
        let mut num = P[8];
        let mut den = Q[8];
        for i in (0..8).rev() {
            num = num * ax + P[i];
            den = den * ax + Q[i];
        }
        let erfc = (-ax * ax).exp() * num / den;
        1.0 - erfc
    } else if ax < 27.0 {
        const P: [f64; 6] = [
            -6.587_491_615_298_378e-4,
            -1.608_378_514_874_227_5e-2,
            -1.257_817_261_112_292_6e-1,
            -3.603_448_999_498_044_5e-1,
            -3.053_266_349_612_323_4e-1,
            -1.631_538_713_730_209_7e-2,
        ];
        const Q: [f64; 6] = [
            2.335_204_976_268_691_8e-3,
            6.051_834_131_244_132e-2,
            5.279_051_029_514_284e-1,
            1.872_952_849_923_460_4,
            2.568_520_192_289_822,
            1.0,
        ];
        let z = 1.0 / (ax * ax);
        let mut num = P[5];
        let mut den = Q[5];
        for i in (0..5).rev() {
            num = num * z + P[i];
            den = den * z + Q[i];
        }
        let frac = z * num / den;
        const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
        let erfc = (-ax * ax).exp() / ax * (FRAC_1_SQRT_PI + frac);
        1.0 - erfc
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// `out[i] = erf(x[i])` through the f64 [`erf`].
pub fn erf_slice(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = erf(v as f64) as f32;
    }
}

pub fn gelu(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let v = v as f64;
        *o = (0.5 * v * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2))) as f32;
    }
}

pub fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    for i in 0..x.len() {
        let v = x[i] as f64;
        let cdf = 0.5 * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2));
        let pdf = INV_SQRT_2PI * (-0.5 * v * v).exp();
        dx[i] += (dy[i] as f64 * (cdf + v * pdf)) as f32;
    }
}

pub fn exp(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.exp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_known_values() {
        // Values from tables of erf to 15 digits.
        let cases = [
            (0.0, 0.0),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
            (5.0, 0.999_999_999_998_462_5),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {} want {want}", erf(x));
            assert!((erf(-x) + want).abs() < 1e-14);
        }
    }

    #[test]
    fn softmax_sums_to_one_and_is_shift_invariant() {
        let mut a = vec![1.0f32, 2.0, 3.0, -1.0];
        let mut b: Vec<f32> = a.iter().map(|v| v + 100.0).collect();
        softmax(&mut a);
        softmax(&mut b);
        assert!((a.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}
