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
            role = "control-plane" if b.get("control_plane") else ""
            s["nodes"][b["node"]] = {"roles": role, "version": b.get("version", VERSION), "joined": now, "address": b.get("address", "")}
            return 200, {"ca": s.get("ca_pem", ""), "endpoint": s["endpoint"]}
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
        if os.path.exists(K8S + "/kubelet.conf"):
            errors.append(("FileAvailable--etc-kubernetes-kubelet.conf", "/etc/kubernetes/kubelet.conf already exists"))
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


def yaml_field(text, key):
    m = re.search(r"^\s*%s:\s*\"?([^\"\n]*)\"?\s*$" % re.escape(key), text, re.M)
    return m.group(1).strip() if m else ""


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
    cfg = ""
    if "config" in opts:
        if any(k in opts for k in ("pod-network-cidr", "apiserver-advertise-address", "control-plane-endpoint", "kubernetes-version")):
            die("error: can not mix '--config' with arguments [%s]" % ", ".join(k for k in opts if k not in ("config", "upload-certs", "ignore-preflight-errors")))
        try:
            cfg = open(opts["config"]).read()
        except OSError as e:
            die("error: unable to read config from \"%s\": %s" % (opts["config"], e))
    ignored = set(x.strip() for x in str(opts.get("ignore-preflight-errors", "")).split(",") if x.strip())
    advertise = opts.get("apiserver-advertise-address") or yaml_field(cfg, "advertiseAddress") or socket.gethostbyname(hostname())
    endpoint = opts.get("control-plane-endpoint") or yaml_field(cfg, "controlPlaneEndpoint") or advertise
    if ":" not in endpoint:
        endpoint += ":6443"
    version = opts.get("kubernetes-version") or yaml_field(cfg, "kubernetesVersion") or VERSION
    if not re.match(r"^v?\d+\.\d+\.\d+$", version):
        die("error: kubernetesVersion %r is not a valid version" % version)
    if version.lstrip("v").split(".")[:2] != VERSION.lstrip("v").split(".")[:2]:
        die("error execution phase preflight: this version of kubeadm only supports deploying clusters with the control plane version >= %s. Current version: %s" % (VERSION, version))
    pod_cidr = opts.get("pod-network-cidr") or yaml_field(cfg, "podSubnet")
    node = opts.get("node-name") or yaml_field(cfg, "name") or hostname()
    print("[init] Using Kubernetes version: %s" % version)
    preflight(ignored, joining=False)
    ca = secrets.token_bytes(64)
    ca_pem = "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % base64.b64encode(ca).decode()
    ca_hash = hashlib.sha256(ca).hexdigest()
    for f in ("ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "sa", "etcd/ca", "etcd/server", "etcd/peer", "etcd/healthcheck-client"):
        print('[certs] Generating "%s" certificate and key' % f)
        write(K8S + "/pki/%s.crt" % f, ca_pem if f == "ca" else "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % base64.b64encode(secrets.token_bytes(48)).decode())
        write(K8S + "/pki/%s.key" % f, "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(secrets.token_bytes(48)).decode(), 0o600)
    server = "https://%s" % endpoint
    for name, user in (("admin.conf", "kubernetes-admin"), ("super-admin.conf", "kubernetes-super-admin"), ("kubelet.conf", "system:node:" + node),
                       ("controller-manager.conf", "system:kube-controller-manager"), ("scheduler.conf", "system:kube-scheduler")):
        print('[kubeconfig] Writing "%s" kubeconfig file' % name)
        write(K8S + "/" + name, kubeconfig(server if name != "kubelet.conf" else "https://%s:6443" % advertise, user), 0o600)
    for m in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        write(K8S + "/manifests/%s.yaml" % m, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n  containers:\n  - name: %s\n    command: [%s, --advertise-address=%s, --service-cluster-ip-range=%s, --cluster-cidr=%s]\n" % (m, m, m, advertise, yaml_field(cfg, "serviceSubnet") or "10.96.0.0/12", pod_cidr), 0o600)
    write("/var/lib/kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: %s\n" % (yaml_field(cfg, "cgroupDriver") or "systemd"))
    write_node_name(node)
    token = "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
    cert_key = secrets.token_hex(32) if "upload-certs" in opts else ""
    os.makedirs(STATE_DIR, exist_ok=True)
    state = api_load()
    os.makedirs("/var/lib/etcd", mode=0o700, exist_ok=True)
    state.update({"tokens": {token: time.time() + 86400}, "ca_hash": ca_hash, "ca_pem": ca_pem, "certificate_key": cert_key,
                  "endpoint": endpoint, "networked": False, "version": "v" + version.lstrip("v"), "revision": 1,
                  "nodes": {node: {"roles": "control-plane", "version": version, "joined": time.time(), "address": advertise}}})
    write_json(API_STATE, state)
    write_json(CLUSTER, {"endpoint": endpoint, "ca_hash": ca_hash, "pod_cidr": pod_cidr, "version": version})
    print("[kubelet-start] Starting the kubelet")
    restart_kubelet()
    print("[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\"")
    if not wait_api("http://127.0.0.1:6443"):
        die("error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster: the API server did not come up (is the kubelet running?)")
    if cert_key:
        # As kubeadm's runUploadCerts (after wait-control-plane): the key alone on the next line.
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        print("[upload-certs] Using certificate key:\n%s" % cert_key)
    print("[bootstrap-token] Using token: %s" % token)
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
    if not rest:
        die("error execution phase preflight: discovery: Invalid value: \"\": bootstrapToken or file must be set")
    endpoint = rest[0]
    token, ca_hash = opts.get("token", ""), opts.get("discovery-token-ca-cert-hash", "")
    if not re.match(r"^[a-z0-9]{6}\.[a-z0-9]{16}$", token):
        die("error execution phase preflight: discovery.bootstrapToken.token: Invalid value: the bootstrap token is invalid")
    ignored = set(x.strip() for x in str(opts.get("ignore-preflight-errors", "")).split(",") if x.strip())
    preflight(ignored, joining=True)
    node = opts.get("node-name") or hostname()
    cp = "control-plane" in opts
    if cp and not opts.get("certificate-key"):
        die("error execution phase control-plane-prepare/download-certs: the certificate key is required to join a control-plane node")
    code, out = call("http://" + endpoint, "POST", "/join", {"token": token, "ca_hash": ca_hash, "node": node, "control_plane": cp,
                                                             "certificate_key": opts.get("certificate-key", ""), "version": VERSION,
                                                             "address": opts.get("apiserver-advertise-address", "")})
    if code != 200:
        die("error execution phase preflight: %s\nTo see the stack trace of this error execute with --v=5 or higher" % out.get("error"))
    write(K8S + "/pki/ca.crt", out.get("ca", ""))
    write(K8S + "/kubelet.conf", kubeconfig("https://" + endpoint, "system:node:" + node), 0o600)
    write("/var/lib/kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n")
    write_node_name(node)
    if cp:
        write(K8S + "/admin.conf", kubeconfig("https://" + endpoint, "kubernetes-admin"), 0o600)
        write(K8S + "/manifests/etcd.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n", 0o600)
        os.makedirs("/var/lib/etcd", mode=0o700, exist_ok=True)
    print("[kubelet-start] Starting the kubelet")
    restart_kubelet()
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
    for f in ("admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"):
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
        if out == "json":
            items = [{"metadata": {"name": n["name"]}, "spec": {"unschedulable": n.get("unschedulable", False)},
                      "status": {"conditions": [{"type": "Ready", "status": "True" if n["ready"] else "False"}],
                                 "nodeInfo": {"kubeletVersion": n["version"]}}} for n in nodes]
            print(json.dumps({"kind": "List", "items": items}, indent=2))
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
