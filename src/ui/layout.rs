//! A layered layout of a step graph for the run page's SVG, pure.
//!
//! No maintained Rust crate lays out a small DAG into plain coordinates without pulling in a
//! renderer (layout-rs draws its own SVG, Graphviz is C), so this is the classic Sugiyama shape
//! cut down to what a workflow needs: a step's layer is the length of the longest dependency
//! chain above it, layers run left to right, and within a layer steps are ordered by the mean
//! position of their dependencies (one down sweep), which removes most crossings of fan-in and
//! fan-out graphs. Units are SVG user units (pixels at 100 % zoom).

use std::collections::HashMap;

/// Width of a node box.
pub const NODE_WIDTH: u32 = 168;
/// Height of a node box.
pub const NODE_HEIGHT: u32 = 56;
/// Horizontal gap between layers.
const LAYER_GAP: u32 = 56;
/// Vertical gap between nodes of a layer.
const ROW_GAP: u32 = 18;
/// Margin around the drawing.
const MARGIN: u32 = 12;

/// A step to place: its name and the names it depends on (unknown names are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub name: &'a str,
    pub depends: &'a [String],
}

/// Where a node's box goes: top-left corner, in the layout's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Index into the input nodes.
    pub node: usize,
    pub layer: usize,
    pub x: u32,
    pub y: u32,
}

/// An edge from a dependency to its dependant, as line end points (right edge middle of the
/// dependency's box to left edge middle of the dependant's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub start: (u32, u32),
    pub end: (u32, u32),
}

/// The whole drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// One per input node, in input order.
    pub placed: Vec<Placed>,
    pub edges: Vec<Edge>,
    pub width: u32,
    pub height: u32,
}

/// Lays out `nodes`. A cycle (which admission refuses, but a run without a spec may still show
/// odd data) cannot hang it: layers are bounded by the number of nodes.
pub fn layout(nodes: &[Node<'_>]) -> Layout {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
    let parents: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            let mut p: Vec<usize> = n
                .depends
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        })
        .collect();
    let layers = layers(&parents);
    let rows = order_within_layers(&layers, &parents);
    let max_rows = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let column_height = |n: u32| n * NODE_HEIGHT + n.saturating_sub(1) * ROW_GAP;
    let height = column_height(max_rows) + 2 * MARGIN;
    let mut placed: Vec<Placed> = (0..nodes.len())
        .map(|node| Placed {
            node,
            layer: layers[node],
            x: 0,
            y: 0,
        })
        .collect();
    for (layer, row) in rows.iter().enumerate() {
        // Centre each layer vertically against the tallest one.
        let offset = (column_height(max_rows) - column_height(row.len() as u32)) / 2;
        for (slot, &node) in row.iter().enumerate() {
            placed[node].x = MARGIN + layer as u32 * (NODE_WIDTH + LAYER_GAP);
            placed[node].y = MARGIN + offset + slot as u32 * (NODE_HEIGHT + ROW_GAP);
        }
    }
    let edges = parents
        .iter()
        .enumerate()
        .flat_map(|(to, ps)| ps.iter().map(move |&from| (from, to)))
        .map(|(from, to)| Edge {
            from,
            to,
            start: (placed[from].x + NODE_WIDTH, placed[from].y + NODE_HEIGHT / 2),
            end: (placed[to].x, placed[to].y + NODE_HEIGHT / 2),
        })
        .collect();
    let width = rows.len() as u32 * (NODE_WIDTH + LAYER_GAP) - if rows.is_empty() { 0 } else { LAYER_GAP } + 2 * MARGIN;
    Layout {
        placed,
        edges,
        width,
        height,
    }
}

/// Longest-path layers: 0 without dependencies, else 1 + the deepest dependency. Iterates to a
/// fixed point, at most `n` rounds (a cycle stops there instead of growing forever).
fn layers(parents: &[Vec<usize>]) -> Vec<usize> {
    let n = parents.len();
    let mut layer = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for (i, ps) in parents.iter().enumerate() {
            let want = ps
                .iter()
                .map(|&p| layer[p] + 1)
                .max()
                .unwrap_or(0)
                .min(n.saturating_sub(1));
            if want != layer[i] {
                layer[i] = want;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// Node indices per layer; the first layer in input order, later ones by the mean slot of their
/// dependencies in earlier layers (ties in input order).
fn order_within_layers(layers: &[usize], parents: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = layers.iter().max().map_or(0, |&m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (node, &layer) in layers.iter().enumerate() {
        rows[layer].push(node);
    }
    let mut slot = vec![0f64; layers.len()];
    for row in &mut rows {
        let key = |node: usize| -> f64 {
            let ps: Vec<f64> = parents[node]
                .iter()
                .filter(|&&p| layers[p] < layers[node])
                .map(|&p| slot[p])
                .collect();
            if ps.is_empty() {
                f64::MAX
            } else {
                ps.iter().sum::<f64>() / ps.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = row.iter().map(|&n| (key(n), n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *row = keyed.into_iter().map(|(_, n)| n).collect();
        for (s, &n) in row.iter().enumerate() {
            slot[n] = s as f64;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        spec.iter()
            .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    fn nodes(g: &[(String, Vec<String>)]) -> Vec<Node<'_>> {
        g.iter().map(|(name, depends)| Node { name, depends }).collect()
    }

    fn overlap(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + NODE_WIDTH && b.x < a.x + NODE_WIDTH && a.y < b.y + NODE_HEIGHT && b.y < a.y + NODE_HEIGHT
    }

    #[test]
    fn a_diamond_takes_three_layers_with_the_middle_stacked() {
        let g = graph(&[
            ("fetch", &[]),
            ("a", &["fetch"]),
            ("b", &["fetch"]),
            ("report", &["a", "b"]),
        ]);
        let l = layout(&nodes(&g));
        let layers: Vec<usize> = l.placed.iter().map(|p| p.layer).collect();
        assert_eq!(layers, [0, 1, 1, 2]);
        assert_eq!(l.placed[1].x, l.placed[2].x);
        assert!(l.placed[1].y < l.placed[2].y);
        // The single nodes of layers 0 and 2 are centred on the two of layer 1.
        assert_eq!(l.placed[0].y, l.placed[3].y);
        assert_eq!(l.edges.len(), 4);
        assert!(l.width >= 3 * NODE_WIDTH && l.height >= 2 * NODE_HEIGHT);
    }

    #[test]
    fn children_follow_their_parents_order() {
        // x is under b (the second root), y under a (the first): y is placed above x.
        let g = graph(&[("a", &[]), ("b", &[]), ("x", &["b"]), ("y", &["a"])]);
        let l = layout(&nodes(&g));
        assert!(l.placed[3].y < l.placed[2].y);
    }

    #[test]
    fn unknown_dependencies_and_cycles_do_not_break_it() {
        let g = graph(&[("a", &["ghost"]), ("b", &["c"]), ("c", &["b"])]);
        let l = layout(&nodes(&g));
        assert_eq!(l.placed.len(), 3);
        assert_eq!(l.placed[0].layer, 0);
        assert!(l.placed.iter().all(|p| p.layer < 3));
        assert_eq!(layout(&[]).placed, []);
    }

    proptest! {
        /// For any DAG (edges only to earlier nodes): dependencies sit in earlier layers, edges run
        /// left to right, no boxes overlap, and everything lies inside the drawing.
        #[test]
        fn layouts_are_layered_and_disjoint(edges in proptest::collection::vec((1usize..12, 0usize..12), 0..30), n in 1usize..12) {
            let mut g: Vec<(String, Vec<String>)> = (0..n).map(|i| (format!("s{i}"), Vec::new())).collect();
            for (to, from) in edges {
                if to < n && from < to {
                    g[to].1.push(format!("s{from}"));
                }
            }
            let l = layout(&nodes(&g));
            for e in &l.edges {
                prop_assert!(l.placed[e.from].layer < l.placed[e.to].layer);
                prop_assert!(e.start.0 < e.end.0);
            }
            for (i, a) in l.placed.iter().enumerate() {
                prop_assert!(a.x + NODE_WIDTH <= l.width && a.y + NODE_HEIGHT <= l.height);
                for b in &l.placed[i + 1..] {
                    prop_assert!(!overlap(a, b), "{:?} overlaps {:?}", a, b);
                }
            }
        }
    }
}
