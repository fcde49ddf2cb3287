//! Activations beyond GELU: `tanh`, which BERT's pooler applies to the
//! first token's projected state before a classification head.
//!
//! The loop is plain `f32::tanh` over parallel chunks rather than a SIMD
//! kernel: the pooler runs it on `[B, C]`, a few thousand values per batch,
//! where the transformer's matrix products dominate by orders of magnitude.
//! The backward reads the saved output, `d tanh(x) / dx = 1 - tanh(x)^2`, so
//! nothing extra is kept on the tape.

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, Op, Var};
use crate::error::Result;
use crate::ops::CHUNK;

impl Graph {
    /// `tanh(x)`, elementwise.
    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(shape.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        self.rt.install(|| {
            o.par_chunks_mut(CHUNK).zip(xv.par_chunks(CHUNK)).for_each(|(o, x)| {
                o.iter_mut().zip(x).for_each(|(o, &x)| *o = x.tanh());
            })
        });
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::Tanh { x: x.0 }, rg))
    }
}

/// `dx += dy * (1 - y^2)` with `y` the node's own output.
pub(crate) fn tanh_backward(g: &mut Graph, i: usize, x: usize, dy: &[f32]) -> Result<()> {
    let (yv, dx) = g.value_and_grad(i, x);
    dx.par_chunks_mut(CHUNK).zip(yv.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK))).for_each(
        |(dx, (y, dy))| {
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *d += g * (1.0 - y * y);
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{check, GradCheck};
    use crate::tensor::Tensor;
    use crate::{Graph, Runtime};

    #[test]
    fn tanh_values_and_gradient() {
        // Values against the closed form, including saturation.
        let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
        let x = g.input_slice(&[4], &[0.0, 0.5, -2.0, 30.0]).unwrap();
        let y = g.tanh(x).unwrap();
        let v = g.value(y).unwrap().as_f32().unwrap();
        assert_eq!(v[0], 0.0);
        assert!((v[1] - 0.462_117_16).abs() < 1e-6);
        assert!((v[2] + 0.964_027_6).abs() < 1e-6);
        assert_eq!(v[3], 1.0);

        // d/dx sum(w * tanh(x)) = w (1 - tanh(x)^2), by finite differences,
        // on values spread across the curved part.
        let xs: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.2).collect();
        let t = Tensor::from_vec(&[4, 6], xs).unwrap();
        let report = check(&[t], &GradCheck::default(), |g, v| g.tanh(v[0])).unwrap();
        assert!(report.ok(), "{:?}", report.mismatches);
    }
}
