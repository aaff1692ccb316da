//! Structural problems, all at once.
//!
//! serde stops at the first structural problem (an unknown key, an unknown enum value, a wrong
//! type, a missing key). Rather than re-describing the model here (a key list or a schema walk
//! that would have to agree with serde on every `#[serde(...)]` attribute, untagged enum and
//! skipped field), serde itself stays the only judge of structure, and this pass recovers from
//! each error the way a compiler does:
//!
//! 1. the source is read once into a tree of YAML nodes with byte ranges (`granit_parser`, the
//!    parser under serde-saphyr, so both agree on every position);
//! 2. the text is deserialized; on an error, the node it names is found in the tree, the error
//!    becomes a diagnostic, and the node is cut out of a working copy of the text: an unknown
//!    key with its value, a wrong or unknown value with its key (or its list item), a mapping
//!    that lacks a required key from its parent. Cutting replaces bytes with spaces, so every
//!    byte offset, and so every span, stays what it is in the file (a block list or mapping
//!    left empty becomes `[]` or `{}`, not null);
//! 3. repeat until the text deserializes, then the semantic checks run on the result.
//!
//! What a cut may cause is not reported: a mapping or list that lost an element is marked, and
//! problems found later at a marked node (a host that lost its only role has "no roles"; a
//! typo'd `nmae` leaves `name` missing) are the consequence of a problem already reported.
//! [`Repaired::explains`] applies the same to the checks of meaning (a list item's cut marks
//! the lists and mappings around it too: "no control plane" may follow from a misspelled role).
//! When a cut is impossible (an error with no place, an anchored node, the document itself,
//! a YAML syntax error), the problems found so far are returned with no inventory: never fewer
//! than serde's first, and never a silent success (the first error is always reported).

use std::collections::{BTreeSet, HashSet};

use granit_parser::{Event, Parser, StructureStyle};
use serde_saphyr::granit_parser;

use super::diagnostic::{Diagnostic, Place, did_you_mean};
use super::validate::{place, place_from_line_column, yaml_diagnostic};

/// The outcome of [`deserialize`]: the value when one could be made, the structural
/// diagnostics, and the nodes whose content a cut changed.
pub(crate) struct Deserialized<T> {
    pub value: Option<T>,
    pub diagnostics: Vec<Diagnostic>,
    pub repaired: Repaired,
}

/// Byte offsets of the nodes a cut changed (a mapping or list that lost an element, and the
/// lists and mappings around a list that did).
#[derive(Debug, Default)]
pub(crate) struct Repaired {
    starts: BTreeSet<usize>,
}

impl Repaired {
    /// Whether `d` may be a consequence of a cut: one of its labels is on a changed node.
    pub fn explains(&self, d: &Diagnostic) -> bool {
        d.labels.iter().any(|l| self.starts.contains(&l.place.offset))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Seq(StructureStyle),
    Map(StructureStyle),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    start: usize,
    /// End of the node's own text (exclusive); a block collection ends with its last child.
    end: usize,
    /// Zero-width (an empty value): it has no text of its own.
    empty: bool,
    /// Has an anchor: other nodes may refer to it, so it is never cut.
    anchored: bool,
    parent: Option<usize>,
    /// For mappings: key, value, key, value...
    children: Vec<usize>,
}

/// The document as nodes with byte ranges.
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// `None` when the text is not YAML the parser accepts (serde then reports why).
    fn parse(source: &str) -> Option<Tree> {
        let mut parser = Parser::new_from_str(source);
        let mut nodes: Vec<Node> = vec![];
        let mut stack: Vec<usize> = vec![];
        let mut documents = 0;
        while let Some(event) = parser.next_event() {
            let (event, span) = event.ok()?;
            let start = span.start.byte_offset()?;
            let end = span.end.byte_offset()?;
            let (kind, anchor) = match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return None;
                    }
                    continue;
                }
                Event::Scalar(_, _, anchor, _) => (Kind::Scalar, anchor),
                Event::Alias(_) => (Kind::Scalar, 0),
                Event::SequenceStart(style, anchor, _) => (Kind::Seq(style), anchor),
                Event::MappingStart(style, anchor, _) => (Kind::Map(style), anchor),
                Event::SequenceEnd | Event::MappingEnd => {
                    let id = stack.pop()?;
                    let flow = matches!(nodes[id].kind, Kind::Seq(StructureStyle::Flow) | Kind::Map(StructureStyle::Flow));
                    let last = nodes[id].children.iter().filter(|&&c| !nodes[c].empty).map(|&c| nodes[c].end).max();
                    nodes[id].end = if flow { end.max(nodes[id].start + 1) } else { last.unwrap_or(nodes[id].start + 1) };
                    continue;
                }
                _ => continue,
            };
            let id = nodes.len();
            let parent = stack.last().copied();
            nodes.push(Node { kind, start, end, empty: end == start && kind == Kind::Scalar, anchored: anchor != 0, parent, children: vec![] });
            if let Some(p) = parent {
                nodes[p].children.push(id);
            }
            if !matches!(kind, Kind::Scalar) {
                stack.push(id);
            }
        }
        Some(Tree { nodes })
    }

    fn is_key(&self, id: usize) -> bool {
        match self.nodes[id].parent {
            Some(p) => matches!(self.nodes[p].kind, Kind::Map(_)) && self.nodes[p].children.iter().position(|&c| c == id).is_some_and(|i| i % 2 == 0),
            None => false,
        }
    }

    /// The key whose value `id` is, when `id` is a mapping value.
    fn key_of(&self, id: usize) -> Option<usize> {
        let p = self.nodes[id].parent?;
        let siblings = &self.nodes[p].children;
        let pos = siblings.iter().position(|&c| c == id)?;
        (matches!(self.nodes[p].kind, Kind::Map(_)) && pos % 2 == 1).then(|| siblings[pos - 1])
    }

    /// The key node at `offset`.
    fn key_at(&self, offset: usize) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.nodes[i].start == offset && self.is_key(i))
    }

    /// The outermost value (not key) node at `offset`; an empty value only when no other starts there.
    fn value_at(&self, offset: usize) -> Option<usize> {
        let at = |empty: bool| (0..self.nodes.len()).find(|&i| self.nodes[i].start == offset && !self.is_key(i) && self.nodes[i].empty == empty);
        at(false).or_else(|| at(true))
    }

    /// The mapping a "missing key" error names: serde-saphyr places it on the mapping or on
    /// one of its keys.
    fn mapping_at(&self, offset: usize) -> Option<usize> {
        let map = |i: usize| matches!(self.nodes[i].kind, Kind::Map(_));
        (0..self.nodes.len()).find(|&i| self.nodes[i].start == offset && map(i)).or_else(|| {
            let key = self.key_at(offset)?;
            self.nodes[key].parent
        })
    }
}

/// The working copy of the text and what was cut from it.
struct Cutter<'t> {
    tree: &'t Tree,
    text: Vec<u8>,
    cut: HashSet<usize>,
}

impl Cutter<'_> {
    /// Cut node `id` out of its parent (with its key when it is a mapping value, with its value
    /// when it is a key). Returns the parent, or `None` when this cannot be done safely.
    fn cut(&mut self, id: usize) -> Option<usize> {
        let t = self.tree;
        let parent = t.nodes[id].parent?;
        let siblings = &t.nodes[parent].children;
        let pos = siblings.iter().position(|&c| c == id)?;
        let (first, last) = match t.nodes[parent].kind {
            Kind::Map(_) => {
                let k = pos - pos % 2;
                (siblings[k], *siblings.get(k + 1)?)
            }
            Kind::Seq(_) => (id, id),
            Kind::Scalar => return None,
        };
        if t.nodes[first].anchored || t.nodes[last].anchored || self.cut.contains(&first) {
            return None;
        }
        let mut start = t.nodes[first].start;
        let content_end = if t.nodes[last].empty { t.nodes[first].end } else { t.nodes[last].end.max(t.nodes[first].end) };
        let end = match t.nodes[parent].kind {
            Kind::Seq(StructureStyle::Block) => {
                // The item's "-" comes before it, with only blanks in between.
                let before = self.text[..start].iter().rposition(|b| !b" \t\r\n".contains(b))?;
                if self.text[before] != b'-' {
                    return None;
                }
                start = before;
                line_end(&self.text, content_end)
            }
            Kind::Map(StructureStyle::Block) => line_end(&self.text, content_end),
            // In a flow collection, take the comma after the entry; the last entry keeps the
            // one before it, as a trailing comma is allowed.
            _ => {
                let after = self.text[content_end..].iter().position(|b| !b" \t\r\n".contains(b)).map(|i| content_end + i);
                match after {
                    Some(i) if self.text[i] == b',' => i + 1,
                    _ => content_end,
                }
            }
        };
        if end <= start || end > self.text.len() {
            return None;
        }
        for b in &mut self.text[start..end] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
        self.cut.insert(first);
        self.cut.insert(last);
        let remaining =
            siblings.iter().step_by(if matches!(t.nodes[parent].kind, Kind::Map(_)) { 2 } else { 1 }).filter(|c| !self.cut.contains(c)).count();
        // An emptied block collection would read as null: write the empty flow form instead.
        match t.nodes[parent].kind {
            Kind::Seq(StructureStyle::Block) if remaining == 0 && end - start >= 2 => self.text[start..start + 2].copy_from_slice(b"[]"),
            Kind::Map(StructureStyle::Block) if remaining == 0 && end - start >= 2 => self.text[start..start + 2].copy_from_slice(b"{}"),
            _ => {}
        }
        Some(parent)
    }
}

/// The end of the line holding `offset` (the newline itself excluded).
fn line_end(text: &[u8], offset: usize) -> usize {
    text[offset..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(text.len(), |i| offset + i)
}

/// Structural problems reported in one run at most (each costs one more deserialization).
pub(crate) const MAX_PROBLEMS: usize = 200;

/// What an error asks to cut.
enum Target {
    Key,
    Value,
    Mapping,
}

/// Deserialize `source` with `parse`, recovering from every structural error (see the module
/// docs). `parse` is called once more than there are structural errors.
pub(crate) fn deserialize<T>(source: &str, parse: impl Fn(&str) -> Result<T, serde_saphyr::Error>) -> Deserialized<T> {
    let mut out = Deserialized { value: None, diagnostics: vec![], repaired: Repaired::default() };
    let first = match parse(source) {
        Ok(v) => {
            out.value = Some(v);
            return out;
        }
        Err(e) => e,
    };
    let Some(tree) = Tree::parse(source) else {
        out.diagnostics.push(yaml_diagnostic(&first, source));
        return out;
    };
    let mut cutter = Cutter { tree: &tree, text: source.as_bytes().to_vec(), cut: HashSet::new() };
    // Containers a cut changed (tree ids): a structural problem placed on one (the key a
    // mapping lost) is the cut's consequence.
    let mut changed: HashSet<usize> = HashSet::new();
    // Those and the nodes around them that a check of meaning may report on (a host that lost
    // a role may be why no host is a control plane).
    let mut poisoned: HashSet<usize> = HashSet::new();
    // (mapping, key) pairs a reported unknown key probably meant: their absence is no news.
    let mut meant: HashSet<(usize, String)> = HashSet::new();
    let mut error = first;
    // Each round cuts at least one node and deserializes the whole text again, so a file of
    // nothing but mistakes would cost rounds × size: past MAX_PROBLEMS, stop and say so.
    for round in 0..=tree.nodes.len() {
        if round == MAX_PROBLEMS {
            out.diagnostics.push(
                Diagnostic::error("kprov::inventory::too_many_problems", format!("more structural problems after these {MAX_PROBLEMS}"))
                    .label(error_offset(&error, source).map(|offset| Place { offset, len: 1 }), "the next one")
                    .help("fix these and run kprov validate again"),
            );
            return out;
        }
        let d = diagnose(&error, source, &tree);
        let offset = error_offset(&error, source);
        let target = match d.code {
            "kprov::inventory::unknown_key" | "kprov::inventory::duplicate_key" => Some(Target::Key),
            "kprov::inventory::unknown_value" | "kprov::inventory::wrong_type" => Some(Target::Value),
            "kprov::inventory::missing_key" => Some(Target::Mapping),
            _ => None,
        };
        let node = match (&target, offset) {
            (Some(Target::Key), Some(o)) => tree.key_at(o),
            (Some(Target::Value), Some(o)) => tree.value_at(o),
            (Some(Target::Mapping), Some(o)) => tree.mapping_at(o),
            _ => None,
        };
        let Some(node) = node.filter(|&n| !(round > 0 && inside_cut(&tree, &cutter.cut, n))) else {
            // Not a problem this pass can step over. After a cut, a problem that is not YAML
            // at all any more (an alias whose anchor went with a cut) is the cut's own doing:
            // the problems already reported stand, and nothing more is claimed.
            let artifact = round > 0 && String::from_utf8(cutter.text.clone()).ok().and_then(|t| Tree::parse(&t)).is_none();
            if !artifact {
                out.diagnostics.push(d);
            }
            return out;
        };
        let consequence = match target {
            Some(Target::Mapping) => changed.contains(&node) || missing_field(&error).is_some_and(|f| meant.contains(&(node, f.to_string()))),
            _ => changed.contains(&node),
        };
        if let (Some(Target::Key), serde_saphyr::Error::SerdeUnknownField { field, expected, .. }) = (&target, inner(&error))
            && let (Some(map), Some(m)) = (tree.nodes[node].parent, did_you_mean(field, expected.iter().copied()))
        {
            meant.insert((map, m.to_string()));
        }
        if !consequence {
            out.diagnostics.push(d);
        }
        let Some(parent) = cutter.cut(node) else {
            return out;
        };
        // Cutting an unknown key changes nothing serde sees; cutting a value changes its
        // mapping, and cutting a list item (or a whole mapping) its list and what holds it.
        if !matches!(target, Some(Target::Key)) {
            changed.insert(parent);
            poisoned.insert(parent);
            if matches!(tree.nodes[parent].kind, Kind::Seq(_)) || matches!(target, Some(Target::Mapping)) {
                let mut up = tree.nodes[parent].parent;
                while let Some(p) = up {
                    poisoned.insert(p);
                    up = tree.nodes[p].parent;
                }
            }
        }
        // Cuts write ASCII over whole characters; should one ever not, stop rather than guess.
        let Ok(text) = String::from_utf8(cutter.text.clone()) else {
            return out;
        };
        match parse(&text) {
            Ok(v) => {
                out.value = Some(v);
                out.repaired.starts = poisoned.iter().map(|&p| tree.nodes[p].start).collect();
                return out;
            }
            Err(e) => error = e,
        }
    }
    out
}

/// Whether `n` or one of its ancestors was cut (a stale position).
fn inside_cut(tree: &Tree, cut: &HashSet<usize>, n: usize) -> bool {
    let mut at = Some(n);
    while let Some(i) = at {
        if cut.contains(&i) {
            return true;
        }
        at = tree.nodes[i].parent;
    }
    false
}

fn inner(e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    let mut inner = e;
    while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error;
    }
    inner
}

fn missing_field(e: &serde_saphyr::Error) -> Option<&'static str> {
    match inner(e) {
        serde_saphyr::Error::SerdeMissingField { field, .. } => Some(field),
        _ => None,
    }
}

/// serde-saphyr's error as a diagnostic. Type mismatches it reports as "unexpected" events and
/// untagged enums that match no form are wrong types (and so can be stepped over); the rest is
/// [`yaml_diagnostic`]'s.
fn diagnose(e: &serde_saphyr::Error, source: &str, tree: &Tree) -> Diagnostic {
    use serde_saphyr::Error as E;
    let offset = error_offset(e, source);
    let at = offset.and_then(|o| tree.value_at(o)).map(|n| {
        let node = &tree.nodes[n];
        Place { offset: node.start, len: if node.kind == Kind::Scalar { (node.end - node.start).max(1) } else { 1 } }
    });
    let found = match offset.and_then(|o| tree.value_at(o)).map(|n| &tree.nodes[n]) {
        Some(n) if n.empty => "nothing (an empty value)".to_string(),
        Some(n) if matches!(n.kind, Kind::Map(_)) => "a mapping".to_string(),
        Some(n) if matches!(n.kind, Kind::Seq(_)) => "a list".to_string(),
        Some(n) => {
            let text = source.get(n.start..n.end).unwrap_or("").lines().next().unwrap_or("");
            let short: String = text.chars().take(40).collect();
            format!("`{short}{}`", if short.len() < text.len() { "…" } else { "" })
        }
        None => "something else".to_string(),
    };
    let wrong = |want: &str, help: &str| {
        Diagnostic::error("kprov::inventory::wrong_type", format!("expected {want}, found {found}"))
            .label(at, format!("not {want}"))
            .help(help.to_string())
    };
    let types = "see docs/inventory.md for the type of each key";
    match inner(e) {
        E::Unexpected { expected, .. } if at.is_some() => wrong(
            match *expected {
                x if x.contains("mapping") => "a mapping",
                x if x.contains("sequence") => "a list",
                x if x.contains("scalar") => "a single value",
                other => other,
            },
            types,
        ),
        E::Message { msg, .. } if at.is_some() && msg.starts_with("data did not match any variant of untagged enum") => {
            wrong("a string or a number", "quote versions: kubernetes_version: \"1.34\"")
        }
        // A whole number too large (or negative) for its key.
        E::InvalidScalar { ty, .. } if at.is_some() && found.trim_matches('`').parse::<i128>().is_ok() => {
            let range = match *ty {
                "u8" => "0 to 255",
                "u16" => "0 to 65535",
                "u32" => "0 to 4294967295",
                "u64" => "0 to 18446744073709551615",
                _ => "the key's range",
            };
            Diagnostic::error("kprov::inventory::wrong_type", format!("{found} is out of range: expected a whole number from {range}"))
                .label(at, "out of range")
                .help(types)
        }
        // A missing key outside a host (a bastion without its address): say where it belongs.
        E::SerdeMissingField { field, .. } => {
            let d = yaml_diagnostic(e, source);
            let owner =
                offset.and_then(|o| tree.mapping_at(o)).and_then(|m| tree.key_of(m)).and_then(|k| source.get(tree.nodes[k].start..tree.nodes[k].end));
            match owner {
                Some(key) => d.help(format!("`{key}` needs `{field}`; see docs/inventory.md for its keys")),
                None => d,
            }
        }
        _ => yaml_diagnostic(e, source),
    }
}

fn error_offset(e: &serde_saphyr::Error, source: &str) -> Option<usize> {
    let loc = inner(e).location().or_else(|| e.location())?;
    let at: Option<Place> = place(&loc).or_else(|| place_from_line_column(source, &loc));
    at.map(|p| p.offset)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{Cutter, Kind, Tree};

    /// Block and flow styles, compact lists, comments, nested collections.
    const TEXTS: &[&str] = &[
        "cluster:\n  cni: calico # the default\n  preflight:\n    ignore: [cpus, memory]\nssh:\n  user: pi\nhosts:\n  - { name: a, address: 10.0.0.1, roles: [control-plane], labels: { disk: ssd } }\n  - name: b\n    address: 10.0.0.2\n    roles:\n      - worker\n",
        "hosts:\n- name: a\n  address: 10.0.0.1\n  roles: [control-plane, worker]\n- name: b\n  address: 10.0.0.2\n  roles: [worker]\n",
        "hosts: [\n  { name: a, address: 10.0.0.1, roles: [control-plane] },\n  { name: b, # c\n    address: 10.0.0.2, roles: [worker] }\n]\n",
    ];

    /// Cutting any one node keeps the text YAML, its length, and every other scalar where it
    /// was: the spans serde-saphyr gives afterwards are the file's own.
    #[test]
    fn a_cut_keeps_every_other_node_in_place() {
        for text in TEXTS {
            let tree = Tree::parse(text).unwrap();
            for id in 1..tree.nodes.len() {
                let mut cutter = Cutter { tree: &tree, text: text.as_bytes().to_vec(), cut: HashSet::new() };
                if cutter.cut(id).is_none() {
                    continue;
                }
                let after = String::from_utf8(cutter.text.clone()).unwrap();
                assert_eq!(after.len(), text.len());
                let new = Tree::parse(&after).unwrap_or_else(|| panic!("cutting node {id} left no YAML:\n{after}"));
                let kept: HashSet<(usize, usize)> =
                    new.nodes.iter().filter(|n| n.kind == Kind::Scalar && !n.empty).map(|n| (n.start, n.end)).collect();
                let cut_ranges: Vec<(usize, usize)> = cutter.cut.iter().map(|&c| (tree.nodes[c].start, tree.nodes[c].end)).collect();
                let inside = |n: &super::Node| {
                    // Inside the cut entry: between its first and last node, or in a cut subtree.
                    let (lo, hi) = (cut_ranges.iter().map(|r| r.0).min().unwrap(), cut_ranges.iter().map(|r| r.1).max().unwrap());
                    n.start >= lo && n.end <= hi
                };
                for n in tree.nodes.iter().filter(|n| n.kind == Kind::Scalar && !n.empty && !inside(n)) {
                    assert!(kept.contains(&(n.start, n.end)), "cutting node {id} moved `{}`:\n{after}", &text[n.start..n.end]);
                }
            }
        }
    }
}
