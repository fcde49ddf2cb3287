//! Building a graph: seeded levels, batched insertion whose neighbour
//! searches run in parallel against a frozen graph, sequential linking in
//! id order (see the module doc of `hnsw` for why this is deterministic),
//! and the flat arrays the result is stored and searched as.

use rayon::prelude::*;

use crate::container::ContainerBuilder;

use super::search::{descend, search_layer, GraphParams, Item, Links, SearchScratch};
use super::{GraphView, HnswError, Space, MAX_LEVEL};

/// Build parameters.
#[derive(Clone, Debug)]
pub struct HnswConfig {
    /// Links per node above layer 0 (layer 0 keeps `2 * m`).
    pub m: usize,
    /// Candidates kept while searching for a new node's neighbours.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig { m: 16, ef_construction: 200, seed: 0x5eed_1e5e }
    }
}

/// A built graph owning its flat arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct Hnsw {
    node_offsets: Vec<u64>,
    list_offsets: Vec<u64>,
    neighbors: Vec<u32>,
    params: GraphParams,
}

// SplitMix64: a tiny, well-mixed generator; one draw per node.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// Levels from a uniform u in (0, 1]: floor(-ln(u) / ln(m)), capped.
fn levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let ml = 1.0 / (m as f64).ln();
    let mut state = seed;
    (0..n)
        .map(|_| {
            let u = ((splitmix(&mut state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            ((-u.ln() * ml) as usize).min(MAX_LEVEL) as u8
        })
        .collect()
}

// The graph under construction: links[v][layer].
struct Building {
    links: Vec<Vec<Vec<u32>>>,
}

impl Links for Building {
    fn neighbors(&self, v: u32, layer: usize) -> &[u32] {
        &self.links[v as usize][layer]
    }
}

// Diversity heuristic: walk candidates from closest; keep one if it is
// closer to the base than to every kept neighbour; top up with the closest
// rejected ones. `cands` is sorted by distance to the base.
fn select<S: Space>(space: &S, cands: &[Item], cap: usize) -> Vec<u32> {
    let mut kept: Vec<Item> = Vec::with_capacity(cap);
    let mut rejected: Vec<u32> = Vec::new();
    for &c in cands {
        if kept.len() == cap {
            break;
        }
        if kept.iter().all(|k| space.item_distance(c.id, k.id) > c.dist) {
            kept.push(c);
        } else {
            rejected.push(c.id);
        }
    }
    let mut out: Vec<u32> = kept.iter().map(|k| k.id).collect();
    out.extend(rejected.into_iter().take(cap - out.len()));
    out
}

fn sorted_unique(mut v: Vec<Item>) -> Vec<Item> {
    v.sort_unstable();
    v.dedup_by_key(|it| it.id);
    v
}

/// Builds a graph over every item of `space`. Runs on the current rayon
/// pool; the result depends on the seed and the data only.
pub fn build<S: Space>(space: &S, config: &HnswConfig) -> Result<Hnsw, HnswError> {
    let n = space.len();
    let (m, ef_c) = (config.m, config.ef_construction);
    if m < 2 {
        return Err(HnswError::BadConfig { field: "m", reason: format!("{m} is below 2") });
    }
    if ef_c == 0 {
        return Err(HnswError::BadConfig {
            field: "ef_construction",
            reason: "must be positive".into(),
        });
    }
    if n > u32::MAX as usize {
        return Err(HnswError::BadConfig {
            field: "n",
            reason: format!("{n} items exceed u32 ids"),
        });
    }
    let m0 = 2 * m;
    let level = levels(n, m, config.seed);
    let mut g =
        Building { links: level.iter().map(|&l| vec![Vec::new(); l as usize + 1]).collect() };
    let (mut entry, mut top) = (0u32, level.first().map_or(0, |&l| l as usize));

    let mut start = 1;
    while start < n {
        let end = (start + (start / 16).clamp(1, 256)).min(n);

        // Phase A, parallel: candidates per layer for each batch node,
        // searched in the graph frozen before the batch.
        let found: Vec<Vec<Vec<Item>>> = (start..end)
            .into_par_iter()
            .map_init(SearchScratch::new, |s, v| {
                let v = v as u32;
                let dist = |u| space.item_distance(v, u);
                let lv = level[v as usize] as usize;
                // Greedy walk down to the layer above the node's own level.
                let mut eps = vec![descend(&g, top, lv + 1, dist, entry)];
                let mut per_layer = vec![Vec::new(); lv.min(top) + 1];
                for layer in (0..=lv.min(top)).rev() {
                    search_layer(&g, n, layer, dist, &eps, ef_c, None, s);
                    let mut w: Vec<Item> = s.results.drain().collect();
                    w.sort_unstable();
                    eps.clone_from(&w);
                    per_layer[layer] = w;
                }
                per_layer
            })
            .collect();

        // Phase B, sequential in id order: link each node, adding the batch
        // members before it as exact candidates.
        for (i, v) in (start..end).enumerate() {
            let v32 = v as u32;
            let lv = level[v] as usize;
            for layer in 0..=lv {
                let mut cands = found[i].get(layer).cloned().unwrap_or_default();
                cands.extend(
                    (start..v)
                        .filter(|&u| level[u] as usize >= layer)
                        .map(|u| Item { dist: space.item_distance(v32, u as u32), id: u as u32 }),
                );
                let cands = sorted_unique(cands);
                let chosen = select(space, &cands, m);
                let cap = if layer == 0 { m0 } else { m };
                for &u in &chosen {
                    let list = &mut g.links[u as usize][layer];
                    list.push(v32);
                    if list.len() > cap {
                        let items = sorted_unique(
                            list.iter()
                                .map(|&w| Item { dist: space.item_distance(u, w), id: w })
                                .collect(),
                        );
                        g.links[u as usize][layer] = select(space, &items, cap);
                    }
                }
                g.links[v][layer] = chosen;
            }
            if lv > top {
                (entry, top) = (v32, lv);
            }
        }
        start = end;
    }

    // Flatten: node -> lists -> ids.
    let mut node_offsets = Vec::with_capacity(n + 1);
    let mut list_offsets = vec![0u64];
    let mut neighbors = Vec::new();
    node_offsets.push(0u64);
    for lists in &g.links {
        for list in lists {
            neighbors.extend_from_slice(list);
            list_offsets.push(neighbors.len() as u64);
        }
        node_offsets.push(list_offsets.len() as u64 - 1);
    }
    let params = GraphParams {
        n,
        m,
        m0,
        ef_construction: ef_c,
        seed: config.seed,
        entry,
        max_level: top,
        distance: S::NAME.to_owned(),
    };
    Ok(Hnsw { node_offsets, list_offsets, neighbors, params })
}

impl Hnsw {
    /// The validated zero-copy view used for search.
    pub fn view(&self) -> GraphView<'_> {
        GraphView::new(
            &self.node_offsets,
            &self.list_offsets,
            &self.neighbors,
            self.params.clone(),
            "hnsw",
        )
        .expect("a graph built here satisfies the view's invariants")
    }

    /// The parameters.
    pub fn params(&self) -> &GraphParams {
        &self.params
    }

    /// Writes the graph as sections `{prefix}.node_offsets`,
    /// `{prefix}.list_offsets`, `{prefix}.neighbors`, `{prefix}.params`.
    pub fn write<'a>(
        &'a self,
        b: &mut ContainerBuilder<'a>,
        prefix: &str,
    ) -> Result<(), HnswError> {
        b.add(
            &format!("{prefix}.node_offsets"),
            &[self.node_offsets.len() as u64],
            &self.node_offsets,
        )?;
        b.add(
            &format!("{prefix}.list_offsets"),
            &[self.list_offsets.len() as u64],
            &self.list_offsets,
        )?;
        b.add(&format!("{prefix}.neighbors"), &[self.neighbors.len() as u64], &self.neighbors)?;
        let p = &self.params;
        b.add_key_values(
            &format!("{prefix}.params"),
            [
                ("n", p.n.to_string()),
                ("m", p.m.to_string()),
                ("m0", p.m0.to_string()),
                ("ef_construction", p.ef_construction.to_string()),
                ("seed", p.seed.to_string()),
                ("entry", p.entry.to_string()),
                ("max_level", p.max_level.to_string()),
                ("distance", p.distance.clone()),
            ],
        )?;
        Ok(())
    }

    /// Total neighbour ids stored (for size reports).
    pub fn edge_count(&self) -> usize {
        self.neighbors.len()
    }
}
