//! HNSW (hierarchical navigable small world) graphs for approximate
//! nearest-neighbour search, over any distance implementing [`Space`].
//!
//! Build ([`build`]): node levels come from a seeded generator
//! (`level = floor(-ln(u) / ln(m))`, capped at 15), one draw per node in id
//! order, so they depend on the seed alone. Nodes are inserted in id order
//! in batches. Within a batch the neighbour searches run in parallel on
//! rayon, all against the graph as it stood before the batch (read-only);
//! the links are then applied one node at a time in id order, each node
//! also considering the batch members inserted before it (exact distances,
//! so nothing is lost to the frozen view). Because no search reads state
//! another task writes, the graph is identical for a given seed whatever
//! the thread count. Batches start at one node and grow to 256 as the graph
//! grows (`start / 16`), so early, sparse graphs are built almost exactly
//! sequentially. Neighbours are chosen with the diversity heuristic of the
//! HNSW paper (keep a candidate only if it is closer to the new node than
//! to every neighbour already kept), topped up with the closest rejected
//! candidates; full lists are re-pruned the same way.
//!
//! Storage ([`Hnsw`], [`GraphView`]): three flat arrays, node -> its lists
//! (one per layer), list -> its neighbour ids, and the ids; written as
//! container sections (`docs/FORMAT.md`, "HNSW graph") and searched in
//! place from a mapped file after one validation pass at load.
//!
//! Search ([`GraphView::search`]): greedy descent through the upper layers,
//! then a best-first search with `ef` candidates on layer 0. All working
//! memory lives in a reusable [`SearchScratch`] (a generation-stamped
//! visited array, two heaps, the output), so a steady stream of queries
//! allocates nothing. Filtered search takes an [`AllowList`]; see
//! [`GraphView::search_filtered`] for how selectivity is handled.
//!
//! Distances go through the kernels crate (`space.rs`), so graph search
//! runs on the same SIMD tier as flat scans.
//!
//! Left out: deletion and incremental insertion into a loaded graph (an
//! index is rebuilt).

mod build;
mod search;
mod space;

pub use build::{build, Hnsw, HnswConfig};
pub use search::{AllowList, GraphParams, GraphView, SearchScratch};
pub use space::{F32Dot, Hamming, I8Dot, Space, F32L2};

use crate::container::ContainerError;

/// Highest level a node can have.
pub const MAX_LEVEL: usize = 15;

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// Item id (row in the vectors the graph was built over).
    pub id: u32,
    /// Distance under the graph's [`Space`]; smaller is closer.
    pub distance: f32,
}

/// What went wrong building, loading or searching a graph.
#[derive(Debug)]
#[non_exhaustive]
pub enum HnswError {
    /// A build or search parameter is out of range (`field` names it).
    BadConfig { field: &'static str, reason: String },
    /// Vector data or a query has the wrong length (`what` names it).
    Shape { what: &'static str, expected: usize, found: usize },
    /// A vector value is NaN or infinite (`what[index]`).
    NonFinite { what: &'static str, index: usize },
    /// The graph and the space searched disagree on the item count.
    SpaceSize { graph: usize, space: usize },
    /// The graph was built with another distance than the space searched.
    DistanceMismatch { graph: String, space: &'static str },
    /// An allow-list id is not below the item count.
    IdOutOfRange { id: u32, n: usize },
    /// Reading or writing the graph sections failed, or they break the
    /// graph's invariants.
    Container(ContainerError),
}

impl std::fmt::Display for HnswError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HnswError::BadConfig { field, reason } => write!(f, "hnsw {field}: {reason}"),
            HnswError::Shape { what, expected, found } => {
                write!(f, "{what}: expected length {expected}, found {found}")
            }
            HnswError::NonFinite { what, index } => write!(f, "{what}[{index}] is not finite"),
            HnswError::SpaceSize { graph, space } => {
                write!(f, "graph has {graph} nodes but the space has {space} items")
            }
            HnswError::DistanceMismatch { graph, space } => {
                write!(f, "graph was built with distance {graph:?}, searched with {space:?}")
            }
            HnswError::IdOutOfRange { id, n } => write!(f, "allow-list id {id} is not below {n}"),
            HnswError::Container(e) => write!(f, "hnsw sections: {e}"),
        }
    }
}

impl std::error::Error for HnswError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HnswError::Container(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ContainerError> for HnswError {
    fn from(e: ContainerError) -> Self {
        HnswError::Container(e)
    }
}
