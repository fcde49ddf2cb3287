//! Every int8 GEMM tier against the scalar reference.
//!
//! Integer sums must match bit for bit on every tier variant this CPU runs
//! (VNNI and dotprod masked too), for shapes from empty to several tiles,
//! odd k, both B layouts, padded leading dimensions and offset slices. The
//! f32 epilogue is checked against an f64 evaluation of
//! `sa sb sum_p (a - za)(b - zb) + bias` within [`F32_TOL`].

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::int8::{
    self, scalar, AView, BLayout, Epilogue, Int8Error, PackedB, Per, MAX_K,
};
use proptest::prelude::*;

/// Relative tolerance of the f32 epilogue: the i32 to f32 conversion and
/// two products round, each within half an ulp (2^-24).
const F32_TOL: f64 = 1e-6;

/// One int8 problem, A signed or unsigned, B in either layout.
#[derive(Clone)]
struct Case {
    fill: Fill,
    seed: u64,
    m: usize,
    n: usize,
    k: usize,
    signed: bool,
    transposed_b: bool,
    /// Extra elements past each row (leading dimension minus row length).
    pad: usize,
    /// Elements before the first one, so starts are unaligned.
    offset: usize,
    a: Vec<u8>,
    b: Vec<i8>,
}

/// Shape and provenance only: the bytes follow from `fill` and `seed`.
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Case { m, n, k, signed, transposed_b, pad, offset, fill, seed, .. } = self;
        write!(
            f,
            "m={m} n={n} k={k} signed={signed} transposed_b={transposed_b} pad={pad} \
             offset={offset} {fill:?} seed={seed}"
        )
    }
}

impl Case {
    fn lda(&self) -> usize {
        self.k + self.pad
    }

    fn b_layout(&self) -> BLayout {
        if self.transposed_b {
            BLayout::NByK { ldw: self.k + self.pad }
        } else {
            BLayout::KByN { ldb: self.n + self.pad }
        }
    }

    /// A as a view; signed cases reinterpret the same bytes as i8.
    fn view<'a>(&self, signed_buf: &'a [i8], unsigned_buf: &'a [u8]) -> AView<'a> {
        if self.signed {
            AView::i8(&signed_buf[self.offset..], self.m, self.k, self.lda()).unwrap()
        } else {
            AView::u8(&unsigned_buf[self.offset..], self.m, self.k, self.lda()).unwrap()
        }
    }

    fn b(&self) -> &[i8] {
        &self.b[self.offset..]
    }

    fn a_i8(&self) -> Vec<i8> {
        self.a.iter().map(|&v| v as i8).collect()
    }

    /// `a[i][p]` with the case's signedness.
    fn a_at(&self, i: usize, p: usize) -> i64 {
        let v = self.a[self.offset + i * self.lda() + p];
        if self.signed {
            i64::from(v as i8)
        } else {
            i64::from(v)
        }
    }

    fn b_at(&self, p: usize, j: usize) -> i64 {
        let b = self.b();
        i64::from(match self.b_layout() {
            BLayout::KByN { ldb } => b[p * ldb + j],
            BLayout::NByK { ldw } => b[j * ldw + p],
        })
    }
}

/// How the bytes of A and B are drawn.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Random,
    /// A at its largest magnitude, B all 127 or all -128: every adjacent
    /// pair is 255 * 127 * 2 or 255 * -128 * 2 (or -128 * -128 * 2 signed).
    Extreme {
        b_max: bool,
        a_min: bool,
    },
}

#[allow(clippy::too_many_arguments)]
fn build(
    m: usize,
    n: usize,
    k: usize,
    signed: bool,
    tb: bool,
    pad: usize,
    offset: usize,
    fill: Fill,
    seed: u64,
) -> Case {
    let (rows_b, cols_b) = if tb { (n, k) } else { (k, n) };
    let a_len = offset + m * (k + pad);
    let b_len = offset + rows_b * (cols_b + pad);
    let mut s = seed | 1;
    let mut next = move || {
        // xorshift64: reproducible bytes from the proptest seed.
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 24) as u8
    };
    let (a, b) = match fill {
        Fill::Random => {
            ((0..a_len).map(|_| next()).collect(), (0..b_len).map(|_| next() as i8).collect())
        }
        Fill::Extreme { b_max, a_min } => {
            let av = if signed && a_min {
                0x80u8
            } else if signed {
                0x7f
            } else {
                0xff
            };
            let bv = if b_max { 127i8 } else { -128 };
            (vec![av; a_len], vec![bv; b_len])
        }
    };
    Case { fill, seed, m, n, k, signed, transposed_b: tb, pad, offset, a, b }
}

/// Raw sums of every tier (packed and unpacked entry points) against the
/// reference, bit for bit.
fn check_i32(case: &Case) {
    let (m, n) = (case.m, case.n);
    let (sa, ua) = (case.a_i8(), case.a.clone());
    let a = case.view(&sa, &ua);
    let ldc = n + 3;
    let len = if m == 0 { 0 } else { (m - 1) * ldc + n };
    let mut want = vec![i32::MIN; len];
    scalar::gemm_i32(a, case.b(), n, case.b_layout(), &mut want, ldc).unwrap();

    // Spot-check the reference itself against i64 sums.
    for (i, j) in [(0, 0), (m.saturating_sub(1), n.saturating_sub(1))] {
        if i < m && j < n {
            let exact: i64 = (0..case.k).map(|p| case.a_at(i, p) * case.b_at(p, j)).sum();
            assert_eq!(i64::from(want[i * ldc + j]), exact, "reference at ({i}, {j})");
        }
    }

    let packed = PackedB::new(case.k, n, case.b(), case.b_layout()).unwrap();
    for tier in Tier::all_variants() {
        let mut got = vec![i32::MIN; len];
        int8::gemm_i32_with(tier, a, &packed, &mut got, ldc).unwrap();
        for i in 0..m {
            let (w, g) = (&want[i * ldc..][..n], &got[i * ldc..][..n]);
            assert_eq!(g, w, "tier {tier} ({}), row {i} of {case:?}", int8::kernel_name(tier));
        }
        let mut got2 = vec![i32::MIN; len];
        int8::gemm_i32_unpacked_with(tier, a, case.b(), n, case.b_layout(), &mut got2, ldc)
            .unwrap();
        assert_eq!(got, got2, "tier {tier}: packed and unpacked entry points differ");
    }
}

/// Zero points and scales for a case: per row / per column or uniform.
struct Quant {
    sa: Vec<f32>,
    za: Vec<i32>,
    sb: Vec<f32>,
    zb: Vec<i32>,
    bias: Vec<f32>,
}

fn quant(case: &Case, seed: u64) -> Quant {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |lo: i32, hi: i32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lo + (x % (hi - lo + 1) as u64) as i32
    };
    let (alo, ahi) = if case.signed { (-128, 127) } else { (0, 255) };
    Quant {
        sa: (0..case.m).map(|_| next(1, 1000) as f32 * 1e-4).collect(),
        za: (0..case.m).map(|_| next(alo, ahi)).collect(),
        sb: (0..case.n).map(|_| next(1, 1000) as f32 * 1e-3).collect(),
        zb: (0..case.n).map(|_| next(-128, 127)).collect(),
        bias: (0..case.n).map(|_| next(-500, 500) as f32 * 0.01).collect(),
    }
}

/// The f32 epilogue of every tier against f64 arithmetic, within
/// [`F32_TOL`], with per-row/per-column or uniform terms.
fn check_f32(case: &Case, q: &Quant, per: bool, with_bias: bool) {
    let (m, n, k) = (case.m, case.n, case.k);
    let (sa, ua) = (case.a_i8(), case.a.clone());
    let a = case.view(&sa, &ua);
    let ep = if per {
        Epilogue {
            a_scale: Per::Each(&q.sa),
            a_zero: Per::Each(&q.za),
            b_scale: Per::Each(&q.sb),
            b_zero: Per::Each(&q.zb),
            bias: with_bias.then_some(&q.bias[..]),
        }
    } else {
        Epilogue {
            a_scale: Per::All(0.01),
            a_zero: Per::All(if case.signed { -3 } else { 128 }),
            b_scale: Per::All(0.02),
            b_zero: Per::All(0),
            bias: with_bias.then_some(&q.bias[..]),
        }
    };
    let term = |i: usize, j: usize| -> (f64, f64) {
        let (sa, za, sb, zb) = if per {
            (q.sa[i], q.za[i], q.sb[j], q.zb[j])
        } else {
            (0.01, if case.signed { -3 } else { 128 }, 0.02, 0)
        };
        let dot: i64 = (0..k)
            .map(|p| (case.a_at(i, p) - i64::from(za)) * (case.b_at(p, j) - i64::from(zb)))
            .sum();
        let bias = if with_bias { f64::from(q.bias[j]) } else { 0.0 };
        let prod = f64::from(sa) * f64::from(sb) * dot as f64;
        (prod + bias, prod.abs() + bias.abs())
    };
    let ldc = n + 1;
    let len = if m == 0 { 0 } else { (m - 1) * ldc + n };
    let mut reference = vec![f32::NAN; len];
    scalar::gemm_f32(a, case.b(), n, case.b_layout(), &ep, &mut reference, ldc).unwrap();
    let packed = PackedB::new(k, n, case.b(), case.b_layout()).unwrap();
    for tier in Tier::all_variants() {
        let mut got = vec![f32::NAN; len];
        int8::gemm_f32_with(tier, a, &packed, &ep, &mut got, ldc).unwrap();
        for i in 0..m {
            for j in 0..n {
                let (want, mag) = term(i, j);
                let tol = F32_TOL * mag + 1e-30;
                for (what, v) in [("tier", got[i * ldc + j]), ("reference", reference[i * ldc + j])]
                {
                    let err = (f64::from(v) - want).abs();
                    assert!(
                        err <= tol,
                        "{what} {tier}: ({i}, {j}) = {v}, want {want} (err {err:e}) in {case:?}"
                    );
                }
            }
        }
    }
}

fn dims() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(2),
        Just(3),
        Just(5),
        Just(7),
        Just(13),
        Just(17),
        Just(31),
        0usize..70
    ]
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        4 => Just(Fill::Random),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(b_max, a_min)| Fill::Extreme { b_max, a_min }),
    ]
}

proptest! {
    #[test]
    fn i32_matches_reference(
        m in dims(), n in dims(), k in dims(), signed in any::<bool>(), tb in any::<bool>(),
        pad in 0usize..3, offset in 0usize..5, fill in fill(), seed in any::<u64>(),
    ) {
        check_i32(&build(m, n, k, signed, tb, pad, offset, fill, seed));
    }

    #[test]
    fn f32_matches_f64(
        m in dims(), n in dims(), k in dims(), signed in any::<bool>(), tb in any::<bool>(),
        per in any::<bool>(), bias in any::<bool>(), offset in 0usize..5, fill in fill(),
        seed in any::<u64>(),
    ) {
        let case = build(m, n, k, signed, tb, 1, offset, fill, seed);
        check_f32(&case, &quant(&case, seed), per, bias);
    }
}

/// The pairs that saturate `vpmaddubsw`: 255 * 127 * 2 and 255 * -128 * 2,
/// plus -128 * -128 for signed A, at odd and even k, every column tail.
#[test]
fn worst_case_pairs_are_exact() {
    for signed in [false, true] {
        for (b_max, a_min) in [(true, false), (false, false), (true, true), (false, true)] {
            for (m, n, k) in [(9, 33, 64), (7, 17, 131), (1, 1, 2), (25, 47, 257)] {
                let case = build(m, n, k, signed, false, 0, 1, Fill::Extreme { b_max, a_min }, 1);
                check_i32(&case);
                // The sum itself, written out: every product is a * b.
                let (sa, ua) = (case.a_i8(), case.a.clone());
                let mut c = vec![0i32; m * n];
                int8::gemm_i32(
                    case.view(&sa, &ua),
                    &PackedB::new(k, n, case.b(), case.b_layout()).unwrap(),
                    &mut c,
                    n,
                )
                .unwrap();
                let want = (case.a_at(0, 0) * case.b_at(0, 0) * k as i64) as i32;
                assert!(c.iter().all(|&v| v == want), "expected {want} everywhere");
            }
        }
    }
}

/// Every small shape once, both signs and layouts.
#[test]
fn shape_sweep() {
    let sizes = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33];
    let mut seed = 7;
    for &m in &sizes {
        for &n in &sizes {
            for &k in &[0, 1, 3, 4, 5, 8, 13, 33] {
                seed += 1;
                check_i32(&build(
                    m,
                    n,
                    k,
                    seed % 2 == 0,
                    seed % 3 == 0,
                    (seed % 3) as usize,
                    (seed % 5) as usize,
                    Fill::Random,
                    seed,
                ));
            }
        }
    }
}

/// Large enough to split across threads; checked under pools of 1 to 3
/// threads so that chunk edges land on different rows.
#[test]
fn parallel_split_matches_reference() {
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let case = build(203, 70, 190, false, true, 0, 3, Fill::Random, threads as u64);
            check_i32(&case);
            check_f32(&case, &quant(&case, 5), true, true);
        });
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let a = vec![1u8; 4 * 6];
    let b = vec![1i8; 6 * 5];
    let view = AView::u8(&a, 4, 6, 6).unwrap();
    let packed = PackedB::new(6, 5, &b, BLayout::KByN { ldb: 5 }).unwrap();

    // Short slices and strides below a row.
    assert!(matches!(
        AView::u8(&a, 5, 6, 6),
        Err(Int8Error::OutOfBounds { needed: 30, len: 24, .. })
    ));
    assert!(matches!(AView::i8(&[0i8; 24], 4, 6, 5), Err(Int8Error::Stride { ld: 5, min: 6, .. })));
    assert!(matches!(
        PackedB::new(6, 5, &b[1..], BLayout::KByN { ldb: 5 }),
        Err(Int8Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        PackedB::new(6, 5, &b, BLayout::NByK { ldw: 5 }),
        Err(Int8Error::Stride { .. })
    ));
    assert!(matches!(
        PackedB::new(MAX_K + 1, 0, &[], BLayout::KByN { ldb: 0 }),
        Err(Int8Error::TooDeep { .. })
    ));
    let mut c = vec![0i32; 19];
    assert!(matches!(
        int8::gemm_i32(view, &packed, &mut c, 5),
        Err(Int8Error::OutOfBounds { needed: 20, .. })
    ));

    // k of A against k of B.
    let other = AView::u8(&a, 3, 8, 8).unwrap();
    let mut c = vec![0i32; 20];
    assert!(matches!(
        int8::gemm_i32(other, &packed, &mut c, 5),
        Err(Int8Error::Mismatch { expected: 6, found: 8, .. })
    ));

    // Epilogue lists of the wrong length, non-finite values, zero points
    // outside the value range.
    let mut c = vec![0f32; 20];
    let mut ep = Epilogue::scales(Per::Each(&[1.0; 3]), Per::All(1.0));
    assert!(matches!(
        int8::gemm_f32(view, &packed, &ep, &mut c, 5),
        Err(Int8Error::Mismatch { expected: 4, found: 3, .. })
    ));
    ep.a_scale = Per::All(f32::NAN);
    assert!(matches!(
        int8::gemm_f32(view, &packed, &ep, &mut c, 5),
        Err(Int8Error::NonFinite { .. })
    ));
    ep.a_scale = Per::All(1.0);
    let bias = [0.0, 1.0, f32::INFINITY, 0.0, 0.0];
    ep.bias = Some(&bias);
    assert!(matches!(
        int8::gemm_f32(view, &packed, &ep, &mut c, 5),
        Err(Int8Error::NonFinite { index: 2, .. })
    ));
    ep.bias = None;
    ep.a_zero = Per::All(256);
    assert!(matches!(
        int8::gemm_f32(view, &packed, &ep, &mut c, 5),
        Err(Int8Error::ZeroPoint { value: 256, .. })
    ));
    ep.a_zero = Per::All(0);
    ep.b_zero = Per::Each(&[0, 0, 0, 0, -129]);
    assert!(matches!(
        int8::gemm_f32(view, &packed, &ep, &mut c, 5),
        Err(Int8Error::ZeroPoint { index: 4, .. })
    ));
    let signed = AView::i8(&[0i8; 24], 4, 6, 6).unwrap();
    ep.b_zero = Per::All(0);
    ep.a_zero = Per::All(128);
    assert!(matches!(
        int8::gemm_f32(signed, &packed, &ep, &mut c, 5),
        Err(Int8Error::ZeroPoint { value: 128, .. })
    ));
}
