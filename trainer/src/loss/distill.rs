//! Distillation from a teacher: its scores over candidates (a
//! cross-encoder or a larger bi-encoder) or its embeddings.
//!
//! - [`kl_distill`]: `T^2 * KL(softmax(t / Tt) || softmax(s / Ts))` per
//!   query, averaged. The gradient of the KL term in the student logits is
//!   `(softmax(s/Ts) - softmax(t/Tt)) / Ts`, which shrinks like `1/Ts^2`
//!   for soft targets; multiplying by `T^2` with `T = Ts` keeps its size
//!   independent of the temperature, so the weight against other losses
//!   need not be retuned when the temperature changes.
//! - [`margin_mse`]: the student's positive-minus-negative margin regressed
//!   onto the teacher's, `mean_ij ((sp_i - sn_ij) - (tp_i - tn_ij))^2`.
//!   It matches score differences only, so the two models' score scales
//!   may differ by an offset.
//! - [`embedding_distill`]: student rows (projected by a learned `[Ds, Dt]`
//!   matrix when the widths differ) against teacher rows, by MSE or by
//!   `1 - mean_i cos(s_i, t_i)`.
//!
//! Teacher values are host slices: they are constants of the step, so the
//! teacher's log-probabilities are computed here in f64 and enter the
//! graph as an input.

use edgecl_runtime::{init, Graph, ParamId, ParamSet, Var};

use super::{check_slice, dims2, invalid};
use crate::error::Result;

/// Name of the student-to-teacher projection parameter.
pub const PROJECTION_PARAM: &str = "distill.projection.weight";

fn check_temperature(name: &'static str, t: f32) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(invalid(name, format!("temperature {t} must be positive and finite")))
    }
}

/// `Ts^2 * mean_i KL(softmax(t_i / Tt) || softmax(s_i / Ts))` for student
/// scores `[B, C]` and teacher scores `B * C` (row-major).
pub fn kl_distill(
    g: &mut Graph,
    student_scores: Var,
    teacher_scores: &[f32],
    t_student: f32,
    t_teacher: f32,
) -> Result<Var> {
    let (b, c) = dims2(g, student_scores, "student_scores")?;
    check_slice("teacher_scores", teacher_scores, b * c)?;
    check_temperature("t_student", t_student)?;
    check_temperature("t_teacher", t_teacher)?;

    // Teacher log-probabilities, one stable log-softmax per row in f64.
    let mut logp = vec![0.0f32; b * c];
    for (row, out) in teacher_scores.chunks(c).zip(logp.chunks_mut(c)) {
        let z: Vec<f64> = row.iter().map(|&v| v as f64 / t_teacher as f64).collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for (o, v) in out.iter_mut().zip(&z) {
            *o = (v - lse) as f32;
        }
    }
    let teacher = g.input_slice(&[b, c], &logp)?;

    // Student log-probabilities at its temperature, then the KL.
    let s = g.scale(student_scores, 1.0 / t_student)?;
    let logq = g.log_softmax(s)?;
    let kl = g.kl_div(teacher, logq)?;
    Ok(g.scale(kl, t_student * t_student)?)
}

/// Margin-MSE: `mean_ij ((sp_i - sn_ij) - (tp_i - tn_ij))^2`.
/// `student_pos` is `[B]` (or `[B, 1]`), `student_neg` `[B, k]` or `[B]`
/// (k = 1); the teacher slices are `B` and `B * k` values.
pub fn margin_mse(
    g: &mut Graph,
    student_pos: Var,
    student_neg: Var,
    teacher_pos: &[f32],
    teacher_neg: &[f32],
) -> Result<Var> {
    let b = match *g.dims(student_pos)? {
        [b] | [b, 1] if b > 0 => b,
        ref d => return Err(invalid("student_pos", format!("expected [B] or [B, 1], got {d:?}"))),
    };
    let k = match *g.dims(student_neg)? {
        [r] if r == b => 1,
        [r, k] if r == b && k > 0 => k,
        ref d => {
            return Err(invalid("student_neg", format!("expected [{b}, k] or [{b}], got {d:?}")))
        }
    };
    check_slice("teacher_pos", teacher_pos, b)?;
    check_slice("teacher_neg", teacher_neg, b * k)?;

    // Student margins [B, k]: the positive column broadcast against the
    // negatives.
    let sp = g.reshape(student_pos, &[b, 1])?;
    let sn = g.reshape(student_neg, &[b, k])?;
    let neg = g.scale(sn, -1.0)?;
    let margins = g.add(neg, sp)?;

    // Teacher margins, a constant [B, k].
    let mut t = vec![0.0f32; b * k];
    for i in 0..b {
        for j in 0..k {
            t[i * k + j] = teacher_pos[i] - teacher_neg[i * k + j];
        }
    }
    let t = g.input_slice(&[b, k], &t)?;
    Ok(g.mse(margins, t)?)
}

/// How [`embedding_distill`] compares rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingDistill {
    /// Mean squared error over all elements.
    Mse,
    /// `1 - mean_i cos(s_i, t_i)`.
    Cosine,
}

/// Registers the `[ds, dt]` projection for students narrower or wider
/// than the teacher, initialised `N(0, 1/ds)` (unit-variance outputs for
/// unit-variance inputs), with weight decay.
pub fn add_projection_param(
    params: &mut ParamSet,
    ds: usize,
    dt: usize,
    seed: u64,
) -> Result<ParamId> {
    if ds == 0 || dt == 0 {
        return Err(invalid("ds/dt", format!("projection [{ds}, {dt}] must be non-empty")));
    }
    let w = init::normal(&[ds, dt], 1.0 / (ds as f32).sqrt(), seed, 0)?;
    Ok(params.add(PROJECTION_PARAM, w, true)?)
}

/// Student embeddings `[B, Ds]` against teacher rows `B * Dt`. With
/// `Ds != Dt` a projection (from [`add_projection_param`]) is required;
/// with equal widths it is optional.
pub fn embedding_distill(
    g: &mut Graph,
    student: Var,
    teacher: &[f32],
    kind: EmbeddingDistill,
    projection: Option<ParamId>,
) -> Result<Var> {
    let (b, ds) = dims2(g, student, "student")?;
    let s = match projection {
        Some(id) => {
            let w = g.param(id);
            match *g.dims(w)? {
                [r, _] if r == ds => g.matmul(student, w)?,
                ref d => {
                    return Err(invalid("projection", format!("expected [{ds}, Dt], got {d:?}")))
                }
            }
        }
        None => student,
    };
    let dt = g.dims(s)?[1];
    if teacher.len() != b * dt {
        let why = match projection {
            None => format!("{} values for {b} rows of student width {ds}", teacher.len()),
            Some(_) => format!("{} values for {b} rows of projected width {dt}", teacher.len()),
        };
        return Err(invalid("teacher", why));
    }
    check_slice("teacher", teacher, b * dt)?;

    match kind {
        EmbeddingDistill::Mse => {
            let t = g.input_slice(&[b, dt], teacher)?;
            Ok(g.mse(s, t)?)
        }
        EmbeddingDistill::Cosine => {
            // Teacher rows normalised on the host; the student's in graph.
            let mut tn = teacher.to_vec();
            for row in tn.chunks_mut(dt) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            }
            let t = g.input_slice(&[b, dt], &tn)?;
            let sn = g.l2_normalize(s, 1e-12)?;
            let prod = g.mul(sn, t)?;
            let total = g.sum(prod)?;
            let mean_cos = g.scale(total, -1.0 / b as f32)?;
            let one = g.input_slice(&[], &[1.0])?;
            Ok(g.add(one, mean_cos)?)
        }
    }
}
