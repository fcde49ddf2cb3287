//! Searching a graph: the reusable scratch, the allow-list filter, the
//! layer search shared with the builder, and [`GraphView`], the validated
//! zero-copy form of a graph (borrowed from an [`super::Hnsw`] or a
//! container).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::container::{Container, ContainerError, KeyValues};

use super::{HnswError, Neighbor, Space, MAX_LEVEL};

/// A (distance, id) pair ordered by distance, ties by a fixed scrambling
/// of the id, so every heap operation is deterministic. Scrambling rather
/// than plain id order matters for duplicate vectors: with plain order,
/// pruning among equal distances always keeps the lowest ids, so later
/// duplicates lose every in-link and become unreachable.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) dist: f32,
    pub(crate) id: u32,
}

impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        self.dist.total_cmp(&o.dist).then(scramble(self.id).cmp(&scramble(o.id)))
    }
}
// A bijection on u32 (odd multiplier), so distinct ids never tie.
fn scramble(id: u32) -> u32 {
    id.wrapping_mul(0x9E37_79B1)
}

impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Item {}

/// Working memory of a search, reused across queries: after the first
/// query at a given `ef`, later ones allocate nothing.
#[derive(Debug, Default)]
pub struct SearchScratch {
    // visited[v] == stamp means v was seen in the current layer search.
    visited: Vec<u32>,
    stamp: u32,
    candidates: BinaryHeap<Reverse<Item>>,
    pub(crate) results: BinaryHeap<Item>,
    out: Vec<Neighbor>,
}

impl SearchScratch {
    /// Empty scratch; it grows to the graph size on first use.
    pub fn new() -> Self {
        Self::default()
    }

    // Starts a new visited generation over n nodes.
    fn new_visit(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Wrapped: clear once every 2^32 - 1 searches.
            self.visited.fill(0);
            self.stamp = 1;
        }
    }

    // Marks v; true if it was not yet visited.
    fn visit(&mut self, v: u32) -> bool {
        let slot = &mut self.visited[v as usize];
        let fresh = *slot != self.stamp;
        *slot = self.stamp;
        fresh
    }
}

/// A set of allowed item ids, as a bitset over `0..n`.
#[derive(Clone, Debug)]
pub struct AllowList {
    bits: Vec<u64>,
    n: usize,
    count: usize,
}

impl AllowList {
    /// The allow-list of every id `i < n` for which `keep(i)` holds.
    pub fn from_fn(n: usize, keep: impl Fn(u32) -> bool) -> Result<Self, HnswError> {
        if n > u32::MAX as usize + 1 {
            return Err(HnswError::BadConfig {
                field: "n",
                reason: format!("{n} items exceed u32 ids"),
            });
        }
        let mut a = AllowList { bits: vec![0; n.div_ceil(64)], n, count: 0 };
        for id in 0..n {
            if keep(id as u32) {
                a.bits[id / 64] |= 1 << (id % 64);
                a.count += 1;
            }
        }
        Ok(a)
    }

    /// The allow-list of `ids` (duplicates are fine) over `n` items.
    pub fn from_ids(n: usize, ids: impl IntoIterator<Item = u32>) -> Result<Self, HnswError> {
        let mut a = AllowList { bits: vec![0; n.div_ceil(64)], n, count: 0 };
        for id in ids {
            if id as usize >= n {
                return Err(HnswError::IdOutOfRange { id, n });
            }
            let (w, b) = (id as usize / 64, id % 64);
            if a.bits[w] >> b & 1 == 0 {
                a.bits[w] |= 1 << b;
                a.count += 1;
            }
        }
        Ok(a)
    }

    /// Whether `id` is allowed.
    pub fn allows(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w >> (id % 64) & 1 == 1)
    }

    /// The universe size: ids run over `0..n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of allowed ids.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Allowed ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                (x != 0).then(|| {
                    let b = x.trailing_zeros();
                    x &= x - 1;
                    w as u32 * 64 + b
                })
            })
        })
    }
}

/// Neighbour lists by node and layer.
pub(crate) trait Links: Sync {
    fn neighbors(&self, v: u32, layer: usize) -> &[u32];
}

/// Best-first search of one layer from the entry points, keeping the `ef`
/// closest (allowed) nodes in `s.results`.
#[allow(clippy::too_many_arguments)] // each is a distinct knob of the loop
pub(crate) fn search_layer<L: Links + ?Sized>(
    links: &L,
    n: usize,
    layer: usize,
    dist: impl Fn(u32) -> f32,
    entries: &[Item],
    ef: usize,
    allow: Option<&AllowList>,
    s: &mut SearchScratch,
) {
    s.new_visit(n);
    s.candidates.clear();
    s.results.clear();
    let ok = |id| allow.is_none_or(|a| a.allows(id));
    for &e in entries {
        if s.visit(e.id) {
            s.candidates.push(Reverse(e));
            if ok(e.id) {
                s.results.push(e);
            }
        }
    }
    while s.results.len() > ef {
        s.results.pop();
    }

    while let Some(Reverse(c)) = s.candidates.pop() {
        if s.results.len() >= ef && s.results.peek().is_some_and(|w| c.dist > w.dist) {
            break;
        }
        for &u in links.neighbors(c.id, layer) {
            if !s.visit(u) {
                continue;
            }
            let d = dist(u);
            let worst = s.results.peek().map_or(f32::INFINITY, |w| w.dist);
            if s.results.len() < ef || d < worst {
                let it = Item { dist: d, id: u };
                s.candidates.push(Reverse(it));
                if ok(u) {
                    s.results.push(it);
                    if s.results.len() > ef {
                        s.results.pop();
                    }
                }
            }
        }
    }
}

/// Greedy descent from `entry` through layers `top` down to `stop`
/// (inclusive, `stop >= 1`), returning the closest node found; `entry`
/// itself when `stop > top`.
pub(crate) fn descend<L: Links + ?Sized>(
    links: &L,
    top: usize,
    stop: usize,
    dist: impl Fn(u32) -> f32,
    entry: u32,
) -> Item {
    let mut cur = Item { dist: dist(entry), id: entry };
    for layer in (stop.max(1)..=top).rev() {
        loop {
            let mut moved = false;
            for &u in links.neighbors(cur.id, layer) {
                let it = Item { dist: dist(u), id: u };
                if it < cur {
                    cur = it;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
    cur
}

/// Graph parameters stored beside the arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphParams {
    /// Number of nodes.
    pub n: usize,
    /// List capacity above layer 0.
    pub m: usize,
    /// List capacity at layer 0.
    pub m0: usize,
    /// Candidate list size used while building.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
    /// Entry node.
    pub entry: u32,
    /// Level of the entry node (the highest level).
    pub max_level: usize,
    /// [`Space::NAME`] of the distance used to build.
    pub distance: String,
}

/// A validated graph over borrowed flat arrays: node v's lists are
/// `node_offsets[v]..node_offsets[v+1]` (one per layer), list i's ids are
/// `neighbors[list_offsets[i]..list_offsets[i+1]]`.
#[derive(Clone, Debug)]
pub struct GraphView<'a> {
    node_offsets: &'a [u64],
    list_offsets: &'a [u64],
    neighbors: &'a [u32],
    params: GraphParams,
}

impl Links for GraphView<'_> {
    fn neighbors(&self, v: u32, layer: usize) -> &[u32] {
        // Validated at construction: every list index and range is in
        // bounds, and a node is only linked from layers it belongs to.
        let i = self.node_offsets[v as usize] as usize + layer;
        let (a, b) = (self.list_offsets[i] as usize, self.list_offsets[i + 1] as usize);
        &self.neighbors[a..b]
    }
}

fn bad(section: &str, reason: String) -> HnswError {
    HnswError::Container(ContainerError::invalid(section, reason))
}

impl<'a> GraphView<'a> {
    /// Validates the arrays against each other and the parameters: one
    /// pass over every list and id, after which search cannot index out of
    /// bounds whatever the bytes were.
    pub fn new(
        node_offsets: &'a [u64],
        list_offsets: &'a [u64],
        neighbors: &'a [u32],
        params: GraphParams,
        prefix: &str,
    ) -> Result<Self, HnswError> {
        let (no, lo, nb) = (
            format!("{prefix}.node_offsets"),
            format!("{prefix}.list_offsets"),
            format!("{prefix}.neighbors"),
        );
        let n = params.n;
        if n > u32::MAX as usize {
            return Err(bad(&no, format!("{n} nodes exceed u32 ids")));
        }
        if params.m == 0 || params.m0 < params.m {
            return Err(bad(
                prefix,
                format!("m = {}, m0 = {} (need 0 < m <= m0)", params.m, params.m0),
            ));
        }
        if node_offsets.len() != n + 1 || node_offsets[0] != 0 {
            return Err(bad(&no, format!("need {} entries starting at 0", n + 1)));
        }
        if node_offsets[n].checked_add(1) != Some(list_offsets.len() as u64) || list_offsets[0] != 0
        {
            return Err(bad(
                &lo,
                format!("need {} entries starting at 0", node_offsets[n].saturating_add(1)),
            ));
        }
        if list_offsets[list_offsets.len() - 1] != neighbors.len() as u64 {
            return Err(bad(&lo, "last offset differs from the neighbour count".into()));
        }

        // Levels from the node offsets.
        let level = |v: usize| (node_offsets[v + 1] - node_offsets[v]) as usize - 1;
        let mut top = 0;
        for v in 0..n {
            let (a, b) = (node_offsets[v], node_offsets[v + 1]);
            if b <= a || b - a > MAX_LEVEL as u64 + 1 {
                return Err(bad(
                    &no,
                    format!("node {v} has {} lists, need 1..={}", b.wrapping_sub(a), MAX_LEVEL + 1),
                ));
            }
            top = top.max(level(v));
        }
        if n > 0
            && (params.entry as usize >= n
                || level(params.entry as usize) != params.max_level
                || top != params.max_level)
        {
            return Err(bad(
                prefix,
                format!(
                    "entry {} / max_level {} do not match the levels",
                    params.entry, params.max_level
                ),
            ));
        }
        if n == 0 && (params.entry != 0 || params.max_level != 0) {
            return Err(bad(prefix, "empty graph with an entry point".into()));
        }

        // Every list: ordered offsets, capacity, ids in range, not self,
        // and linking only nodes present on that layer.
        for (v, &first) in node_offsets[..n].iter().enumerate() {
            for layer in 0..=level(v) {
                let i = first as usize + layer;
                let (a, b) = (list_offsets[i], list_offsets[i + 1]);
                if b < a || b > neighbors.len() as u64 {
                    return Err(bad(
                        &lo,
                        format!("list {i} spans {a}..{b} of {} ids", neighbors.len()),
                    ));
                }
                let cap = if layer == 0 { params.m0 } else { params.m };
                if b - a > cap as u64 {
                    return Err(bad(
                        &lo,
                        format!("node {v} layer {layer} has {} links, cap {cap}", b - a),
                    ));
                }
                for &u in &neighbors[a as usize..b as usize] {
                    if u as usize >= n || u as usize == v || level(u as usize) < layer {
                        return Err(bad(
                            &nb,
                            format!("node {v} layer {layer} links invalid node {u}"),
                        ));
                    }
                }
            }
        }
        Ok(GraphView { node_offsets, list_offsets, neighbors, params })
    }

    /// Loads the graph stored under `prefix` (see `docs/FORMAT.md`),
    /// viewing the arrays in place.
    pub fn load(c: &Container<'a>, prefix: &str) -> Result<Self, HnswError> {
        let kv = KeyValues::load(c, &format!("{prefix}.params"))?;
        let params = GraphParams {
            n: kv.parse("n")?,
            m: kv.parse("m")?,
            m0: kv.parse("m0")?,
            ef_construction: kv.parse("ef_construction")?,
            seed: kv.parse("seed")?,
            entry: kv.parse("entry")?,
            max_level: kv.parse("max_level")?,
            distance: kv.parse("distance")?,
        };
        GraphView::new(
            c.section::<u64>(&format!("{prefix}.node_offsets"))?,
            c.section::<u64>(&format!("{prefix}.list_offsets"))?,
            c.section::<u32>(&format!("{prefix}.neighbors"))?,
            params,
            prefix,
        )
    }

    /// The stored parameters.
    pub fn params(&self) -> &GraphParams {
        &self.params
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.params.n
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.params.n == 0
    }

    /// Level of node `v` (`v < len()`).
    pub fn level(&self, v: u32) -> usize {
        (self.node_offsets[v as usize + 1] - self.node_offsets[v as usize]) as usize - 1
    }

    /// Neighbours of `v` on `layer` (`layer <= level(v)`).
    pub fn links(&self, v: u32, layer: usize) -> &'a [u32] {
        let i = self.node_offsets[v as usize] as usize + layer;
        let (a, b) = (self.list_offsets[i] as usize, self.list_offsets[i + 1] as usize);
        &self.neighbors[a..b]
    }

    fn check<S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        k: usize,
        ef: usize,
    ) -> Result<(), HnswError> {
        if space.len() != self.params.n {
            return Err(HnswError::SpaceSize { graph: self.params.n, space: space.len() });
        }
        if S::NAME != self.params.distance {
            return Err(HnswError::DistanceMismatch {
                graph: self.params.distance.clone(),
                space: S::NAME,
            });
        }
        if k == 0 || ef == 0 {
            return Err(HnswError::BadConfig { field: "k/ef", reason: "must be positive".into() });
        }
        space.check_query(q)
    }

    /// The (approximately) `k` nearest items to `q`, closest first,
    /// searching layer 0 with `max(ef, k)` candidates. The slice lives in
    /// `scratch` until its next use.
    pub fn search<'s, S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        k: usize,
        ef: usize,
        scratch: &'s mut SearchScratch,
    ) -> Result<&'s [Neighbor], HnswError> {
        self.check(space, q, k, ef)?;
        self.run(space, q, k, ef.max(k), None, scratch);
        Ok(&scratch.out)
    }

    /// Like [`GraphView::search`], returning only ids in `allow`.
    ///
    /// The graph is traversed through every node but only allowed ones
    /// enter the results. A selective filter leaves few allowed nodes on
    /// the search path, so `ef` is raised by the inverse of the allowed
    /// fraction (at most 20x, at most n); and when the allow-list holds at
    /// most `16 * ef` ids, or under 2% of the graph, the allowed items are
    /// scanned exactly instead, which is then both cheaper and exact.
    pub fn search_filtered<'s, S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        k: usize,
        ef: usize,
        allow: &AllowList,
        scratch: &'s mut SearchScratch,
    ) -> Result<&'s [Neighbor], HnswError> {
        self.check(space, q, k, ef)?;
        if allow.n != self.params.n {
            return Err(HnswError::Shape {
                what: "allow-list",
                expected: self.params.n,
                found: allow.n,
            });
        }
        let ef = ef.max(k);
        let n = self.params.n;
        if allow.count() <= ef.saturating_mul(16) || allow.count() * 50 < n {
            // Exact scan of the allowed ids.
            scratch.results.clear();
            for id in allow.iter() {
                let it = Item { dist: space.query_distance(q, id), id };
                if scratch.results.len() < k {
                    scratch.results.push(it);
                } else if scratch.results.peek().is_some_and(|w| it < *w) {
                    scratch.results.pop();
                    scratch.results.push(it);
                }
            }
            finish(scratch, k);
        } else {
            let boost = n.div_ceil(allow.count().max(1)).min(20);
            self.run(space, q, k, ef.saturating_mul(boost).min(n), Some(allow), scratch);
        }
        Ok(&scratch.out)
    }

    fn run<S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        k: usize,
        ef: usize,
        allow: Option<&AllowList>,
        s: &mut SearchScratch,
    ) {
        s.results.clear();
        if self.params.n > 0 {
            let dist = |id| space.query_distance(q, id);
            let ep = descend(self, self.params.max_level, 1, dist, self.params.entry);
            search_layer(self, self.params.n, 0, dist, &[ep], ef, allow, s);
        }
        finish(s, k);
    }
}

// Results heap -> `out`, closest first, k at most; no allocation once `out`
// has grown to ef.
fn finish(s: &mut SearchScratch, k: usize) {
    s.out.clear();
    s.out.extend(s.results.drain().map(|it| Neighbor { id: it.id, distance: it.dist }));
    s.out.sort_unstable_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    s.out.truncate(k);
}
