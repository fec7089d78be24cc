//! The run page's step graph as SVG shapes: nodes coloured by step phase, edges by dependency,
//! and composition drawn as such: a `call` step as a subroutine box (double sides) linking to
//! its child run, a `forEach` step as a stack of boxes with its progress (n/m done, failed
//! count) written and drawn as a bar. Units are SVG user units, as in [`layout`].

use crate::api::StepPhase;
use crate::cli::steps::StepView;
use crate::ui::layout::{self, NODE_HEIGHT, NODE_WIDTH};

use super::composition::Composition;
use super::phase_colour;

/// Longest step name drawn in a node before it is cut (the full name is in the table).
const NODE_LABEL_LEN: usize = 20;
/// How far each box behind a fan-out's node is shifted (right and down).
const STACK_STEP: u32 = 4;
/// Inset of a call node's inner side lines and of a fan-out's progress bar.
const INSET: u32 = 8;

/// The SVG drawing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<GraphNode>,
    /// SVG path data of each edge.
    pub edges: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub name: String,
    pub label: String,
    pub phase: String,
    /// ` ×2` for a step on its second attempt, else empty.
    pub detail: String,
    /// `step`, `call`, `fan-out` or `fan-out call` (the `data-kind` attribute).
    pub kind: &'static str,
    /// The third text line: a fan-out's progress or the called Dag; empty for a plain step.
    pub composition: String,
    /// The link's accessible name, e.g. `step bias: Succeeded, calls Dag bias, child run x`.
    pub description: String,
    pub fill: &'static str,
    pub stroke: &'static str,
    pub stroke_width: u32,
    /// The child run of a call step, else the step's logs.
    pub href: String,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub cx: u32,
    /// Baselines of the text lines (name, phase, composition).
    pub ty: u32,
    pub ty2: u32,
    pub ty3: u32,
    /// Top-left corners of the boxes drawn behind a fan-out's node, back first.
    pub stack: Vec<(u32, u32)>,
    /// x of a call node's inner side lines (left, right).
    pub call_sides: Option<(u32, u32)>,
    /// A fan-out's progress bar: x, y, full width, finished width.
    pub progress: Option<(u32, u32, u32, u32)>,
}

/// The phase of a step as text (Pending before its first status).
pub fn step_phase(view: &StepView<'_>) -> &'static str {
    match view.status.map(|s| s.phase).unwrap_or_default() {
        StepPhase::Pending => "Pending",
        StepPhase::Running => "Running",
        StepPhase::Succeeded => "Succeeded",
        StepPhase::Failed => "Failed",
        StepPhase::Skipped => "Skipped",
        StepPhase::Cancelled => "Cancelled",
    }
}

/// Lays the steps out and turns the layout into SVG shapes. `compositions` is parallel to
/// `views`. The step whose logs are shown gets a thick outline.
pub fn graph(
    views: &[StepView<'_>],
    compositions: &[Option<Composition>],
    logs_url: &dyn Fn(&str) -> String,
    selected: Option<&str>,
) -> Graph {
    let nodes: Vec<layout::Node<'_>> = views
        .iter()
        .map(|v| layout::Node {
            name: v.name,
            depends: v.depends,
        })
        .collect();
    let laid = layout::layout(&nodes);
    let graph_nodes = laid
        .placed
        .iter()
        .map(|p| {
            node(
                &views[p.node],
                compositions[p.node].as_ref(),
                (p.x, p.y),
                logs_url,
                selected,
            )
        })
        .collect();
    let edges = laid
        .edges
        .iter()
        .map(|e| {
            let ((x1, y1), (x2, y2)) = (e.start, e.end);
            let mid = (x1 + x2) / 2;
            format!("M {x1} {y1} C {mid} {y1}, {mid} {y2}, {} {y2}", x2.saturating_sub(2))
        })
        .collect();
    Graph {
        width: laid.width,
        height: laid.height,
        nodes: graph_nodes,
        edges,
    }
}

fn node(
    view: &StepView<'_>,
    composition: Option<&Composition>,
    (x, y): (u32, u32),
    logs_url: &dyn Fn(&str) -> String,
    selected: Option<&str>,
) -> GraphNode {
    let phase = step_phase(view);
    let attempts = view.status.map_or(0, |s| s.attempts);
    let is_selected = selected == Some(view.name);
    let fan_out = composition.and_then(|c| c.fan_out.as_ref());
    let calls = composition.is_some_and(|c| c.call_dag.is_some() || c.child.is_some());
    let kind = match (fan_out.is_some(), calls) {
        (true, true) => "fan-out call",
        (true, false) => "fan-out",
        (false, true) => "call",
        (false, false) => "step",
    };
    let (w, h) = (NODE_WIDTH, NODE_HEIGHT);
    // Two lines centred in a plain box; three, higher up, in a composed one.
    let (ty, ty2, ty3) = if composition.is_some() {
        (y + 17, y + 32, y + 46)
    } else {
        (y + 24, y + 40, y + 40)
    };
    let mut description = format!("step {}: {phase}", view.name);
    if let Some(c) = composition {
        description.push_str(", ");
        description.push_str(&c.describe());
    }
    GraphNode {
        name: view.name.to_string(),
        label: crate::cli::table::truncate(view.name, NODE_LABEL_LEN),
        phase: phase.into(),
        detail: if attempts > 1 {
            format!(" ×{attempts}")
        } else {
            String::new()
        },
        kind,
        composition: composition.map(Composition::summary).unwrap_or_default(),
        description,
        fill: phase_colour(phase),
        stroke: if is_selected { "#1f2328" } else { "#ffffff" },
        stroke_width: if is_selected { 3 } else { 1 },
        href: composition
            .and_then(|c| c.child.as_ref())
            .map_or_else(|| logs_url(view.name), |(_, url)| url.clone()),
        x,
        y,
        w,
        h,
        cx: x + w / 2,
        ty,
        ty2,
        ty3,
        stack: if fan_out.is_some() {
            vec![
                (x + 2 * STACK_STEP, y + 2 * STACK_STEP),
                (x + STACK_STEP, y + STACK_STEP),
            ]
        } else {
            Vec::new()
        },
        call_sides: calls.then(|| (x + INSET / 2, x + w - INSET / 2)),
        progress: fan_out.map(|f| {
            let full = w - 2 * INSET;
            let done = (f64::from(full) * f.share_done()).round() as u32;
            (x + INSET, y + h - 7, full, done)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StepStatus;
    use crate::ui::views::composition::FanOut;

    fn view<'a>(name: &'a str, depends: &'a [String], status: Option<&'a StepStatus>) -> StepView<'a> {
        StepView {
            name,
            depends,
            level: 0,
            status,
            handler: false,
        }
    }

    #[test]
    fn calls_link_their_child_and_fan_outs_are_stacked_with_a_progress_bar() {
        let fetch = [String::from("fetch")];
        let running = StepStatus {
            name: "double".into(),
            phase: StepPhase::Running,
            attempts: 1,
            ..Default::default()
        };
        let views = [
            view("fetch", &[], None),
            view("bias", &fetch, None),
            view("double", &fetch, Some(&running)),
        ];
        let call = Composition {
            call_dag: Some("bias".into()),
            child: Some(("bias-1".into(), "/ns/ns/runs/bias-1".into())),
            reused: true,
            fan_out: None,
        };
        let fan = Composition {
            fan_out: Some(FanOut {
                total: 4,
                done: 1,
                running: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let logs = |s: &str| format!("/logs/{s}");
        let g = graph(&views, &[None, Some(call), Some(fan)], &logs, Some("fetch"));
        let by_name = |n: &str| g.nodes.iter().find(|x| x.name == n).unwrap();
        let (plain, bias, double) = (by_name("fetch"), by_name("bias"), by_name("double"));
        assert_eq!(
            (plain.kind, plain.href.as_str(), plain.stroke_width),
            ("step", "/logs/fetch", 3)
        );
        assert!(plain.stack.is_empty() && plain.call_sides.is_none() && plain.progress.is_none());
        assert_eq!((bias.kind, bias.href.as_str()), ("call", "/ns/ns/runs/bias-1"));
        assert_eq!(bias.composition, "call bias, reused");
        assert!(
            bias.description.contains("child run bias-1 (reused)"),
            "{}",
            bias.description
        );
        assert_eq!(bias.call_sides, Some((bias.x + 4, bias.x + NODE_WIDTH - 4)));
        assert_eq!((double.kind, double.composition.as_str()), ("fan-out", "1/4 done"));
        assert_eq!(double.stack.len(), 2);
        assert_eq!(double.href, "/logs/double");
        let (_, _, full, done) = double.progress.unwrap();
        assert_eq!(done, (f64::from(full) / 4.0).round() as u32);
        // The stacked boxes stay inside the drawing.
        for n in &g.nodes {
            for &(sx, sy) in &n.stack {
                assert!(sx + n.w <= g.width && sy + n.h <= g.height);
            }
        }
    }
}
