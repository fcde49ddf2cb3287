//! One query against an [`Index`], in caller-held memory.
//!
//! Every buffer a query touches lives in [`SearchScratch`]: the encoded
//! query (int8 or sign bits), the PQ tables, one block of raw scores, the
//! bounded heap of the best candidates, the shortlist and its rescored
//! values, and the graph search's own scratch. Buffers are cleared and
//! refilled, never dropped, so once a workload has run through each size
//! it needs (k, shortlist), a query
//! allocates nothing.
//!
//! Scans run on the calling thread, one block of [`BLOCK`] rows at a time
//! through the kernels' one-to-many scans, and offer each allowed row to a
//! heap of the `cap` best. That is why they do not use the kernels' fused
//! top-k: those split the rows over rayon and return fresh vectors, which
//! suits one large query, not a stream of small ones on a device. Parallel
//! throughput comes from [`Index::search_batch`], one query per worker.
//!
//! Filtering: a scan over all rows skips disallowed ones after scoring
//! them (a block costs the same either way); when the allow-list holds
//! fewer than `n / SPARSE` ids, only those rows are scored, one kernel call
//! each. The graph takes the allow-list into its own search.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

use super::{check_dim, Hit, Index, IndexError, Rescore, SearchMode, SearchParams};
use crate::hnsw::{self, AllowList};
use crate::kernels::pq::fastscan::{self, QuantizedTable};
use crate::kernels::pq::Metric;
use crate::kernels::search as ks;
use crate::quant::Int8Quantizer;

/// Rows scored per kernel call.
const BLOCK: usize = 256;

/// Allow-lists below `n / SPARSE` ids are visited id by id. A one-row call
/// costs a few blocked rows (dispatch and bounds checks per call), so the
/// sparse path wins well before this point; the value is a round guess,
/// not a tuned one.
const SPARSE: usize = 16;

/// The 4-bit scan keeps this many times the wanted candidates by its
/// quantized u8 tables before re-ranking them with the float table.
const PQ4_RERANK: usize = 4;

/// A candidate; the greater of two is the worse (lower score, then the
/// larger document), so a max-heap's top is the worst one kept.
#[derive(Clone, Copy, Debug)]
struct Cand {
    score: f32,
    doc: u32,
}

impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        o.score.total_cmp(&self.score).then(self.doc.cmp(&o.doc))
    }
}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}

/// The `cap` best candidates offered, in a max-heap whose top is the
/// worst kept. Once full, the worst kept score is cached apart, so that
/// rejecting a row (nearly every row of a large scan) costs one float
/// compare instead of a heap access.
#[derive(Debug, Default)]
struct TopK {
    heap: BinaryHeap<Cand>,
    cap: usize,
    /// Scores below this cannot enter; minus infinity until full.
    floor: f32,
}

impl TopK {
    /// Empties the heap for a new query keeping `cap` candidates; no
    /// allocation once the heap has held `cap` before.
    fn reset(&mut self, cap: usize) {
        self.heap.clear();
        self.heap.reserve(cap);
        self.cap = cap;
        self.floor = f32::NEG_INFINITY;
    }

    /// Keeps `c` if the heap has room or `c` beats its worst (a tie in
    /// score goes to the smaller document, so equal scores are compared
    /// in full).
    #[inline]
    fn offer(&mut self, c: Cand) {
        if c.score < self.floor {
            return;
        }
        if self.heap.len() < self.cap {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            }
        }
        if self.heap.len() == self.cap {
            self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.score);
        }
    }
}

/// Working memory of [`Index::search_into`], reusable across queries and
/// across indexes.
#[derive(Debug, Default)]
pub struct SearchScratch {
    top: TopK,
    cands: Vec<Cand>,
    ids: Vec<u32>,
    f32s: Vec<f32>,
    i32s: Vec<i32>,
    u32s: Vec<u32>,
    best: fastscan::Best,
    query_i8: Vec<i8>,
    query_bits: Vec<u64>,
    table: Vec<f32>,
    /// The query rotated for optimized PQ.
    rotated: Vec<f32>,
    lut: Option<QuantizedTable>,
    graph: hnsw::SearchScratch,
}

impl SearchScratch {
    /// Empty scratch; it grows on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

fn is_sparse(allow: Option<&AllowList>, n: usize) -> bool {
    allow.is_some_and(|a| a.count() < n / SPARSE)
}

/// Offers rows to `heap` (the `cap` best kept): all rows block by block,
/// skipping disallowed ones, or only the allowed ones when they are few.
/// `score(range, out)` writes the raw scores of rows `range`; `key` maps a
/// raw score to the ranking score (larger is better).
fn scan<S: Copy + Default>(
    n: usize,
    allow: Option<&AllowList>,
    cap: usize,
    buf: &mut Vec<S>,
    top: &mut TopK,
    mut score: impl FnMut(Range<usize>, &mut [S]) -> Result<(), IndexError>,
    key: impl Fn(S) -> f32,
) -> Result<(), IndexError> {
    top.reset(cap);
    if buf.len() < BLOCK {
        buf.resize(BLOCK, S::default());
    }

    // Sparse allow-list: one row per call.
    if let Some(a) = allow.filter(|_| is_sparse(allow, n)) {
        for doc in a.iter() {
            let i = doc as usize;
            score(i..i + 1, &mut buf[..1])?;
            top.offer(Cand { score: key(buf[0]), doc });
        }
        return Ok(());
    }

    // Every row, a block per call.
    let mut b = 0;
    while b < n {
        let e = (b + BLOCK).min(n);
        let out = &mut buf[..e - b];
        score(b..e, out)?;
        for (t, &s) in out.iter().enumerate() {
            let doc = (b + t) as u32;
            if allow.is_none_or(|a| a.allows(doc)) {
                top.offer(Cand { score: key(s), doc });
            }
        }
        b = e;
    }
    Ok(())
}

/// Folds the int8 quantizer's scales into the query and quantizes it
/// symmetrically into `v`: returns `(t, offset)` with
/// `q . x ~ t * (v . c) + offset` for a stored code `c` (module doc of
/// `index`). Two passes over the query so no float copy is needed.
fn fold_query(q: &Int8Quantizer, query: &[f32], v: &mut Vec<i8>) -> (f32, f32) {
    let (scale, bias) = (q.scale(), q.bias());
    let at = |s: &[f32], j: usize| if s.len() == 1 { s[0] } else { s[j] };
    let amax = query.iter().enumerate().fold(0f32, |m, (j, &x)| m.max((x * at(scale, j)).abs()));
    let offset: f32 = query.iter().enumerate().map(|(j, &x)| x * at(bias, j)).sum();
    let t = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    v.clear();
    v.extend(
        query
            .iter()
            .enumerate()
            .map(|(j, &x)| (x * at(scale, j) / t).round().clamp(-127.0, 127.0) as i8),
    );
    (t, offset)
}

impl<'a> Index<'a> {
    fn need_f32(&self, mode: &'static str) -> Result<&'a [f32], IndexError> {
        self.f32.ok_or(IndexError::Missing { mode, needs: "f32 vectors" })
    }
    fn need_int8(&self, mode: &'static str) -> Result<&(Int8Quantizer, &'a [i8]), IndexError> {
        self.int8.as_ref().ok_or(IndexError::Missing { mode, needs: "int8 codes" })
    }

    /// The best `params.k` allowed documents for `query`, written into
    /// `out` (cleared first), best first. `scratch` and `out` are reused
    /// across calls: once warm, a call allocates nothing.
    pub fn search_into(
        &self,
        query: &[f32],
        params: &SearchParams,
        scratch: &mut SearchScratch,
        out: &mut Vec<Hit>,
    ) -> Result<(), IndexError> {
        out.clear();
        check_dim("query", self.dim, query.len())?;
        if let Some(i) = query.iter().position(|v| !v.is_finite()) {
            return Err(IndexError::Invalid {
                what: "query",
                reason: format!("dimension {i} is not finite"),
            });
        }
        let (n, d, allow) = (self.n, self.dim, params.allow);
        if let Some(a) = allow {
            check_dim("allow-list size", n, a.n())?;
        }
        let k = params.k.min(n);
        if k == 0 {
            return Ok(());
        }
        let rescoring = params.rescore != Rescore::None
            && !matches!(params.mode, SearchMode::Exact | SearchMode::Hnsw);
        let first = if rescoring { params.shortlist.max(k).min(n) } else { k };
        let mode = params.mode.name();
        let SearchScratch {
            top,
            cands,
            ids,
            f32s,
            i32s,
            u32s,
            best,
            query_i8,
            query_bits,
            table,
            rotated,
            lut,
            graph,
        } = scratch;

        // First pass: up to `first` candidates in `cands`, scored.
        cands.clear();
        match params.mode {
            SearchMode::Exact => {
                let v = self.need_f32(mode)?;
                let score = |r: Range<usize>, o: &mut [f32]| {
                    Ok(ks::dot_f32(query, &v[r.start * d..r.end * d], o)?)
                };
                scan(n, allow, first, f32s, top, score, |s| s)?;
                cands.extend(top.heap.drain());
            }
            SearchMode::Int8 => {
                let (q, codes) = self.need_int8(mode)?;
                let (t, offset) = fold_query(q, query, query_i8);
                let v = &query_i8[..];
                let score = |r: Range<usize>, o: &mut [i32]| {
                    Ok(ks::dot_i8(v, &codes[r.start * d..r.end * d], o)?)
                };
                // Ranked on the exact integer dot, scaled afterwards.
                scan(n, allow, first, i32s, top, score, |s| s as f32)?;
                cands.extend(top.heap.drain().map(|c| Cand { score: t * c.score + offset, ..c }));
            }
            SearchMode::Binary => {
                let (q, codes) =
                    self.binary.as_ref().ok_or(IndexError::Missing { mode, needs: "sign bits" })?;
                let w = q.words();
                query_bits.resize(w, 0);
                q.encode(query, query_bits)?;
                let bits = &query_bits[..];
                let score = |r: Range<usize>, o: &mut [u32]| {
                    Ok(ks::hamming(bits, &codes[r.start * w..r.end * w], o)?)
                };
                // Sign agreement d - 2 * hamming: a cosine estimate times d.
                let df = d as f32;
                scan(n, allow, first, u32s, top, score, |h| df - 2.0 * h as f32)?;
                cands.extend(top.heap.drain());
            }
            SearchMode::Pq8 => {
                let p =
                    self.pq8.as_ref().ok_or(IndexError::Missing { mode, needs: "pq8 codes" })?;
                let (m, ksub) = (p.q.m(), p.q.ksub());
                table.resize(m * ksub, 0.0);
                p.q.distance_table(query, Metric::InnerProduct, table)?;
                let (tab, codes) = (&table[..], p.codes);
                let score = |r: Range<usize>, o: &mut [f32]| {
                    adc8(tab, m, &codes[r.start * m..r.end * m], o);
                    Ok(())
                };
                scan(n, allow, first, f32s, top, score, |s| s)?;
                cands.extend(top.heap.drain());
            }
            SearchMode::Pq4 => {
                let p =
                    self.pq4.as_ref().ok_or(IndexError::Missing { mode, needs: "pq4 codes" })?;
                let (m, packed) = (p.q.m(), &p.packed);
                table.resize(m * 16, 0.0);
                // Optimized PQ: the codes quantize x R, so the table is
                // built for q R (inner products are unchanged by R).
                let q_pq = match p.rotation {
                    Some(r) => {
                        rotated.clear();
                        rotated.resize(d, 0.0);
                        for (&qi, row) in query.iter().zip(r.chunks_exact(d)) {
                            rotated.iter_mut().zip(row).for_each(|(o, &x)| *o += qi * x);
                        }
                        &rotated[..]
                    }
                    None => query,
                };
                p.q.distance_table(q_pq, Metric::InnerProduct, table)?;
                let tab = &table[..];
                // The float ADC score of one code, from the unpacked nibbles.
                let adc = |v: usize| -> f32 {
                    (0..m).map(|j| tab[j * 16 + packed.code(v, j) as usize]).sum()
                };
                if is_sparse(allow, n) {
                    // Few rows: float tables straight away.
                    let score = |r: Range<usize>, o: &mut [f32]| {
                        o[0] = adc(r.start);
                        Ok(())
                    };
                    scan(n, allow, first, f32s, top, score, |s| s)?;
                    cands.extend(top.heap.drain());
                } else {
                    // Quantized tables over every code. Without a
                    // rescoring, PQ4_RERANK * first of them are re-ranked
                    // with the float table; with one, the first pass keeps
                    // just the shortlist, which the rescoring re-ranks.
                    match lut {
                        Some(l) if l.m() == m => l.refill(tab, Metric::InnerProduct)?,
                        _ => *lut = Some(QuantizedTable::new(tab, m, Metric::InnerProduct)?),
                    }
                    let l = lut.as_ref().ok_or(IndexError::Missing { mode, needs: "a table" })?;
                    let keep =
                        if rescoring { first } else { first.saturating_mul(PQ4_RERANK).min(n) };
                    // The kernel skips blocks whose sums cannot enter in
                    // registers; only candidate rows reach the filter.
                    best.reset(keep);
                    let allowed = |doc: u32| allow.is_none_or(|a| a.allows(doc));
                    fastscan::topk_into(l, packed, best, allowed)?;
                    if rescoring {
                        cands.extend(
                            best.drain().map(|h| Cand { score: -f32::from(h.score), doc: h.id }),
                        );
                    } else {
                        let rerank =
                            best.drain().map(|h| Cand { score: adc(h.id as usize), doc: h.id });
                        cands.extend(rerank);
                        cands.sort_unstable();
                        cands.truncate(first);
                    }
                }
            }
            SearchMode::Hnsw => {
                let v = self.need_f32(mode)?;
                let g = self.hnsw.as_ref().ok_or(IndexError::Missing { mode, needs: "a graph" })?;
                let space = hnsw::F32Dot::prechecked(v, d)?;
                let ef = params.ef.max(k);
                let found = match allow {
                    Some(a) => g.search_filtered(&space, query, k, ef, a, graph)?,
                    None => g.search(&space, query, k, ef, graph)?,
                };
                // The space's distance is the negated inner product.
                cands.extend(found.iter().map(|nb| Cand { score: -nb.distance, doc: nb.id }));
            }
        }

        // Rescoring of the shortlist.
        if rescoring {
            ids.clear();
            ids.extend(cands.iter().map(|c| c.doc));
            let len = ids.len();
            match params.rescore {
                Rescore::F32 => {
                    let v = self.need_f32("f32 rescoring")?;
                    f32s.resize(len.max(f32s.len()), 0.0);
                    ks::dot_f32_gather(query, v, ids, &mut f32s[..len])?;
                    for (c, &s) in cands.iter_mut().zip(&f32s[..len]) {
                        c.score = s;
                    }
                }
                Rescore::Int8 => {
                    let (q, codes) = self.need_int8("int8 rescoring")?;
                    let (t, offset) = fold_query(q, query, query_i8);
                    i32s.resize(len.max(i32s.len()), 0);
                    ks::dot_i8_gather(query_i8, codes, ids, &mut i32s[..len])?;
                    for (c, &s) in cands.iter_mut().zip(&i32s[..len]) {
                        c.score = t * s as f32 + offset;
                    }
                }
                Rescore::None => {}
            }
        }
        cands.sort_unstable();
        out.extend(cands.iter().take(k).map(|c| Hit { doc: c.doc, score: c.score }));
        Ok(())
    }
}

/// 8-bit ADC scores of `m`-byte codes: `out[i] = sum_j table[j * 256 +
/// codes[i * m + j]]`, summed in `j` order like the kernels' `adc_scan`
/// (so the scores are the same bits), but four codes at a time. Each sum
/// is a chain of dependent adds; interleaving four independent chains
/// keeps the adder busy instead of waiting on each add's latency.
fn adc8(table: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    let mut quads = codes.chunks_exact(4 * m);
    let mut outs = out.chunks_exact_mut(4);
    for (c, o) in (&mut quads).zip(&mut outs) {
        let (c0, rest) = c.split_at(m);
        let (c1, rest) = rest.split_at(m);
        let (c2, c3) = rest.split_at(m);
        let mut s = [0f32; 4];
        for j in 0..m {
            let t = &table[j * 256..(j + 1) * 256];
            s[0] += t[c0[j] as usize];
            s[1] += t[c1[j] as usize];
            s[2] += t[c2[j] as usize];
            s[3] += t[c3[j] as usize];
        }
        o.copy_from_slice(&s);
    }
    for (c, o) in quads.remainder().chunks_exact(m).zip(outs.into_remainder()) {
        *o =
            c.iter().enumerate().map(|(j, &x)| table[j * 256 + x as usize]).fold(0.0, |a, b| a + b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The interleaved 8-bit ADC scan gives the kernels' scores bit for bit,
    // over code counts that leave every remainder of the four-code groups.
    #[test]
    fn adc8_matches_the_kernel_scan() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for m in [1, 3, 16] {
            let table: Vec<f32> =
                (0..m * 256).map(|_| (next() % 20_001) as f32 / 1000.0 - 10.0).collect();
            for n in [0, 1, 2, 3, 4, 5, 9, 31] {
                let codes: Vec<u8> = (0..n * m).map(|_| next() as u8).collect();
                let (mut ours, mut theirs) = (vec![0f32; n], vec![0f32; n]);
                adc8(&table, m, &codes, &mut ours);
                crate::kernels::pq::adc_scan(&table, m, 256, &codes, &mut theirs).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&ours), bits(&theirs), "m {m} n {n}");
            }
        }
    }
}
