//! A memory bank of recent document embeddings (MoCo-style) and an
//! exponential moving average of parameters for a momentum encoder.
//!
//! [`MemoryBank`] is a fixed-capacity FIFO of `[dim]` rows. Once full, a
//! push overwrites the oldest rows in place, so the storage is a ring and
//! [`MemoryBank::as_slice`] returns the rows in storage order, not age
//! order: InfoNCE treats extra negatives as a set, so order does not
//! matter, and the ring saves a memmove of the whole bank per step. The
//! caller puts the slice into the graph as a constant row block after the
//! batch's documents (`Graph::input_slice` then `Graph::concat_rows`);
//! bank rows carry no gradient, which is the point of a bank.
//!
//! Stale rows come from an older encoder; MoCo keeps them consistent by
//! encoding documents with a slowly moving copy of the model. [`Ema`]
//! keeps that copy: `shadow = decay * shadow + (1 - decay) * online` per
//! element after every optimizer step, matched to the online parameters
//! by name. It writes into a [`ParamSet`] of the same model (the momentum
//! graph's) rather than owning a second model type.

use edgecl_runtime::{ParamSet, Tensor};

use crate::error::{Result, TrainerError};

fn invalid(name: &'static str, reason: String) -> TrainerError {
    TrainerError::InvalidArgument { name, reason }
}

/// A FIFO of the most recent `capacity` embedding rows.
#[derive(Clone, Debug)]
pub struct MemoryBank {
    capacity: usize,
    dim: usize,
    /// `rows * dim` values; grows to `capacity * dim`, then stays.
    data: Vec<f32>,
    /// Row the next push writes once the bank is full (the oldest row).
    next: usize,
}

impl MemoryBank {
    /// An empty bank of up to `capacity` rows of width `dim`.
    pub fn new(capacity: usize, dim: usize) -> Result<MemoryBank> {
        if capacity == 0 || dim == 0 {
            return Err(invalid("capacity/dim", format!("bank [{capacity}, {dim}] is empty")));
        }
        Ok(MemoryBank { capacity, dim, data: Vec::new(), next: 0 })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Rows held (at most the capacity).
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Whether the bank holds `capacity` rows.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity
    }

    /// Appends row-major rows (a multiple of `dim` values, all finite),
    /// dropping the oldest beyond the capacity. Pushing more than the
    /// capacity at once keeps the last `capacity` rows.
    pub fn push(&mut self, rows: &[f32]) -> Result<()> {
        if !rows.len().is_multiple_of(self.dim) {
            return Err(invalid(
                "rows",
                format!("{} values are not whole rows of width {}", rows.len(), self.dim),
            ));
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(invalid("rows", format!("value {i} is {}", rows[i])));
        }
        // Only the last `capacity` rows can survive.
        let skip = (rows.len() / self.dim).saturating_sub(self.capacity);
        for row in rows.chunks(self.dim).skip(skip) {
            if !self.is_full() {
                self.data.extend_from_slice(row);
                continue;
            }
            let at = self.next * self.dim;
            self.data[at..at + self.dim].copy_from_slice(row);
            self.next = (self.next + 1) % self.capacity;
        }
        Ok(())
    }

    /// The rows, row-major, in storage order (see the module doc).
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The row the next push overwrites once the bank is full (0 while
    /// it fills). With [`MemoryBank::as_slice`] this is the whole state a
    /// checkpoint needs.
    pub fn write_position(&self) -> usize {
        self.next
    }

    /// Refills the bank from a checkpoint: `rows` as [`MemoryBank::as_slice`]
    /// returned them and the [`MemoryBank::write_position`] of that time.
    pub fn restore(&mut self, rows: &[f32], write_position: usize) -> Result<()> {
        let n = rows.len() / self.dim;
        if !rows.len().is_multiple_of(self.dim) || n > self.capacity {
            return Err(invalid(
                "rows",
                format!(
                    "{} values are not at most {} rows of width {}",
                    rows.len(),
                    self.capacity,
                    self.dim
                ),
            ));
        }
        // A ring that has not filled up has not wrapped either.
        if write_position >= self.capacity || (n < self.capacity && write_position != 0) {
            return Err(invalid(
                "write_position",
                format!("{write_position} with {n} of {} rows held", self.capacity),
            ));
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(invalid("rows", format!("value {i} is {}", rows[i])));
        }
        self.data.clear();
        self.data.extend_from_slice(rows);
        self.next = write_position;
        Ok(())
    }

    /// Empties the bank (after the encoder changed too much, e.g. on a
    /// resume from an older checkpoint).
    pub fn clear(&mut self) {
        self.data.clear();
        self.next = 0;
    }
}

/// An exponential moving average of a parameter set.
#[derive(Clone, Debug)]
pub struct Ema {
    decay: f32,
    /// `(name, values)` in the online set's registration order.
    shadow: Vec<(String, Vec<f32>)>,
}

impl Ema {
    /// Starts the average at the online parameters' current values.
    /// `decay` is in [0, 1): 0 copies the online model every step, values
    /// near 1 (MoCo uses 0.999) move slowly.
    pub fn new(decay: f32, online: &ParamSet) -> Result<Ema> {
        if !(0.0..1.0).contains(&decay) {
            return Err(invalid("decay", format!("{decay} is not in [0, 1)")));
        }
        let mut shadow = Vec::with_capacity(online.len());
        for p in online.iter() {
            shadow.push((p.name().to_string(), p.value().to_vec_f32()?));
        }
        Ok(Ema { decay, shadow })
    }

    pub fn decay(&self) -> f32 {
        self.decay
    }

    /// `shadow = decay * shadow + (1 - decay) * online`, parameter by
    /// parameter. The online set must have the same names and sizes as the
    /// one the average started from.
    pub fn update(&mut self, online: &ParamSet) -> Result<()> {
        self.check_layout(online)?;
        let (a, b) = (self.decay, 1.0 - self.decay);
        for ((_, s), p) in self.shadow.iter_mut().zip(online.iter()) {
            let v = p.value().as_f32()?;
            s.iter_mut().zip(v).for_each(|(s, &v)| *s = a * *s + b * v);
        }
        Ok(())
    }

    /// The averaged values of a parameter by name.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.shadow.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Writes the averages into `target` (the momentum encoder's set, same
    /// names and sizes). Call before building the momentum graph's tape.
    pub fn write_into(&self, target: &mut ParamSet) -> Result<()> {
        self.check_layout(target)?;
        for (name, values) in &self.shadow {
            let id = target.id(name)?;
            // In place when nothing shares the storage, else a fresh tensor.
            if let Ok(dst) = target.get_mut(id).value_mut().as_f32_mut() {
                dst.copy_from_slice(values);
                continue;
            }
            let dims = target.get(id).value().dims().to_vec();
            target.set_value(id, Tensor::from_vec(&dims, values.clone())?)?;
        }
        Ok(())
    }

    fn check_layout(&self, set: &ParamSet) -> Result<()> {
        if set.len() != self.shadow.len() {
            return Err(invalid(
                "params",
                format!("{} parameters, the average holds {}", set.len(), self.shadow.len()),
            ));
        }
        for ((name, s), p) in self.shadow.iter().zip(set.iter()) {
            if p.name() != name || p.value().numel() != s.len() {
                return Err(invalid(
                    "params",
                    format!(
                        "parameter {:?} ({} values) where the average has {name:?} ({})",
                        p.name(),
                        p.value().numel(),
                        s.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(bank: &MemoryBank) -> Vec<Vec<f32>> {
        let mut r: Vec<Vec<f32>> =
            bank.as_slice().chunks(bank.dim()).map(<[f32]>::to_vec).collect();
        r.sort_by(|a, b| a[0].total_cmp(&b[0]));
        r
    }

    #[test]
    fn bank_keeps_the_most_recent_rows() {
        let mut bank = MemoryBank::new(3, 2).unwrap();
        assert!(bank.is_empty());
        bank.push(&[1.0, 1.0, 2.0, 2.0]).unwrap();
        assert_eq!(bank.len(), 2);
        bank.push(&[3.0, 3.0, 4.0, 4.0]).unwrap();
        // Row 1 was the oldest and is gone.
        assert!(bank.is_full());
        assert_eq!(rows(&bank), [[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]);
        bank.push(&[5.0, 5.0]).unwrap();
        assert_eq!(rows(&bank), [[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]);
        // More than the capacity at once: only the last three survive.
        bank.push(&[6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0]).unwrap();
        assert_eq!(rows(&bank), [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]]);
        assert_eq!(bank.as_slice().len(), 6);
        bank.clear();
        assert!(bank.is_empty());
    }

    #[test]
    fn restore_continues_exactly() {
        let mut a = MemoryBank::new(3, 1).unwrap();
        a.push(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let mut b = MemoryBank::new(3, 1).unwrap();
        b.restore(a.as_slice(), a.write_position()).unwrap();
        // Both evict the same row next.
        a.push(&[6.0]).unwrap();
        b.push(&[6.0]).unwrap();
        assert_eq!(a.as_slice(), b.as_slice());
        // Only 3, 4, 5 were kept; row 0 (holding 3) was the oldest and
        // took 6.
        assert_eq!(a.as_slice(), [6.0, 4.0, 5.0]);
        assert!(b.restore(&[1.0, 2.0], 1).is_err(), "a partial ring has not wrapped");
        assert!(b.restore(&[1.0, 2.0, 3.0], 3).is_err());
        assert!(b.restore(&[1.0; 4], 0).is_err());
    }

    #[test]
    fn bank_refuses_bad_rows() {
        let mut bank = MemoryBank::new(2, 2).unwrap();
        assert!(bank.push(&[1.0, 2.0, 3.0]).is_err());
        assert!(bank.push(&[1.0, f32::NAN]).is_err());
        assert!(bank.is_empty(), "a refused push changes nothing");
        assert!(MemoryBank::new(0, 2).is_err());
    }

    fn set(values: &[f32]) -> ParamSet {
        let mut ps = ParamSet::new();
        ps.add("w", Tensor::from_vec(&[values.len()], values.to_vec()).unwrap(), true).unwrap();
        ps
    }

    #[test]
    fn ema_moves_towards_the_online_values() {
        let mut ema = Ema::new(0.9, &set(&[0.0, 10.0])).unwrap();
        ema.update(&set(&[1.0, 0.0])).unwrap();
        // 0.9 * 0 + 0.1 * 1, 0.9 * 10 + 0.1 * 0.
        let w = ema.get("w").unwrap();
        assert!((w[0] - 0.1).abs() < 1e-6 && (w[1] - 9.0).abs() < 1e-6);
        // Repeated updates converge geometrically: error 0.9^n.
        for _ in 0..99 {
            ema.update(&set(&[1.0, 0.0])).unwrap();
        }
        let w = ema.get("w").unwrap();
        assert!((w[0] - 1.0).abs() < 1e-4 && w[1].abs() < 1e-3);

        let mut target = set(&[0.0, 0.0]);
        ema.write_into(&mut target).unwrap();
        let v = target.get(target.id("w").unwrap()).value().to_vec_f32().unwrap();
        assert_eq!(v, ema.get("w").unwrap());

        // A different layout is refused.
        assert!(ema.update(&set(&[1.0])).is_err());
        assert!(Ema::new(1.0, &set(&[1.0])).is_err());
    }
}
