//! Scalar references for the search kernels: plain loops over rows, exact
//! integer arithmetic, f32 summed left to right. Every SIMD tier is tested
//! against these, and they are the `scalar` tier itself.
//!
//! Shapes are checked by the callers in the parent module; here
//! `codes.len() == out.len() * query.len()` (likewise for `rows`) and the
//! query is non-empty.

/// `out[i] = popcount(query ^ codes[i])`, codes of `query.len()` words.
pub fn hamming(query: &[u64], codes: &[u64], out: &mut [u32]) {
    for (code, o) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = query.iter().zip(code).map(|(a, b)| (a ^ b).count_ones()).sum();
    }
}

/// `out[i] = sum_j query[j] * rows[i][j]` in i32.
pub fn dot_i8(query: &[i8], rows: &[i8], out: &mut [i32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = query.iter().zip(row).map(|(&a, &b)| a as i32 * b as i32).sum();
    }
}

/// `out[i] = sum_j (query[j] - rows[i][j])^2` in u32.
pub fn l2sq_i8(query: &[i8], rows: &[i8], out: &mut [u32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = query
            .iter()
            .zip(row)
            .map(|(&a, &b)| {
                let d = a as i32 - b as i32;
                (d * d) as u32
            })
            .sum();
    }
}

/// `out[i] = sum_j query[j] * rows[i][j]` in f32.
pub fn dot_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = query.iter().zip(row).map(|(a, b)| a * b).sum();
    }
}

/// `out[i] = sum_j (query[j] - rows[i][j])^2` in f32.
pub fn l2sq_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = query
            .iter()
            .zip(row)
            .map(|(a, b)| {
                let d = a - b;
                d * d
            })
            .sum();
    }
}
