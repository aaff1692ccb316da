#!/usr/bin/python3
"""Test doubles of kubeadm, kubelet and kubectl (one program; argv[0] picks the tool).

They behave like the real tools at the level kprov uses them, so kprov's roles are exercised
for real on the test nodes: kubeadm checks what its real preflight checks (swap, ip_forward,
containerd running, the memory cgroup, free ports, not already initialised), writes the files
kubeadm writes, prints join commands with real-looking tokens and CA hashes, and upgrades a
cluster one minor at a time (`upgrade apply`, `upgrade node`); the kubelet serves a small API on
port 6443 on a control plane once kubeadm has configured it and reports its own version; kubectl
talks to that API, and `kubectl exec` into the etcd pod runs etcdctl/etcdutl stand-ins whose
snapshot is the API's state. No pod ever runs. The API is plain HTTP (no openssl on the nodes), and the
"PKI" is random bytes in PEM shape whose SHA-256 is the discovery hash.
"""
import base64, hashlib, http.server, json, os, re, secrets, shutil, socket, socketserver
import subprocess, sys, threading, time, urllib.error, urllib.request

VERSION = "@VERSION@"          # replaced at package build time, e.g. v1.34.2
STATE_DIR = "/var/lib/kube-double"
API_STATE = STATE_DIR + "/api.json"
CLUSTER = STATE_DIR + "/cluster.json"
K8S = "/etc/kubernetes"
CNI_DAEMONSETS = {"calico-node", "kube-flannel-ds", "cilium", "weave-net", "canal", "kube-router"}


def die(msg, code=1):
    # What was printed comes first, as on a terminal (stdout to a pipe is block-buffered).
    sys.stdout.flush()
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(code)


def read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def hostname():
    return socket.gethostname()


def node_name():
    """The node's name: as the real kubelet, --hostname-override from kubeadm-flags.env."""
    try:
        m = re.search(r"--hostname-override=(\S+?)\"?$", open("/var/lib/kubelet/kubeadm-flags.env").read().strip())
        if m:
            return m.group(1)
    except OSError:
        pass
    return hostname()


def write_node_name(node):
    if node != hostname():
        write("/var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--hostname-override=%s"\n' % node)


# ---------------------------------------------------------------- the API (served by kubelet)

LOCK = threading.Lock()


def api_load():
    return read_json(API_STATE, {"tokens": {}, "nodes": {}, "objects": [], "networked": False,
                                 "ca_hash": "", "certificate_key": "", "endpoint": "", "version": VERSION,
                                 "revision": 1})


def version_tuple(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", v or "")
    return tuple(int(x) for x in m.groups()) if m else None


class Api(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        with LOCK:
            s = api_load()
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        if self.path == "/nodes":
            nodes = []
            for name, n in sorted(s["nodes"].items()):
                nodes.append(dict(n, name=name, ready=s["networked"]))
            return self.reply(200, nodes)
        if self.path == "/objects":
            return self.reply(200, s["objects"])
        if self.path == "/tokens":
            return self.reply(200, s["tokens"])
        if self.path == "/cluster":
            return self.reply(200, {"ca_hash": s["ca_hash"], "endpoint": s["endpoint"], "version": s.get("version", VERSION)})
        if self.path == "/state":
            return self.reply(200, s)
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        b = self.body()
        with LOCK:
            s = api_load()
            code, out = self.route(s, b)
            if code == 200 and self.path != "/heartbeat":
                s["revision"] = s.get("revision", 1) + 1
            write_json(API_STATE, s)
        self.reply(code, out)

    def route(self, s, b):
        now = time.time()
        if self.path == "/tokens":
            tok = b.get("token") or "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
            s["tokens"][tok] = now + float(b.get("ttl", 86400))
            return 200, {"token": tok}
        if self.path == "/tokens/delete":
            s["tokens"] = {t: e for t, e in s["tokens"].items() if not t.startswith(b.get("id", "\0"))}
            return 200, {}
        if self.path == "/certificate-key":
            s["certificate_key"] = b["key"]
            return 200, {}
        if self.path == "/join":
            tid = b.get("token", "").split(".")[0]
            exp = s["tokens"].get(b.get("token"))
            if exp is None or exp < now:
                return 403, {"error": 'couldn\'t validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID "%s"\ntoken id "%s" is invalid for this cluster or it has expired. Use "kubeadm token create" on the control-plane node to create a new valid token' % (tid, tid)}
            if b.get("ca_hash") != "sha256:" + s["ca_hash"]:
                return 403, {"error": 'cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "sha256:%s" are pinned' % s["ca_hash"]}
            if b.get("control_plane") and b.get("certificate_key") != s["certificate_key"]:
                return 403, {"error": "error downloading certs: error decoding certificate key: the certificate key is wrong or has expired (upload-certs keeps it for 2 hours)"}
            reply = {"ca": s.get("ca_pem", ""), "endpoint": s["endpoint"], "endpoint_explicit": s.get("endpoint_explicit", False)}
            if b.get("check_only"):
                return 200, reply
            # The kubelet's registration (after its TLS bootstrap): roles come from
            # mark-control-plane, labels and taints from the node's own registration.
            s["nodes"][b["node"]] = {"roles": "", "version": b.get("version", VERSION), "joined": now, "address": b.get("address", ""),
                                     "labels": b.get("labels", {}), "taints": b.get("taints", [])}
            return 200, reply
        if self.path == "/label":
            n = s["nodes"].get(b.get("name"))
            if n is None:
                return 404, {"error": 'nodes "%s" not found' % b.get("name")}
            n.setdefault("labels", {}).update(b.get("labels", {}))
            if b.get("roles"):
                n["roles"] = b["roles"]
            return 200, {}
        if self.path == "/node-update":
            n = s["nodes"].get(b.get("name"))
            if n is None:
                return 404, {"error": 'nodes "%s" not found' % b.get("name")}
            for field in ("labels", "taints", "annotations"):
                if field in b:
                    n[field] = b[field]
            return 200, {}
        if self.path == "/etcd-member":
            s.setdefault("etcd_members", [])
            if b.get("name") not in s["etcd_members"]:
                s["etcd_members"].append(b.get("name"))
            return 200, {}
        if self.path == "/apply":
            for o in b.get("objects", []):
                s["objects"] = [x for x in s["objects"] if (x["kind"], x["name"], x["namespace"]) != (o["kind"], o["name"], o["namespace"])]
                s["objects"].append(o)
                if o["kind"] == "DaemonSet" and o["name"] in CNI_DAEMONSETS:
                    s["networked"] = True
            return 200, {"applied": len(b.get("objects", []))}
        if self.path == "/delete":
            kind, name = b.get("kind"), b.get("name")
            if kind == "node":
                if name not in s["nodes"]:
                    return 404, {"error": 'nodes "%s" not found' % name}
                del s["nodes"][name]
            else:
                s["objects"] = [x for x in s["objects"] if not (x["kind"].lower() == kind and x["name"] == name)]
            return 200, {}
        if self.path == "/cordon":
            n = s["nodes"].get(b.get("name"))
            if n is None:
                return 404, {"error": 'nodes "%s" not found' % b.get("name")}
            n["unschedulable"] = bool(b.get("on"))
            return 200, {}
        if self.path == "/heartbeat":
            n = s["nodes"].get(b.get("name"))
            if n is not None:
                n["heartbeat"] = now
                n["version"] = b.get("version", n.get("version"))
            return 200, {}
        if self.path == "/cluster":
            s["version"] = b["version"]
            return 200, {}
        return 404, {"error": "not found"}


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True


# ---------------------------------------------------------------- helpers

def api_url(kubeconfig=None):
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        text = open(path).read()
    except OSError:
        die("error: error loading config file \"%s\": open %s: no such file or directory" % (path, path))
    m = re.search(r"server:\s*(\S+)", text)
    if not m:
        die("error: no server found in %s" % path)
    return m.group(1).replace("https://", "http://").rstrip("/")


def call(base, method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, OSError):
        host = base.split("//", 1)[-1]
        die("The connection to the server %s was refused - did you specify the right host or port?" % host)


def preflight(ignored, joining):
    errors = []
    try:
        swaps = open("/proc/swaps").read().strip().splitlines()[1:]
    except OSError:
        swaps = []
    if swaps:
        errors.append(("Swap", "running with swap on is not supported. Please disable swap"))
    try:
        if open("/proc/sys/net/ipv4/ip_forward").read().strip() != "1":
            errors.append(("FileContent--proc-sys-net-ipv4-ip_forward", "/proc/sys/net/ipv4/ip_forward contents are not set to 1"))
    except OSError:
        errors.append(("FileContent--proc-sys-net-ipv4-ip_forward", "/proc/sys/net/ipv4/ip_forward does not exist"))
    if subprocess.run(["systemctl", "is-active", "--quiet", "containerd"]).returncode != 0:
        errors.append(("CRI", 'container runtime is not running: validate service connection: validate CRI v1 runtime API for endpoint "unix:///run/containerd/containerd.sock": rpc error: code = Unavailable'))
    try:
        cg = open("/proc/cgroups").read()
        mem_ok = re.search(r"^memory\s+\d+\s+\d+\s+1\s*$", cg, re.M) is not None
    except OSError:
        mem_ok = os.path.exists("/sys/fs/cgroup/cgroup.controllers") and "memory" in open("/sys/fs/cgroup/cgroup.controllers").read()
    if not mem_ok:
        errors.append(("SystemVerification", "missing required cgroups: memory"))
    if joining:
        for f in ("kubelet.conf", "bootstrap-kubelet.conf", "pki/ca.crt"):
            if os.path.exists(K8S + "/" + f):
                errors.append(("FileAvailable--etc-kubernetes-" + f.replace("/", "-"), "%s/%s already exists" % (K8S, f)))
    else:
        if os.path.exists(K8S + "/manifests/kube-apiserver.yaml"):
            errors.append(("FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml", "/etc/kubernetes/manifests/kube-apiserver.yaml already exists"))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", 6443))
        except OSError:
            errors.append(("Port-6443", "Port 6443 is in use"))
        finally:
            s.close()
    errors = [e for e in errors if e[0] not in ignored and "all" not in ignored]
    print("[preflight] Running pre-flight checks")
    if errors:
        for name, msg in errors:
            sys.stderr.write("\t[ERROR %s]: %s\n" % (name, msg))
        die("[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n"
            "error execution phase preflight: [preflight] Some fatal errors occurred:")


def parse_flags(args, flags_with_values):
    opts, rest, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a[2:].split("=", 1)
                opts[k] = v
            elif a[2:] in flags_with_values and i + 1 < len(args):
                opts[a[2:]] = args[i + 1]
                i += 1
            else:
                opts[a[2:]] = True
        elif a.startswith("-") and len(a) == 2 and (a[1] in "fonc" or a[1] in flags_with_values) and i + 1 < len(args):
            opts[a[1]] = args[i + 1]
            i += 1
        elif a.startswith("-") and len(a) == 2 and a[1].isalpha():
            opts[a[1]] = True
        else:
            rest.append(a)
        i += 1
    return opts, rest


def restart_kubelet():
    subprocess.run(["systemctl", "restart", "kubelet"], check=False)


def wait_api(base, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def kubeconfig(server, user):
    return ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n  name: kubernetes\n"
            "contexts:\n- context:\n    cluster: kubernetes\n    user: %s\n  name: %s@kubernetes\ncurrent-context: %s@kubernetes\n"
            "users:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n"
            % (base64.b64encode(b"ca").decode(), server, user, user, user, user,
               base64.b64encode(secrets.token_bytes(32)).decode(), base64.b64encode(secrets.token_bytes(32)).decode()))


# ---------------------------------------------------------------- configuration files (strict)
#
# kubeadm decodes its --config documents into its v1beta4 types and the kubelet's and
# kube-proxy's config types. The real kubeadm only warns about a field those types do not
# have and ignores it, which would hide a kprov bug; the double refuses it. The field sets
# come from kube-fields.json, derived from the upstream types' json tags by
# scripts/kube-fields.py. The double reads a YAML subset (block mappings and sequences,
# plain, single- and double-quoted scalars, empty flow collections, comments): anything
# else is refused too, so a document it cannot read never passes as valid.

FIELDS_PATHS = ("/usr/share/kube-double/kube-fields.json", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "kube_fields.json"))
DOUBLE_DIR = "/etc/kprov-double"


class ConfigError(Exception):
    pass


def _strip_comment(line):
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and not (quote == '"' and i > 0 and line[i - 1] == "\\"):
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t-:[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _scalar(text, no):
    t = text.strip()
    if t.startswith('"'):
        try:
            v, end = json.JSONDecoder().raw_decode(t)
        except ValueError as e:
            raise ConfigError("line %d: cannot read the double-quoted scalar %s: %s" % (no, t, e))
        if t[end:].strip():
            raise ConfigError("line %d: text after a quoted scalar: %s" % (no, t))
        return v
    if t.startswith("'"):
        if not t.endswith("'") or len(t) < 2:
            raise ConfigError("line %d: unterminated single-quoted scalar" % no)
        return t[1:-1].replace("''", "'")
    if t in ("[]", "{}"):
        return [] if t == "[]" else {}
    if t[:1] in ("&", "*", "!", "|", ">", "[", "{", "@", "`", "%"):
        raise ConfigError("line %d: the kubeadm double does not read %r (anchors, aliases, tags, block scalars and flow collections are outside its YAML subset)" % (no, t))
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t in ("null", "~", "Null", "NULL", ""):
        return None
    if re.match(r"^[-+]?\d+$", t):
        return int(t)
    if ": " in t or t.endswith(":"):
        raise ConfigError("line %d: a mapping inside a scalar: %r" % (no, t))
    return t


def _split_key(text, no):
    if text[:1] in "\"'":
        q = text[0]
        end = text.find(q, 1)
        while q == '"' and end > 0 and text[end - 1] == "\\":
            end = text.find(q, end + 1)
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ConfigError("line %d: cannot read the key in %r" % (no, text))
        return _scalar(text[:end + 1], no), text[end + 2:]
    m = re.match(r"^([^\s:#][^:]*?):(\s+(.*))?$", text)
    if not m:
        raise ConfigError("line %d: expected `key: value`, found %r" % (no, text))
    return m.group(1), (m.group(3) or "")


def _is_item(text):
    return text == "-" or text.startswith("- ")


def _node(lines, i, ind):
    if _is_item(lines[i][1]):
        return _seq(lines, i, ind)
    return _map(lines, i, ind)


def _value_after(lines, i, ind):
    """The block value of the key on line i (indented deeper, or a sequence at the same indent)."""
    if i + 1 < len(lines) and (lines[i + 1][0] > ind or (lines[i + 1][0] == ind and _is_item(lines[i + 1][1]))):
        return _node(lines, i + 1, lines[i + 1][0])
    return None, i + 1


def _map(lines, i, ind):
    out = {}
    while i < len(lines) and lines[i][0] == ind and not _is_item(lines[i][1]):
        _, text, no = lines[i]
        key, rest = _split_key(text, no)
        if key in out:
            raise ConfigError("line %d: key %r appears twice" % (no, key))
        if rest.strip() == "":
            out[key], i = _value_after(lines, i, ind)
        else:
            out[key] = _scalar(rest, no)
            i += 1
    if i < len(lines) and lines[i][0] > ind:
        raise ConfigError("line %d: unexpected indentation" % lines[i][2])
    return out, i


def _seq(lines, i, ind):
    out = []
    while i < len(lines) and lines[i][0] == ind and _is_item(lines[i][1]):
        _, text, no = lines[i]
        rest = text[1:]
        stripped = rest.lstrip(" ")
        if stripped == "":
            if i + 1 < len(lines) and lines[i + 1][0] > ind:
                v, i = _node(lines, i + 1, lines[i + 1][0])
            else:
                v, i = None, i + 1
        elif _is_item(stripped) or re.match(r"^(\"[^\"]*\"|'[^']*'|[^\s:#\"'][^:]*?):(\s|$)", stripped):
            sub = ind + 1 + len(rest) - len(stripped)
            lines[i] = (sub, stripped, no)
            v, i = _node(lines, i, sub)
        else:
            v, i = _scalar(stripped, no), i + 1
        out.append(v)
    return out, i


def parse_yaml_documents(text):
    docs, cur = [], []
    for no, raw in enumerate(text.split("\n"), 1):
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise ConfigError("line %d: a tab in the indentation" % no)
        if re.match(r"^---\s*$", raw):
            docs.append(cur)
            cur = []
            continue
        line = _strip_comment(raw)
        if not line.strip():
            continue
        cur.append((len(line) - len(line.lstrip(" ")), line.strip(), no))
    docs.append(cur)
    out = []
    for lines in docs:
        if not lines:
            continue
        v, i = _node(lines, 0, lines[0][0])
        if i != len(lines):
            raise ConfigError("line %d: unexpected content" % lines[i][2])
        out.append(v)
    return out


def field_table():
    for p in FIELDS_PATHS:
        try:
            with open(p) as f:
                return json.load(f)
        except OSError:
            continue
    die("kubeadm double: kube-fields.json not found in %s" % " or ".join(FIELDS_PATHS))


def _check_type(v, t, path, table, errors):
    if v is None or t.startswith("external:"):
        return
    if t.startswith("[]"):
        if not isinstance(v, list):
            errors.append("%s: expected a list" % path)
            return
        for n, x in enumerate(v):
            _check_type(x, t[2:], "%s[%d]" % (path, n), table, errors)
    elif t == "scalar":
        if isinstance(v, (dict, list)):
            errors.append("%s: expected a scalar" % path)
    elif t == "map":
        if not isinstance(v, dict):
            errors.append("%s: expected a mapping" % path)
    else:
        _check_struct(v, t, path + ".", table, errors)


def _check_struct(obj, struct, prefix, table, errors):
    fields = table["structs"][struct]
    if not isinstance(obj, dict):
        errors.append("%s: expected a mapping" % prefix.rstrip("."))
        return
    open_struct = any(k.startswith("(inline)") for k in fields)
    for k, v in obj.items():
        t = fields.get(k)
        if t is None:
            if not open_struct:
                errors.append('unknown field "%s%s"' % (prefix, k))
            continue
        _check_type(v, t, prefix + k, table, errors)


def read_config(path, allowed_kinds):
    """The documents of a --config file by kind, after the strict field check."""
    try:
        text = open(path).read()
    except OSError as e:
        die("error: unable to read config from \"%s\": %s" % (path, e))
    try:
        docs = parse_yaml_documents(text)
    except ConfigError as e:
        die("error: unable to decode config from \"%s\": kubeadm double: %s" % (path, e))
    table = field_table()
    by_kind = {}
    for doc in docs:
        if not isinstance(doc, dict):
            die("error: unable to decode config from \"%s\": a document is not a mapping" % path)
        gv, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        struct = table["kinds"].get(gv, {}).get(kind)
        if struct is None:
            die("error: unable to decode config from \"%s\": no kind \"%s\" is registered for version \"%s\" (the double knows %s)"
                % (path, kind, gv, ", ".join("%s %s" % (g, k) for g, ks in sorted(table["kinds"].items()) for k in sorted(ks))))
        if kind not in allowed_kinds:
            die("error: unable to decode config from \"%s\": kind %s is not allowed here (expected %s)" % (path, kind, ", ".join(allowed_kinds)))
        if kind in by_kind:
            die("error: unable to decode config from \"%s\": two %s documents" % (path, kind))
        errors = []
        _check_struct(doc, struct, "", table, errors)
        if errors:
            die("error: unable to decode config from \"%s\": strict decoding error: %s (%s, Kind=%s; the real kubeadm warns and ignores an unknown field, the double refuses it)"
                % (path, "; ".join(errors), gv, kind))
        by_kind[kind] = doc
    return by_kind


def dig(doc, *keys, default=None):
    for k in keys:
        if not isinstance(doc, dict) or k not in doc:
            return default
        doc = doc[k]
    return doc


def is_ip(s):
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in s else socket.AF_INET, s)
        return True
    except (OSError, ValueError, TypeError):
        return False


def cidr(s):
    import ipaddress
    try:
        return ipaddress.ip_network(s, strict=False)
    except ValueError:
        return None


def validate_api_endpoint(ep, path, errors):
    addr = (ep or {}).get("advertiseAddress")
    if addr is not None and not is_ip(str(addr)):
        errors.append('%s.advertiseAddress: Invalid value: "%s": ip address is not valid' % (path, addr))
    port = (ep or {}).get("bindPort")
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        errors.append('%s.bindPort: Invalid value: %r: must be a valid port number between 1 and 65535, inclusive' % (path, port))


# The kubelet's rules for --node-labels and --register-with-taints (k8s.io/kubelet
# IsKubeletLabel; apimachinery IsQualifiedName / IsValidLabelValue).
KUBELET_LABELS = {"kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
                  "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
                  "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
                  "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch"}
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def in_ns(ns, domain):
    return ns == domain or ns.endswith("." + domain)


def qualified_name_ok(key):
    prefix, _, name = key.rpartition("/") if "/" in key else ("", "", key)
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN_RE.match(prefix)):
        return False
    return len(name) <= 63 and bool(NAME_RE.match(name))


def label_value_ok(v):
    return v == "" or (len(v) <= 63 and bool(NAME_RE.match(v)))


def node_labels_problem(value):
    labels, unknown = {}, []
    for part in (value or "").split(","):
        if not part:
            continue
        k, eq, v = part.partition("=")
        if not eq:
            return 'invalid argument "%s" for "--node-labels" flag: %s must be formatted as key=value' % (value, part), {}
        if not qualified_name_ok(k) or not label_value_ok(v):
            return 'invalid node labels: invalid label %s=%s' % (k, v), {}
        ns = k.split("/", 1)[0] if "/" in k else ""
        if (in_ns(ns, "kubernetes.io") or in_ns(ns, "k8s.io")) and k not in KUBELET_LABELS and not any(in_ns(ns, d) for d in KUBELET_NAMESPACES):
            unknown.append(k)
        labels[k] = v
    if unknown:
        return ("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: %s\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (%s) or be in the specifically allowed set (%s)"
                % (sorted(unknown), ", ".join(KUBELET_NAMESPACES), ", ".join(sorted(KUBELET_LABELS)))), {}
    return None, labels


def node_registration(nr, errors):
    """name, the kubelet's labels and taints from nodeRegistration; errors as kubeadm/kubelet say them."""
    nr = nr or {}
    args = {}
    for a in nr.get("kubeletExtraArgs") or []:
        if not isinstance(a, dict) or "name" not in a:
            errors.append("nodeRegistration.kubeletExtraArgs: an entry without a name")
            continue
        args[a["name"]] = str(a.get("value", ""))
    taints = []
    for n, t in enumerate(nr.get("taints") or []):
        if not isinstance(t, dict):
            errors.append("nodeRegistration.taints[%d]: expected a mapping" % n)
            continue
        extra = set(t) - {"key", "value", "effect", "timeAdded"}
        if extra:
            errors.append('unknown field "nodeRegistration.taints[%d].%s"' % (n, sorted(extra)[0]))
        key, value, effect = str(t.get("key", "")), str(t.get("value", "") or ""), t.get("effect")
        if not qualified_name_ok(key) or not label_value_ok(value):
            errors.append('nodeRegistration.taints[%d]: Invalid value: "%s=%s": invalid taint' % (n, key, value))
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errors.append('nodeRegistration.taints[%d].effect: Unsupported value: "%s": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"' % (n, effect))
        taints.append({"key": key, "value": value, "effect": effect})
    return {"name": nr.get("name"), "node_labels": args.get("node-labels", ""), "taints": taints, "has_taints": "taints" in nr and nr.get("taints") is not None}


def fail_validation(errors):
    if errors:
        die("\n".join(errors) + "\nTo see the stack trace of this error execute with --v=5 or higher")


# ---------------------------------------------------------------- patches and the kubelet's configuration
#
# kubeadm's `patches.directory` (InitConfiguration, JoinConfiguration) holds files named
# "target[suffix][+patchtype].extension": target one of PATCH_TARGETS, patchtype strategic
# (the default), merge or json, extension json or yaml; other names are ignored with a line
# saying so, an unknown patch type is an error. The double applies merge patches (RFC 7386)
# to the kubelet's configuration, the one target kprov patches, and refuses the other types
# for it rather than pretend.

PATCH_TARGETS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubeletconfiguration", "corednsdeployment")
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"


def merge_patch(doc, patch):
    if not isinstance(patch, dict):
        return patch
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def apply_patches(patches, target, doc, phase_name):
    directory = (patches or {}).get("directory")
    if not directory:
        return doc
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        die("error execution phase %s: could not list patch files for path \"%s\": %s" % (phase_name, directory, e))
    for name in names:
        base, dot, ext = name.rpartition(".")
        if not dot or ext not in ("json", "yaml"):
            print("[patches] Ignored patch file \"%s\": the extension is not json or yaml" % name)
            continue
        head, plus, kind = base.partition("+")
        kind = kind if plus else "strategic"
        found = [t for t in PATCH_TARGETS if head.startswith(t)]
        if not found:
            print("[patches] Ignored patch file \"%s\": unknown target, must be one of %s" % (name, list(PATCH_TARGETS)))
            continue
        if kind not in ("strategic", "merge", "json"):
            die("error execution phase %s: could not parse patch file \"%s\": unknown or missing patch type \"%s\", must be one of [strategic merge json]" % (phase_name, name, kind))
        if max(found, key=len) != target:
            continue
        path = os.path.join(directory, name)
        try:
            text = open(path).read()
            patch = json.loads(text) if ext == "json" else (parse_yaml_documents(text) or [None])[0]
        except (OSError, ValueError, ConfigError) as e:
            die("error execution phase %s: could not read patch file \"%s\": %s" % (phase_name, path, e))
        if kind != "merge":
            die("error execution phase %s: kubeadm double: patch type \"%s\" is not implemented for %s (%s)" % (phase_name, kind, target, path))
        doc = merge_patch(doc, patch)
        print("[patches] Applied patch of type \"application/merge-patch+json\" to target \"%s\"" % target)
    return doc


def dump_yaml(obj, indent=0):
    """Block YAML with JSON scalars (the subset parse_yaml_documents reads back)."""
    pad, lines = " " * indent, []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, json.dumps(k)))
                lines.append(dump_yaml(v, indent + 2))
            else:
                lines.append("%s%s: %s" % (pad, json.dumps(k), json.dumps(v) if not isinstance(v, (dict, list)) else ("{}" if isinstance(v, dict) else "[]")))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                lines.append("%s-" % pad)
                lines.append(dump_yaml(v, indent + 2))
            else:
                lines.append("%s- %s" % (pad, json.dumps(v) if not isinstance(v, (dict, list)) else ("{}" if isinstance(v, dict) else "[]")))
    return "\n".join(lines)


def write_kubelet_config(doc, phase_name):
    """The kubelet's configuration file, after kubeadm's patches. A field the kubelet's type does
    not have is refused: the real kubelet tries strict decoding and, for v1beta1, falls back to
    lenient decoding with a warning, which would hide a kprov bug, so the double is stricter."""
    table = field_table()
    errors = []
    _check_struct(doc, table["kinds"]["kubelet.config.k8s.io/v1beta1"]["KubeletConfiguration"], "", table, errors)
    if errors:
        die("error execution phase %s: the kubelet's configuration is invalid: strict decoding error: %s (the real kubelet warns and ignores an unknown field, the double refuses it)" % (phase_name, "; ".join(errors)))
    write(KUBELET_CONFIG, dump_yaml(doc) + "\n")


# ---------------------------------------------------------------- phases (and faults on request)
#
# A test makes a phase fail by writing its name to /etc/kprov-double/fail-phase on the node
# (`init/wait-control-plane`, `join/kubelet-start`...; a bare name matches either command), and
# pause by writing it to /etc/kprov-double/pause-phase: the double then creates
# /etc/kprov-double/paused and waits (120 s at most) until /etc/kprov-double/continue exists.


def marker(name):
    try:
        return open(os.path.join(DOUBLE_DIR, name)).read().strip()
    except OSError:
        return ""


def phase(command, name):
    fail, pause = marker("fail-phase"), marker("pause-phase")
    if pause in (name, "%s/%s" % (command, name)):
        write(os.path.join(DOUBLE_DIR, "paused"), "%s/%s\n" % (command, name))
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(DOUBLE_DIR, "continue")) and time.time() < deadline:
            time.sleep(0.2)
    if fail in (name, "%s/%s" % (command, name)):
        die("error execution phase %s: failed on request (the test double was told to fail here by %s/fail-phase)\n"
            "To see the stack trace of this error execute with --v=5 or higher" % (name, DOUBLE_DIR))


# ---------------------------------------------------------------- kubeadm

def kubeadm(args):
    if not args:
        die("Usage: kubeadm [command]")
    cmd, rest = args[0], args[1:]
    if cmd == "version":
        opts, _ = parse_flags(rest, {"output", "o"})
        if opts.get("o") == "short" or opts.get("output") == "short":
            print(VERSION)
        else:
            print('kubeadm version: &version.Info{Major:"1", Minor:"%s", GitVersion:"%s"}' % (VERSION.split(".")[1], VERSION))
        return
    if cmd == "init" and rest[:1] == ["phase"]:
        if rest[1:3] == ["upload-certs", "--upload-certs"] or (len(rest) > 1 and rest[1] == "upload-certs"):
            base = api_url(K8S + "/admin.conf")
            key = secrets.token_hex(32)
            call(base, "POST", "/certificate-key", {"key": key})
            print("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace")
            print("[upload-certs] Using certificate key:")
            print(key)
            return
        die("kubeadm double: unsupported init phase %s" % " ".join(rest[1:]))
    if cmd == "init":
        return kubeadm_init(rest)
    if cmd == "join":
        return kubeadm_join(rest)
    if cmd == "token":
        return kubeadm_token(rest)
    if cmd == "reset":
        return kubeadm_reset(rest)
    if cmd == "upgrade":
        return kubeadm_upgrade(rest)
    die('unknown command "%s" for "kubeadm"' % cmd)


def kubeadm_init(args):
    opts, _ = parse_flags(args, {"config", "pod-network-cidr", "apiserver-advertise-address", "control-plane-endpoint",
                                 "kubernetes-version", "ignore-preflight-errors", "service-cidr", "node-name"})
    docs = {}
    if "config" in opts:
        if any(k in opts for k in ("pod-network-cidr", "apiserver-advertise-address", "control-plane-endpoint", "kubernetes-version", "service-cidr", "node-name")):
            die("error: can not mix '--config' with arguments [%s]" % ", ".join(k for k in opts if k not in ("config", "upload-certs", "ignore-preflight-errors")))
        docs = read_config(opts["config"], ("InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"))
    init, cluster_cfg = docs.get("InitConfiguration", {}), docs.get("ClusterConfiguration", {})
    kubelet_cfg = docs.get("KubeletConfiguration", {})
    errors = []
    validate_api_endpoint(init.get("localAPIEndpoint"), "localAPIEndpoint", errors)
    reg = node_registration(init.get("nodeRegistration"), errors)
    ignored = set(x.strip() for x in str(opts.get("ignore-preflight-errors", "")).split(",") if x.strip())
    ignored |= set(dig(init, "nodeRegistration", "ignorePreflightErrors", default=[]) or [])
    advertise = opts.get("apiserver-advertise-address") or dig(init, "localAPIEndpoint", "advertiseAddress") or socket.gethostbyname(hostname())
    if "apiserver-advertise-address" in opts and not is_ip(advertise):
        errors.append('localAPIEndpoint.advertiseAddress: Invalid value: "%s": ip address is not valid' % advertise)
    explicit_endpoint = opts.get("control-plane-endpoint") or cluster_cfg.get("controlPlaneEndpoint") or ""
    endpoint = explicit_endpoint or advertise
    if ":" not in endpoint.rsplit("]", 1)[-1]:
        endpoint += ":6443"
    version = str(opts.get("kubernetes-version") or cluster_cfg.get("kubernetesVersion") or VERSION)
    pod_cidr = str(opts.get("pod-network-cidr") or dig(cluster_cfg, "networking", "podSubnet") or "")
    svc_cidr = str(opts.get("service-cidr") or dig(cluster_cfg, "networking", "serviceSubnet") or "10.96.0.0/12")
    for name, value in (("networking.podSubnet", pod_cidr), ("networking.serviceSubnet", svc_cidr)):
        if value and cidr(value) is None:
            errors.append('%s: Invalid value: "%s": couldn\'t parse subnet' % (name, value))
    p, s = cidr(pod_cidr) if pod_cidr else None, cidr(svc_cidr)
    if p is not None and s is not None and p.version == s.version and p.overlaps(s):
        errors.append('networking.podSubnet: Invalid value: "%s": the pod subnet overlaps the service subnet "%s"' % (pod_cidr, svc_cidr))
    fail_validation(errors)
    if not re.match(r"^v?\d+\.\d+\.\d+$", version):
        die("error: kubernetesVersion %r is not a valid version" % version)
    if version.lstrip("v").split(".")[:2] != VERSION.lstrip("v").split(".")[:2]:
        die("error execution phase preflight: this version of kubeadm only supports deploying clusters with the control plane version >= %s. Current version: %s" % (VERSION, version))
    node = opts.get("node-name") or reg["name"] or hostname()
    print("[init] Using Kubernetes version: %s" % version)
    phase("init", "preflight")
    preflight(ignored, joining=False)
    phase("init", "certs")
    ca = secrets.token_bytes(64)
    ca_pem = "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % base64.b64encode(ca).decode()
    ca_hash = hashlib.sha256(ca).hexdigest()
    for f in ("ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "etcd/ca", "etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client", "sa"):
        print('[certs] Generating "%s" certificate and key' % f)
        write(K8S + "/pki/%s.crt" % f, ca_pem if f == "ca" else "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % base64.b64encode(secrets.token_bytes(48)).decode())
        write(K8S + "/pki/%s.key" % f, "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(secrets.token_bytes(48)).decode(), 0o600)
    phase("init", "kubeconfig")
    server = "https://%s" % endpoint
    for name, user in (("admin.conf", "kubernetes-admin"), ("super-admin.conf", "kubernetes-super-admin"), ("kubelet.conf", "system:node:" + node),
                       ("controller-manager.conf", "system:kube-controller-manager"), ("scheduler.conf", "system:kube-scheduler")):
        print('[kubeconfig] Writing "%s" kubeconfig file' % name)
        write(K8S + "/" + name, kubeconfig(server if name != "kubelet.conf" else "https://%s:6443" % advertise, user), 0o600)
    phase("init", "etcd")
    os.makedirs("/var/lib/etcd", mode=0o700, exist_ok=True)
    manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n  containers:\n  - name: %s\n    command: [%s, --advertise-address=%s, --service-cluster-ip-range=%s, --cluster-cidr=%s]\n"
    write(K8S + "/manifests/etcd.yaml", manifest % ("etcd", "etcd", "etcd", advertise, svc_cidr, pod_cidr), 0o600)
    phase("init", "control-plane")
    for m in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        write(K8S + "/manifests/%s.yaml" % m, manifest % (m, m, m, advertise, svc_cidr, pod_cidr), 0o600)
    phase("init", "kubelet-start")
    problem, labels = node_labels_problem(reg["node_labels"])
    kubelet_doc = dict(kubelet_cfg) or {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}
    write_kubelet_config(apply_patches(init.get("patches"), "kubeletconfiguration", kubelet_doc, "kubelet-start"), "kubelet-start")
    write_node_name(node)
    # The API's state ("etcd"): the node registers itself once the kubelet runs.
    os.makedirs(STATE_DIR, exist_ok=True)
    state = api_load()
    taints = reg["taints"] if reg["has_taints"] else [{"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"}]
    state.update({"tokens": {}, "ca_hash": ca_hash, "ca_pem": ca_pem, "certificate_key": "", "objects": [],
                  "endpoint": endpoint, "endpoint_explicit": bool(explicit_endpoint), "networked": False,
                  "version": "v" + version.lstrip("v"), "revision": 1,
                  "nodes": {} if problem else {node: {"roles": "", "version": version, "joined": time.time(), "address": advertise,
                                                      "labels": dict(labels, **{"kubernetes.io/hostname": node}), "taints": taints}}})
    write_json(API_STATE, state)
    write_json(CLUSTER, {"endpoint": endpoint, "ca_hash": ca_hash, "pod_cidr": pod_cidr, "version": version})
    print("[kubelet-start] Starting the kubelet")
    restart_kubelet()
    phase("init", "wait-control-plane")
    print("[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\"")
    if problem:
        die("[kubelet-check] The kubelet is not running: %s\nerror execution phase wait-control-plane: couldn't initialize a Kubernetes cluster" % problem)
    if not wait_api("http://127.0.0.1:6443"):
        die("error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster: the API server did not come up (is the kubelet running?)")
    base = "http://127.0.0.1:6443"
    phase("init", "upload-config")
    # The ConfigMaps hold the documents as given (kubeadm's hold them defaulted): a joining node
    # reads the kubelet's configuration from kubelet-config, as the real join does.
    call(base, "POST", "/apply", {"objects": [{"kind": "ConfigMap", "name": "kubeadm-config", "namespace": "kube-system", "data": {"ClusterConfiguration": cluster_cfg}},
                                              {"kind": "ConfigMap", "name": "kubelet-config", "namespace": "kube-system", "data": {"kubelet": kubelet_doc}}]})
    phase("init", "upload-certs")
    cert_key = secrets.token_hex(32) if "upload-certs" in opts else ""
    if cert_key:
        call(base, "POST", "/certificate-key", {"key": cert_key})
        # As kubeadm's runUploadCerts: the key alone on the line after its label.
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        print("[upload-certs] Using certificate key:\n%s" % cert_key)
    phase("init", "mark-control-plane")
    call(base, "POST", "/label", {"name": node, "labels": {"node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": ""}, "roles": "control-plane"})
    phase("init", "bootstrap-token")
    token = "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
    call(base, "POST", "/tokens", {"token": token, "ttl": 86400})
    call(base, "POST", "/apply", {"objects": [{"kind": "ConfigMap", "name": "cluster-info", "namespace": "kube-public"}]})
    print("[bootstrap-token] Using token: %s" % token)
    phase("init", "kubelet-finalize")
    phase("init", "addon")
    call(base, "POST", "/apply", {"objects": [{"kind": "Deployment", "name": "coredns", "namespace": "kube-system"},
                                              {"kind": "ConfigMap", "name": "kube-proxy", "namespace": "kube-system", "data": {"config.conf": docs.get("KubeProxyConfiguration", {})}},
                                              {"kind": "DaemonSet", "name": "kube-proxy", "namespace": "kube-system"}]})
    print("[addons] Applied essential addon: CoreDNS\n[addons] Applied essential addon: kube-proxy")
    phase("init", "show-join-command")
    print("\nYour Kubernetes control-plane has initialized successfully!\n")
    print("To start using your cluster, you need to run the following as a regular user:\n\n  mkdir -p $HOME/.kube\n  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n")
    if cert_key:
        print("You can now join any number of control-plane nodes running the following command on each as root:\n")
        print("  kubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash sha256:%s \\\n\t--control-plane --certificate-key %s\n" % (endpoint, token, ca_hash, cert_key))
    print("Then you can join any number of worker nodes by running the following on each as root:\n")
    print("kubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash sha256:%s " % (endpoint, token, ca_hash))


def kubeadm_join(args):
    opts, rest = parse_flags(args, {"token", "discovery-token-ca-cert-hash", "certificate-key", "apiserver-advertise-address",
                                    "ignore-preflight-errors", "config", "node-name"})
    errors = []
    if "config" in opts:
        mixed = [k for k in opts if k not in ("config", "ignore-preflight-errors", "v")] + rest
        if mixed:
            die("error: can not mix '--config' with arguments %s" % mixed)
        cfg = read_config(opts["config"], ("JoinConfiguration",)).get("JoinConfiguration")
        if cfg is None:
            die("error: no JoinConfiguration found in %s" % opts["config"])
        bt = dig(cfg, "discovery", "bootstrapToken", default={}) or {}
        endpoint, token = str(bt.get("apiServerEndpoint") or ""), str(bt.get("token") or "")
        hashes = bt.get("caCertHashes") or []
        ca_hash = str(hashes[0]) if hashes else ""
        cp_cfg = cfg.get("controlPlane")
        cp = cp_cfg is not None
        cert_key = str((cp_cfg or {}).get("certificateKey") or "")
        if cp:
            validate_api_endpoint((cp_cfg or {}).get("localAPIEndpoint"), "controlPlane.localAPIEndpoint", errors)
        advertise = str(dig(cp_cfg or {}, "localAPIEndpoint", "advertiseAddress", default="") or "")
        reg = node_registration(cfg.get("nodeRegistration"), errors)
        patches = cfg.get("patches")
        ignored = set(dig(cfg, "nodeRegistration", "ignorePreflightErrors", default=[]) or [])
        if not endpoint:
            errors.append('discovery.bootstrapToken.apiServerEndpoint: Invalid value: "": discovery.bootstrapToken.apiServerEndpoint must be set')
        if not hashes and not bt.get("unsafeSkipCAVerification"):
            errors.append("discovery.bootstrapToken.caCertHashes: Invalid value: []: using token-based discovery without caCertHashes can be unsafe")
    else:
        if not rest:
            die("error execution phase preflight: discovery: Invalid value: \"\": bootstrapToken or file must be set")
        endpoint, token, ca_hash = rest[0], opts.get("token", ""), opts.get("discovery-token-ca-cert-hash", "")
        cp, cert_key, advertise = "control-plane" in opts, opts.get("certificate-key", ""), opts.get("apiserver-advertise-address", "")
        if cp and advertise and not is_ip(advertise):
            errors.append('controlPlane.localAPIEndpoint.advertiseAddress: Invalid value: "%s": ip address is not valid' % advertise)
        reg = {"name": opts.get("node-name"), "node_labels": "", "taints": [], "has_taints": False}
        patches = None
        ignored = set()
    ignored |= set(x.strip() for x in str(opts.get("ignore-preflight-errors", "")).split(",") if x.strip())
    if not re.match(r"^[a-z0-9]{6}\.[a-z0-9]{16}$", token):
        errors.append("discovery.bootstrapToken.token: Invalid value: the bootstrap token is invalid")
    fail_validation(errors)
    node = reg["name"] or hostname()
    phase("join", "preflight")
    preflight(ignored, joining=True)
    if cp and not cert_key:
        die("error execution phase control-plane-prepare/download-certs: the certificate key is required to join a control-plane node")
    base = "http://" + endpoint
    check = {"token": token, "ca_hash": ca_hash, "node": node, "control_plane": cp, "certificate_key": cert_key, "check_only": True}
    code, out = call(base, "POST", "/join", check)
    if code != 200:
        die("error execution phase preflight: %s\nTo see the stack trace of this error execute with --v=5 or higher" % out.get("error"))
    if cp and not out.get("endpoint_explicit"):
        die("error execution phase preflight: \nOne or more conditions for hosting a new control plane instance is not satisfied.\n\n"
            "unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address\n\n"
            "Please ensure that:\n* The cluster has a stable controlPlaneEndpoint address.\n* The certificates that must be shared among control plane instances are provided.\n")
    if cp:
        phase("join", "control-plane-prepare")
        write(K8S + "/pki/ca.crt", out.get("ca", ""))
        write(K8S + "/pki/ca.key", "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(secrets.token_bytes(48)).decode(), 0o600)
        for name, user in (("admin.conf", "kubernetes-admin"), ("controller-manager.conf", "system:kube-controller-manager"), ("scheduler.conf", "system:kube-scheduler")):
            write(K8S + "/" + name, kubeconfig("https://" + endpoint, user), 0o600)
        for m in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            write(K8S + "/manifests/%s.yaml" % m, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\n" % m, 0o600)
        phase("join", "check-etcd")
    phase("join", "kubelet-start")
    problem, labels = node_labels_problem(reg["node_labels"])
    if not cp:
        write(K8S + "/pki/ca.crt", out.get("ca", ""))
    write(K8S + "/bootstrap-kubelet.conf", kubeconfig("https://" + endpoint, "tls-bootstrap-token-user"), 0o600)
    _, objects = call(base, "GET", "/objects")
    kubelet_doc = next((o.get("data", {}).get("kubelet") for o in objects or [] if o.get("kind") == "ConfigMap" and o.get("name") == "kubelet-config"), None)
    if not kubelet_doc:
        die("error execution phase kubelet-start: configmaps \"kubelet-config\" is forbidden: the cluster has no kubelet configuration")
    write_kubelet_config(apply_patches(patches, "kubeletconfiguration", kubelet_doc, "kubelet-start"), "kubelet-start")
    write_node_name(node)
    print("[kubelet-start] Starting the kubelet")
    restart_kubelet()
    if problem:
        die("[kubelet-check] The kubelet is not running: %s\nerror execution phase kubelet-start: timed out waiting for the condition" % problem)
    print("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    taints = reg["taints"] if reg["has_taints"] else ([{"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"}] if cp else [])
    code, out = call(base, "POST", "/join", {"token": token, "ca_hash": ca_hash, "node": node, "control_plane": cp, "certificate_key": cert_key,
                                             "version": VERSION, "address": advertise, "labels": dict(labels, **{"kubernetes.io/hostname": node}),
                                             "taints": taints})
    if code != 200:
        die("error execution phase kubelet-start: %s" % out.get("error"))
    write(K8S + "/kubelet.conf", kubeconfig("https://" + endpoint, "system:node:" + node), 0o600)
    os.remove(K8S + "/bootstrap-kubelet.conf")
    if cp:
        phase("join", "etcd-join")
        os.makedirs("/var/lib/etcd", mode=0o700, exist_ok=True)
        call(base, "POST", "/etcd-member", {"name": node})
        write(K8S + "/manifests/etcd.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n", 0o600)
        phase("join", "control-plane-join")
        call(base, "POST", "/label", {"name": node, "labels": {"node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": ""}, "roles": "control-plane"})
        phase("join", "wait-control-plane")
    print("\nThis node has joined the cluster%s:" % (" and a new control plane instance was created" if cp else ""))
    print("* Certificate signing request was sent to apiserver and a response was received.")
    print("* The Kubelet was informed of the new secure connection details.\n")
    print("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.")


def kubeadm_upgrade(args):
    """`upgrade plan`, `upgrade apply [-y] VERSION` (first control plane) and `upgrade node`
    (every other node), with the real tool's version rules: the target is at most this kubeadm's
    own version, one minor above the cluster's at most, never a downgrade of the minor."""
    if not args or args[0] not in ("plan", "apply", "node"):
        die("Usage: kubeadm upgrade [plan|apply|node]")
    sub, rest = args[0], args[1:]
    opts, rest = parse_flags(rest, {"ignore-preflight-errors", "config", "certificate-renewal"})
    if sub == "node":
        if not os.path.exists(K8S + "/kubelet.conf"):
            die("error execution phase preflight: couldn't create a Kubernetes client from file \"%s/kubelet.conf\": this node is not part of a cluster" % K8S)
        conf = K8S + "/admin.conf" if os.path.exists(K8S + "/admin.conf") else K8S + "/kubelet.conf"
        code, info = call(api_url(conf), "GET", "/cluster")
        cluster = info.get("version", "") if code == 200 else ""
        if version_tuple(cluster) and version_tuple(cluster) > version_tuple(VERSION):
            die("[upgrade] FATAL: the cluster version %s is higher than this kubeadm's %s: upgrade kubeadm first" % (cluster, VERSION))
        if os.path.exists(K8S + "/manifests/kube-apiserver.yaml") or os.path.exists(K8S + "/manifests/etcd.yaml"):
            print("[upgrade/control-plane] Upgrading the control plane instance on this node to %s" % cluster)
            for m in os.listdir(K8S + "/manifests"):
                stamp_manifest(K8S + "/manifests/" + m, cluster)
        else:
            print("[upgrade] Skipping phase. Not a control plane node.")
        print("[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!")
        print("[upgrade] The configuration for this node was successfully upgraded!")
        print("[upgrade] Now please proceed with upgrading the kubelet configuration, then the kubelet package using your package manager.")
        return
    if not os.path.exists(K8S + "/admin.conf"):
        die("couldn't create a Kubernetes client from file \"%s/admin.conf\": failed to load admin kubeconfig: open %s/admin.conf: no such file or directory" % (K8S, K8S))
    base = api_url(K8S + "/admin.conf")
    _, info = call(base, "GET", "/cluster")
    current = info.get("version", VERSION)
    if sub == "plan":
        print("[upgrade/versions] Cluster version: %s\n[upgrade/versions] kubeadm version: %s" % (current, VERSION))
        print("You can now apply the upgrade by executing the following command:\n\n\tkubeadm upgrade apply %s\n" % VERSION)
        return
    if not rest:
        die("[upgrade/version] FATAL: missing one or more required arguments: the version to upgrade to")
    target = "v" + rest[0].lstrip("v")
    tv, kv, cv = version_tuple(target), version_tuple(VERSION), version_tuple(current)
    if tv is None:
        die("[upgrade/version] FATAL: couldn't parse version %r" % rest[0])
    errors = []
    if tv > kv:
        errors.append('Specified version to upgrade to "%s" is higher than the kubeadm version "%s". Upgrade kubeadm first using the tool you used to install kubeadm' % (target, VERSION))
    if cv and tv[:2] > (cv[0], cv[1] + 1):
        errors.append('Specified version to upgrade to "%s" is too high; kubeadm can upgrade only 1 minor version at a time' % target)
    if cv and tv[:2] < cv[:2]:
        errors.append('Specified version to upgrade to "%s" is an unsupported version and upgrading to that version is not supported; downgrades of the minor version are not supported' % target)
    if errors:
        die("[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n\t- %s\n\nCan be bypassed if you pass the --force flag" % "\n\t- ".join(errors))
    if not any(k in opts for k in ("y", "yes", "f", "force")):
        die("[upgrade/confirm] Are you sure you want to proceed? [y/N]: aborted (no terminal; pass --yes)")
    print("[upgrade/version] You have chosen to change the cluster version to \"%s\"" % target)
    print("[upgrade/versions] Cluster version: %s\n[upgrade/versions] kubeadm version: %s" % (current, VERSION))
    print("[upgrade/staticpods] Writing new Static Pod manifests to \"%s/tmp\"" % K8S)
    for m in os.listdir(K8S + "/manifests"):
        stamp_manifest(K8S + "/manifests/" + m, target)
    code, out = call(base, "POST", "/cluster", {"version": target})
    if code != 200:
        die("[upgrade/apply] FATAL: %s" % out)
    cluster = read_json(CLUSTER, {})
    cluster["version"] = target
    write_json(CLUSTER, cluster)
    print("[upgrade/successful] SUCCESS! Your cluster was upgraded to \"%s\". Enjoy!" % target)
    print("[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so.")


def stamp_manifest(path, version):
    """A static-pod manifest names its image's version, as kubeadm's do."""
    try:
        text = open(path).read()
    except OSError:
        return
    text = re.sub(r"^# image-version: .*\n", "", text, flags=re.M)
    write(path, "# image-version: %s\n%s" % (version, text), 0o600)


def kubeadm_token(args):
    if not args:
        die("Usage: kubeadm token [create|list|delete]")
    base = api_url(K8S + "/admin.conf")
    if args[0] == "create":
        opts, _ = parse_flags(args[1:], {"ttl"})
        ttl = opts.get("ttl", "24h")
        m = re.match(r"^(\d+)([smh]?)$", str(ttl))
        secs = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else 86400
        _, out = call(base, "POST", "/tokens", {"ttl": secs})
        if "print-join-command" in opts:
            cluster = read_json(CLUSTER, {})
            _, info = call(base, "GET", "/cluster")
            print("kubeadm join %s --token %s --discovery-token-ca-cert-hash sha256:%s " % (info.get("endpoint") or cluster.get("endpoint"), out["token"], info.get("ca_hash")))
        else:
            print(out["token"])
        return
    if args[0] == "list":
        _, toks = call(base, "GET", "/tokens")
        print("TOKEN                     TTL         EXPIRES")
        for t, exp in toks.items():
            left = exp - time.time()
            print("%s   %s   %s" % (t, "%dh" % (left // 3600) if left > 0 else "<invalid>", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))))
        return
    if args[0] == "delete":
        for t in args[1:]:
            call(base, "POST", "/tokens/delete", {"id": t.split(".")[0]})
            print('bootstrap token "%s" deleted' % t.split(".")[0])
        return
    die('unknown command "%s" for "kubeadm token"' % args[0])


def kubeadm_reset(args):
    opts, _ = parse_flags(args, set())
    if "f" not in opts and "force" not in opts:
        die("[reset] Are you sure you want to proceed? [y/N]: aborted (use -f)")
    conf = K8S + "/kubelet.conf"
    if os.path.exists(conf):
        try:
            base = api_url(conf)
            req = urllib.request.Request(base + "/delete", data=json.dumps({"kind": "node", "name": node_name()}).encode(), method="POST")
            urllib.request.urlopen(req, timeout=3).close()
        except Exception:
            print("[reset] The API server is unreachable: the node is not removed from the cluster")
    print("[reset] Stopping the kubelet service")
    subprocess.run(["systemctl", "stop", "kubelet"], check=False)
    for p in (K8S + "/manifests", K8S + "/pki", "/var/lib/kubelet", "/var/lib/etcd", STATE_DIR):
        shutil.rmtree(p, ignore_errors=True)
    for f in ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf", "controller-manager.conf", "scheduler.conf"):
        try:
            os.remove(K8S + "/" + f)
        except OSError:
            pass
    print("[reset] Deleted contents of the etcd data directory and the Kubernetes configuration files")


# ---------------------------------------------------------------- kubelet

def kubelet(args):
    if "--version" in args:
        print("Kubernetes " + VERSION)
        return
    if not os.path.exists("/var/lib/kubelet/config.yaml"):
        die('E "command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml, error: open /var/lib/kubelet/config.yaml: no such file or directory"')
    server = None
    if os.path.exists(K8S + "/manifests/kube-apiserver.yaml"):
        server = ThreadingServer(("0.0.0.0", 6443), Api)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print("kube-apiserver (double) serving on :6443", flush=True)
    print("kubelet (double) running", flush=True)
    while True:
        try:
            base = api_url(K8S + "/kubelet.conf") if os.path.exists(K8S + "/kubelet.conf") else None
            if base:
                req = urllib.request.Request(base + "/heartbeat", data=json.dumps({"name": node_name(), "version": VERSION}).encode(), method="POST")
                urllib.request.urlopen(req, timeout=3).close()
        except Exception:
            pass
        time.sleep(10)


# ---------------------------------------------------------------- kubectl

def manifest_objects(text):
    objs = []
    for doc in re.split(r"^---\s*$", text, flags=re.M):
        kind = re.search(r"^kind:\s*(\S+)", doc, re.M)
        meta = re.search(r"^metadata:\s*\n((?:[ \t]+.*\n?)*)", doc, re.M)
        if not kind or not meta:
            continue
        name = re.search(r"^\s+name:\s*\"?([^\"\s]+)", meta.group(1), re.M)
        ns = re.search(r"^\s+namespace:\s*\"?([^\"\s]+)", meta.group(1), re.M)
        if name:
            objs.append({"kind": kind.group(1), "name": name.group(1), "namespace": ns.group(1) if ns else "default"})
    return objs


def kubectl(args):
    command = []
    if "--" in args:
        i = args.index("--")
        args, command = args[:i], args[i + 1:]
    opts, rest = parse_flags(args, {"kubeconfig", "namespace", "n", "filename", "image", "replicas", "output", "c", "container", "timeout"})
    if "n" in opts and "namespace" not in opts:
        opts["namespace"] = opts["n"]
    if not rest:
        die("kubectl controls the Kubernetes cluster manager.")
    out_format = opts.get("o") or opts.get("output")
    if rest[0] == "version" and "client" in opts:
        print(json.dumps({"clientVersion": {"gitVersion": VERSION}}) if out_format == "json" else "Client Version: " + VERSION)
        return
    base = api_url(opts.get("kubeconfig"))
    verb, what = rest[0], rest[1:]
    if verb == "version":
        _, info = call(base, "GET", "/cluster")
        server = info.get("version", VERSION)
        if out_format == "json":
            v = version_tuple(server) or (0, 0, 0)
            print(json.dumps({"clientVersion": {"major": VERSION.split(".")[0].lstrip("v"), "minor": VERSION.split(".")[1], "gitVersion": VERSION},
                              "serverVersion": {"major": str(v[0]), "minor": str(v[1]), "gitVersion": server}}, indent=2))
        else:
            print("Client Version: %s\nServer Version: %s" % (VERSION, server))
        return
    if verb == "exec":
        return kubectl_exec(base, opts, what, command)
    if verb == "cluster-info":
        call(base, "GET", "/healthz")
        print("Kubernetes control plane is running at %s" % base)
        return
    if verb == "apply":
        src = opts.get("f") or opts.get("filename")
        if not src:
            die("error: must specify one of -f and -k")
        if src == "-":
            text = sys.stdin.read()
        elif "://" in src:
            try:
                text = urllib.request.urlopen(src, timeout=30).read().decode()
            except Exception as e:
                die("error: unable to read URL \"%s\", server reported %s" % (src, e))
        else:
            try:
                text = open(src).read()
            except OSError:
                die("error: the path \"%s\" does not exist" % src)
        objs = manifest_objects(text)
        if not objs:
            die("error: no objects passed to apply")
        call(base, "POST", "/apply", {"objects": objs})
        for o in objs:
            print("%s/%s created" % (o["kind"].lower(), o["name"]))
        return
    if verb == "get" and what and what[0] in ("nodes", "node", "no"):
        _, nodes = call(base, "GET", "/nodes")
        if len(what) > 1:
            nodes = [n for n in nodes if n["name"] == what[1]]
            if not nodes:
                die('Error from server (NotFound): nodes "%s" not found' % what[1])
        out = opts.get("o") or opts.get("output")
        if out == "json" or (out or "").startswith("jsonpath="):
            items = [node_object(n) for n in nodes]
            if out == "json":
                print(json.dumps({"kind": "List", "items": items}, indent=2))
            elif len(what) > 1:
                sys.stdout.write(jsonpath(out[len("jsonpath="):], items[0]))
            else:
                sys.stdout.write(jsonpath(out[len("jsonpath="):], {"kind": "List", "items": items}))
            return
        print("%-20s %-28s %-15s %-6s %s" % ("NAME", "STATUS", "ROLES", "AGE", "VERSION"))
        for n in nodes:
            status = "Ready" if n["ready"] else "NotReady"
            if n.get("unschedulable"):
                status += ",SchedulingDisabled"
            print("%-20s %-28s %-15s %-6s %s" % (n["name"], status, n["roles"] or "<none>", "%dm" % ((time.time() - n["joined"]) // 60), n["version"]))
        return
    if verb == "get" and what:
        kind = {"daemonset": "DaemonSet", "ds": "DaemonSet", "daemonsets": "DaemonSet", "deployment": "Deployment",
                "deployments": "Deployment", "deploy": "Deployment", "pods": "Pod", "pod": "Pod"}.get(what[0].split("/")[0])
        if kind is None:
            die('error: the server doesn\'t have a resource type "%s"' % what[0])
        _, objs = call(base, "GET", "/objects")
        ns = opts.get("namespace", "default")
        if "A" in opts or "all-namespaces" in opts:
            ns = None
        name = what[1] if len(what) > 1 else (what[0].split("/", 1)[1] if "/" in what[0] else None)
        hits = [o for o in objs if o["kind"] == kind and (ns is None or o["namespace"] == ns) and (name is None or o["name"] == name)]
        if name and not hits:
            die('Error from server (NotFound): %s.apps "%s" not found' % (what[0].split("/")[0].rstrip("s"), name))
        print("NAMESPACE   NAME   READY")
        for o in hits:
            r = o.get("replicas", 1)
            print("%s   %s   %s/%s" % (o["namespace"], o["name"], r, r))
        return
    if verb == "create" and what[:1] == ["deployment"] and len(what) > 1:
        obj = {"kind": "Deployment", "name": what[1], "namespace": opts.get("namespace", "default"), "image": opts.get("image"), "replicas": int(opts.get("replicas", 1))}
        call(base, "POST", "/apply", {"objects": [obj]})
        print("deployment.apps/%s created" % what[1])
        return
    if verb == "rollout" and what[:1] == ["status"] and len(what) > 1:
        # A deployment rolls out once a CNI gave the pods a network and a node can take them.
        kind, _, name = what[1].partition("/")
        ns = opts.get("namespace", "default")
        _, objs = call(base, "GET", "/objects")
        if not any(o["kind"].lower() == kind.lower() and o["name"] == name and o["namespace"] == ns for o in objs):
            die('Error from server (NotFound): deployments.apps "%s" not found' % name)
        _, nodes = call(base, "GET", "/nodes")
        if not any(n["ready"] and not n.get("unschedulable") for n in nodes):
            die("error: timed out waiting for the condition")
        print('deployment "%s" successfully rolled out' % name)
        return
    if verb == "set" and what[:1] == ["env"]:
        print("%s env updated" % what[1])
        return
    if verb in ("label", "annotate", "taint"):
        return kubectl_node_metadata(base, verb, opts, what)
    if verb in ("cordon", "uncordon", "drain") and what:
        code, out = call(base, "POST", "/cordon", {"name": what[0], "on": verb != "uncordon"})
        if code != 200:
            die("Error from server (NotFound): " + out.get("error", ""))
        print("node/%s %s" % (what[0], {"cordon": "cordoned", "uncordon": "uncordoned", "drain": "drained"}[verb]))
        return
    if verb == "delete" and len(what) >= 2:
        code, out = call(base, "POST", "/delete", {"kind": what[0].rstrip("s"), "name": what[1]})
        if code != 200:
            die("Error from server (NotFound): " + out.get("error", ""))
        print('%s "%s" deleted' % (what[0].rstrip("s"), what[1]))
        return
    die('kubectl double: unsupported command: %s' % " ".join(rest))


# ---------------------------------------------------------------- nodes: label, taint, annotate, jsonpath
#
# As kubectl's own (k8s.io/kubectl pkg/cmd/label, pkg/cmd/annotate, pkg/cmd/taint and its
# taint utilities, client-go util/jsonpath), for nodes:
# - `label`/`annotate NODE [--overwrite] k=v ... k-`: setting a key that exists (even to the
#   same value) fails without --overwrite ("'k' already has a value (v), and --overwrite is
#   false"); removing a key that is not there prints `label "k" not found.` and succeeds;
#   modifying and removing one key in one command fails. Keys are checked by the API server
#   (qualified names), label values by kubectl.
# - `taint NODE [--overwrite] k=v:Effect k:Effect k:Effect- k-`: a taint is identified by key
#   and effect; adding one whose key and effect exist fails without --overwrite ("node N
#   already has K taint(s) with same effect(s) and --overwrite is false"); removing one that
#   is not there fails (`taint "k:Effect" not found`); `k-` removes every effect of k.
# - `get node NAME -o jsonpath=TEMPLATE`: text, `{"literal"}` and `{.field.path}` (a `\.` in
#   a name is a dot); a missing field prints nothing (kubectl allows missing keys); a mapping
#   or list prints as compact JSON with sorted keys (Go's json.Marshal), a string as itself.
#   Anything else (range, filters, wildcards) is refused rather than misread.

def node_object(n):
    taints = [dict({"key": t["key"], "effect": t["effect"]}, **({"value": t["value"]} if t.get("value") else {})) for t in n.get("taints") or []]
    meta = {"name": n["name"], "labels": n.get("labels", {})}
    if n.get("annotations"):
        meta["annotations"] = n["annotations"]
    return {"metadata": meta,
            "spec": dict({"unschedulable": n.get("unschedulable", False)}, **({"taints": taints} if taints else {})),
            "status": {"conditions": [{"type": "Ready", "status": "True" if n["ready"] else "False"}],
                       "nodeInfo": {"kubeletVersion": n["version"]}}}


def jsonpath(template, obj):
    out, i = [], 0
    while i < len(template):
        if template[i] != "{":
            j = template.find("{", i)
            j = len(template) if j < 0 else j
            out.append(template[i:j])
            i = j
            continue
        j = template.find("}", i)
        if j < 0:
            die("error: error parsing jsonpath %s, unclosed action" % template)
        expr = template[i + 1:j]
        i = j + 1
        if expr.startswith('"') and expr.endswith('"') and len(expr) >= 2:
            out.append(json.loads(expr))
            continue
        if not expr.startswith(".") or any(c in expr for c in "[]*?@()$ ") or expr.startswith("range") or expr == "end":
            die("error: kubectl double: jsonpath %r is outside the subset it implements (fields and string literals)" % expr)
        parts = [p.replace("\0", ".") for p in expr[1:].replace("\\.", "\0").split(".")] if expr != "." else []
        cur = obj
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is None:
                break
        if cur is None:
            continue
        if isinstance(cur, (dict, list)):
            out.append(json.dumps(cur, sort_keys=True, separators=(",", ":")))
        elif isinstance(cur, bool):
            out.append("true" if cur else "false")
        else:
            out.append(str(cur))
    return "".join(out)


def node_target(what):
    """`node NAME`, `nodes NAME`, `no NAME` or `node/NAME`, then the rest."""
    if what and "/" in what[0]:
        kind, _, name = what[0].partition("/")
        rest = what[1:]
    elif len(what) >= 2:
        kind, name, rest = what[0], what[1], what[2:]
    else:
        die("error: you must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.")
    if kind not in ("node", "nodes", "no"):
        die("kubectl double: %s is implemented for nodes only, not %r" % ("label/annotate/taint", kind))
    return name, rest


def parse_taint(spec):
    parts = spec.split(":")
    if len(parts) == 1:
        key, value, effect = parts[0], "", ""
    elif len(parts) == 2:
        effect = parts[1]
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            die("error: invalid taint effect: %s, unsupported taint effect" % effect)
        kv = parts[0].split("=")
        if len(kv) > 2:
            die("error: invalid taint spec: %s" % spec)
        key, value = kv[0], (kv[1] if len(kv) == 2 else "")
        if not label_value_ok(value):
            die("error: invalid taint spec: %s, a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'" % spec)
    else:
        die("error: invalid taint spec: %s" % spec)
    if not qualified_name_ok(key):
        die("error: invalid taint spec: %s, name part must consist of alphanumeric characters, '-', '_' or '.'" % spec)
    return {"key": key, "value": value, "effect": effect}


def kubectl_node_metadata(base, verb, opts, what):
    name, specs = node_target(what)
    overwrite = opts.get("overwrite") in (True, "true")
    _, nodes = call(base, "GET", "/nodes")
    node = next((n for n in nodes if n["name"] == name), None)
    if node is None:
        die('Error from server (NotFound): nodes "%s" not found' % name)
    if verb == "taint":
        add, remove = [], []
        for spec in specs:
            if spec.endswith("-"):
                t = parse_taint(spec[:-1])
                remove.append((t["key"], t["effect"]))
            else:
                t = parse_taint(spec)
                if not t["effect"]:
                    die("error: invalid taint spec: %s" % spec)
                if any(a["key"] == t["key"] and a["effect"] == t["effect"] for a in add):
                    die("error: duplicated taints with the same key and effect: %s" % spec)
                add.append(t)
        if not add and not remove:
            die("error: at least one taint update is required")
        old = [dict(t, value=t.get("value", "")) for t in node.get("taints") or []]
        if not overwrite:
            exists = [t["key"] for t in add if any(o["key"] == t["key"] and o["effect"] == t["effect"] for o in old)]
            if exists:
                die("error: node %s already has %s taint(s) with same effect(s) and --overwrite is false" % (name, ",".join(exists)))
        new = list(add) + [o for o in old if not any(o["key"] == t["key"] and o["effect"] == t["effect"] for t in add)]
        added = len(old) != len(new)
        errors, removed = [], False
        for key, effect in remove:
            kept = [t for t in new if not (t["key"] == key and (not effect or t["effect"] == effect))]
            removed = len(kept) != len(new)
            if not removed:
                errors.append('taint "%s" not found' % (key + (":" + effect if effect else "")))
            new = kept
        if errors:
            die("error: " + "; ".join(errors) if len(errors) == 1 else "error: [%s]" % ", ".join(errors))
        code, out = call(base, "POST", "/node-update", {"name": name, "taints": new})
        if code != 200:
            die("Error from server: " + out.get("error", ""))
        print("node/%s %s" % (name, "modified" if (added and removed) or overwrite else "tainted" if added else "untainted"))
        return
    field = "labels" if verb == "label" else "annotations"
    current = dict(node.get(field) or {})
    sets, removes = {}, []
    for spec in specs:
        if "=" in spec:
            parts = spec.split("=") if verb == "label" else spec.split("=", 1)
            if len(parts) != 2:
                die("error: invalid %s spec: %s" % ("label" if verb == "label" else "annotation", spec))
            if verb == "label" and not label_value_ok(parts[1]):
                die('error: invalid label value: "%s": a valid label must be an empty string or consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character' % spec)
            sets[parts[0]] = parts[1]
        elif spec.endswith("-"):
            removes.append(spec[:-1])
        else:
            die("error: unknown %s spec: %s" % ("label" if verb == "label" else "annotation", spec))
    if any(r in sets for r in removes):
        die("error: can not both modify and remove a%s in the same command" % (" label" if verb == "label" else "n annotation"))
    if not sets and not removes:
        die("error: at least one %s update is required" % ("label" if verb == "label" else "annotation"))
    if not overwrite:
        found = ["'%s' already has a value (%s)" % (k, current[k]) for k in sets if k in current]
        if found:
            if verb == "label":
                die("error: " + ("%s, and --overwrite is false" % found[0] if len(found) == 1 else "[%s]" % ", ".join(f + ", and --overwrite is false" for f in found)))
            die("error: --overwrite is false but found the following declared annotation(s): " + "; ".join(found))
    for k in sets:
        if not qualified_name_ok(k):
            die('The Node "%s" is invalid: metadata.%s: Invalid value: "%s": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\'' % (name, field, k))
    for k in removes:
        if verb == "label" and k not in current:
            print('label "%s" not found.' % k)
    new = dict(current)
    new.update(sets)
    for k in removes:
        new.pop(k, None)
    code, out = call(base, "POST", "/node-update", {"name": name, field: new})
    if code != 200:
        die("Error from server: " + out.get("error", ""))
    if verb == "label":
        print("node/%s %s" % (name, "labeled" if new != current else "not labeled"))
    else:
        print("node/%s annotated" % name)


ETCD_CERTS = ("--cacert=/etc/kubernetes/pki/etcd/ca.crt", "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
              "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key")


def kubectl_exec(base, opts, what, command):
    """`kubectl -n kube-system exec etcd-NODE -- etcdctl ... snapshot save PATH` and
    `... -- etcdutl snapshot status PATH -w json`. The etcd pod of a control-plane node mounts
    /var/lib/etcd from the host, as kubeadm's does, so paths there are the host's. The double's
    etcd data is the API state; a snapshot is that state, in a file etcdutl can read back."""
    if not what:
        die("error: expected 'exec POD_NAME COMMAND [ARG1] [ARG2] ... [ARGN]'.")
    pod, ns = what[0].split("/")[-1], opts.get("namespace", "default")
    _, nodes = call(base, "GET", "/nodes")
    pods = {"etcd-" + n["name"] for n in nodes if n.get("roles") == "control-plane"}
    if ns != "kube-system" or pod not in pods:
        die('Error from server (NotFound): pods "%s" not found' % pod)
    if not command:
        die("error: you must specify at least one command for the container")
    tool, cargs = os.path.basename(command[0]), command[1:]
    copts, crest = parse_flags(cargs, {"endpoints", "cacert", "cert", "key", "write-out", "w"})
    if tool == "etcdctl" and crest[:2] == ["snapshot", "save"] and len(crest) == 3:
        for flag in ETCD_CERTS:
            k, v = flag[2:].split("=", 1)
            if copts.get(k) != v or not os.path.exists(v):
                die('{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: code = Unavailable desc = connection error: authentication handshake failed (--%s)"}\nError: context deadline exceeded' % k)
        path = crest[2]
        if not path.startswith("/var/lib/etcd/"):
            die("Error: could not open %s.part (open %s.part: no such file or directory)" % (path, path))
        _, state = call(base, "GET", "/state")
        body = json.dumps(state, sort_keys=True).encode()
        write(path, "", 0o600)
        with open(path, "wb") as f:
            f.write(b"kprov-double etcd snapshot\n" + body)
        print('{"level":"info","msg":"created temporary db file","path":"%s.part"}' % path)
        print("Snapshot saved at %s" % path)
        return
    if tool == "etcdutl" and crest[:2] == ["snapshot", "status"] and len(crest) == 3:
        try:
            data = open(crest[2], "rb").read()
        except OSError as e:
            die("Error: %s" % e)
        if not data.startswith(b"kprov-double etcd snapshot\n"):
            die("Error: snapshot file integrity check failed")
        state = json.loads(data.split(b"\n", 1)[1])
        status = {"hash": int(hashlib.sha256(data).hexdigest()[:8], 16), "revision": state.get("revision", 1),
                  "totalKey": len(state.get("nodes", {})) + len(state.get("objects", [])) + len(state.get("tokens", {})),
                  "totalSize": len(data), "version": "3.6.0"}
        if (copts.get("w") or copts.get("write-out")) == "json":
            print(json.dumps(status))
        else:
            print("%(hash)x, %(revision)d, %(totalKey)d, %(totalSize)d B" % status)
        return
    die('OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": executable file not found in $PATH: unknown\ncommand terminated with exit code 126' % command[0])


if __name__ == "__main__":
    tool = os.path.basename(sys.argv[0])
    {"kubeadm": kubeadm, "kubelet": kubelet, "kubectl": kubectl}.get(tool, lambda a: die("unknown tool " + tool))(sys.argv[1:])
