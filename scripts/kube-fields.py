#!/usr/bin/env python3
"""Derives the field sets of kubeadm's, the kubelet's and kube-proxy's configuration types from
their upstream Go sources (the json tags), and prints them as one JSON table.

    python3 scripts/kube-fields.py [UPSTREAM_DIR] > src/kube_fields.json

UPSTREAM_DIR defaults to ../shared/upstream relative to the repository root. The table is
checked in and used twice: by the kubeadm test double (tests/doubles/kube_double.py), which
rejects any field the real types do not have, and from Rust (`include_str!`) for inventory
passthrough fields. `tests/kube_fields.rs` re-runs this script and compares.

Table shape:
  "kinds":   {"kubeadm.k8s.io/v1beta4": {"InitConfiguration": "kubeadm.InitConfiguration", ...}, ...}
  "structs": {"kubeadm.InitConfiguration": {"nodeRegistration": "kubeadm.NodeRegistrationOptions",
              "dryRun": "scalar", "skipPhases": "[]scalar", "bootstrapTokens": "[]external:bootstraptokenv1.BootstrapToken", ...}}
A field's type is "scalar", "map" (a map of anything), a struct name from "structs", or
"external:PKG.Type" for a type defined outside these files (not checked); a leading "[]"
means a list of it. A field without a json tag keeps its Go name, as encoding/json does.
Embedded structs with `json:",inline"` (and untagged embeddings) add their fields to the
outer struct; metav1.TypeMeta adds apiVersion and kind.
"""
import json
import os
import re
import sys

FILES = [
    ("kubeadm", "kubeadm/v1beta4-types.go", "kubeadm.k8s.io/v1beta4"),
    ("kubelet", "kubelet/v1beta1-types.go", "kubelet.config.k8s.io/v1beta1"),
    ("kubeproxy", "kube-proxy/v1alpha1-types.go", "kubeproxy.config.k8s.io/v1alpha1"),
]

STRUCT_START = re.compile(r"^type (\w+) struct \{\s*$")
# A field: Name Type `tags`   or an embedding: pkg.Type `tags` / Type `tags`.
FIELD = re.compile(r"^\s+(\w+)\s+([^\s`]+)\s*(`[^`]*`)?\s*(//.*)?$")
EMBED = re.compile(r"^\s+(\*?[\w.]+)\s*(`[^`]*`)?\s*(//.*)?$")
JSON_TAG = re.compile(r'json:"([^"]*)"')
SCALARS = {"string", "bool", "int", "int32", "int64", "uint", "uint32", "uint64", "float32", "float64", "byte"}


def parse_go(text):
    """struct name -> list of (json name or None for inline, go type); plus named scalar types."""
    structs, named = {}, {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = STRUCT_START.match(line)
        if m:
            name, fields, depth = m.group(1), [], 1
            i += 1
            while i < len(lines) and depth > 0:
                l = lines[i]
                stripped = l.strip()
                if stripped.startswith("//") or not stripped:
                    i += 1
                    continue
                depth += l.count("{") - l.count("}")
                if depth <= 0:
                    break
                if depth == 1:
                    fm = FIELD.match(l)
                    em = EMBED.match(l)
                    if fm and not (fm.group(2).startswith("`")):
                        go_name, go_type, tags = fm.group(1), fm.group(2), fm.group(3) or ""
                        tag = JSON_TAG.search(tags)
                        jname = tag.group(1).split(",")[0] if tag else go_name
                        if tag and tag.group(1).split(",")[0] == "" and ",inline" in tag.group(1):
                            fields.append((None, go_type))
                        elif jname != "-":
                            fields.append((jname, go_type))
                    elif em:
                        fields.append((None, em.group(1)))
                i += 1
            structs[name] = fields
        else:
            t = re.match(r"^type (\w+) (\S+)\s*$", line)
            if t:
                named[t.group(1)] = t.group(2)
        i += 1
    return structs, named


def type_ref(go_type, prefix, structs, named):
    t = go_type.lstrip("*")
    if t.startswith("[]"):
        inner = type_ref(t[2:], prefix, structs, named)
        return "[]" + inner
    if t.startswith("map["):
        return "map"
    if t in SCALARS:
        return "scalar"
    if t in named:
        return type_ref(named[t], prefix, structs, named)
    if t in structs:
        return "%s.%s" % (prefix, t)
    if t == "metav1.Duration" or t == "metav1.Time":
        return "scalar"
    return "external:" + t


def build(upstream):
    kinds, out = {}, {}
    for prefix, rel, group in FILES:
        with open(os.path.join(upstream, rel)) as f:
            structs, named = parse_go(f.read())

        def fields_of(name, seen=()):
            res = {}
            for jname, go_type in structs[name]:
                if jname is None:
                    base = go_type.lstrip("*")
                    if base == "metav1.TypeMeta":
                        res["apiVersion"] = "scalar"
                        res["kind"] = "scalar"
                    elif base in structs and base not in seen:
                        res.update(fields_of(base, seen + (name,)))
                    else:
                        res["(inline)" + base] = "external:" + base
                else:
                    res[jname] = type_ref(go_type, prefix, structs, named)
            return res

        for name, fields in structs.items():
            out["%s.%s" % (prefix, name)] = dict(sorted(fields_of(name).items()))
            if any(j is None and t == "metav1.TypeMeta" for j, t in fields):
                kinds.setdefault(group, {})[name] = "%s.%s" % (prefix, name)
    return {
        "source": "derived by scripts/kube-fields.py from ../shared/upstream (see its README.md); do not edit",
        "kinds": {g: dict(sorted(k.items())) for g, k in sorted(kinds.items())},
        "structs": dict(sorted(out.items())),
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    # ../shared/upstream from the repository root (CI, the main checkout); a git worktree one
    # level deeper finds it one more level up.
    candidates = [os.path.join(here, "..", "..", "shared", "upstream"), os.path.join(here, "..", "..", "..", "shared", "upstream")]
    upstream = sys.argv[1] if len(sys.argv) > 1 else next((c for c in candidates if os.path.isdir(c)), candidates[0])
    json.dump(build(upstream), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
