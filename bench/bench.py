#!/usr/bin/env python3
"""kprov vs Ansible vs pyinfra: the same host-preparation work on the project's test nodes.

Run through bench/run.sh (which builds kprov and the venv). Everything it starts is labelled
`kprov-bench=1` and removed on exit, also on Ctrl-C or an error. Traffic goes only to
loopback and to the nodes' own Docker network, created --internal (no route out): the nodes'
only apt sources are the local repositories served on that network's gateway.

Results: a JSON file (--out) and tables on stdout (--report turns a JSON file into tables).
"""
import argparse
import atexit
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = Path(os.environ.get("KPROV_TEST_CACHE", "/var/cache/kprov-test"))
LABEL = "kprov-bench=1"
KPROV_TAGS = "swap,kernel,apt,containerd,kubernetes-packages"
TOOLS = ("kprov", "ansible", "pyinfra")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROXY_PORT = 2222


def proxy_address(i):
    """The loopback address of node i's latency proxy (one address per node, as nodes have)."""
    return f"127.42.{i // 250}.{1 + i % 250}"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


# ---------------------------------------------------------------- clean-up of what we start

class Cleanup:
    def __init__(self):
        self.containers, self.networks, self.procs, self.netns_procs, self.dirs = set(), set(), [], [], []
        atexit.register(self.all)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self._signal)

    def _signal(self, signum, _frame):
        log(f"signal {signum}: cleaning up")
        sys.exit(128 + signum)

    def rm_containers(self, names):
        names = [n for n in names if n in self.containers]
        if names:
            subprocess.run(["docker", "rm", "-f", "-v", *names], capture_output=True)
        self.containers.difference_update(names)

    def all(self):
        self.rm_containers(list(self.containers))
        for n in list(self.networks):
            subprocess.run(["docker", "network", "rm", n], capture_output=True)
        self.networks.clear()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs.clear()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dirs.clear()


CLEAN = None


def make_subreaper():
    """Orphans of the tools (Ansible's ControlPersist ssh masters daemonize) become our
    children, so we can end them and count their CPU time."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans(keep):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in keep:  # should not happen: long-lived servers do not exit
            log(f"warning: server process {pid} exited")


# ---------------------------------------------------------------- memory of a process tree

def descendants_rss(root, exclude):
    """Sum of RSS (bytes) of all descendants of `root`, except the subtrees in `exclude`."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            continue
    total, stack = 0, [c for c in children.get(root, []) if c not in exclude]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
        stack.extend(c for c in children.get(pid, []) if c not in exclude)
    return total


class TreeSampler(threading.Thread):
    def __init__(self, exclude, interval=0.05):
        super().__init__(daemon=True)
        self.exclude, self.interval, self.peak, self._halt = exclude, interval, 0, threading.Event()

    def run(self):
        me = os.getpid()
        while not self._halt.is_set():
            self.peak = max(self.peak, descendants_rss(me, self.exclude))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak


def measured(cmd, env, cwd, log_path, exclude, after=None):
    """Run one tool invocation: wall time, CPU time of it and every descendant (waited for,
    including reaped orphans), peak RSS of its largest process, peak summed RSS of the tree."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = TreeSampler(exclude)
    sampler.start()
    with open(log_path, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if CLEAN:
            CLEAN.procs.append(p)  # ended too if the benchmark is interrupted mid-run
        _, status, ru = os.wait4(p.pid, 0)
        if CLEAN:
            CLEAN.procs.remove(p)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    if after:
        after()
    tree_peak = sampler.stop()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "rss_proc_mb": ru.ru_maxrss / 1024, "rss_tree_mb": tree_peak / 2**20, "rc": p.returncode}


# ---------------------------------------------------------------- the test nodes

class Lab:
    """One --internal Docker network, the local apt repositories served on its gateway, and
    sets of fresh nodes started on it."""

    def __init__(self, work):
        self.work = work
        self.image = run(["bash", str(ROOT / "tests/nodes/build-image.sh"), "debian"]).stdout.strip().splitlines()[-1]
        self.apt_repo = run(["bash", str(ROOT / "tests/doubles/build-repo.sh")]).stdout.strip().splitlines()[-1]
        self.debian_repo = run(["bash", str(BENCH / "debs.sh")]).stdout.strip().splitlines()[-1]
        self.key = work / "id_ed25519"
        shutil.copy(CACHE / "id_ed25519", self.key)
        os.chmod(self.key, 0o600)
        for key, mn in (("fs/inotify/max_user_instances", 8192), ("fs/inotify/max_user_watches", 524288)):
            p = Path("/proc/sys") / key
            try:
                if int(p.read_text()) < mn:
                    p.write_text(str(mn))
            except OSError:
                pass
        self.network = f"kprov-bench-{os.getpid()}"
        for third in range(10, 250):
            r = run(["docker", "network", "create", "--internal", "--label", LABEL, "--subnet", f"10.214.{third}.0/24",
                     "--gateway", f"10.214.{third}.1", self.network], check=False)
            if r.returncode == 0:
                CLEAN.networks.add(self.network)
                self.prefix = f"10.214.{third}"
                break
            if "overlap" not in r.stderr and "in use" not in r.stderr:
                raise RuntimeError(r.stderr)
        else:
            raise RuntimeError("no free /24 in 10.214.0.0/16")
        self.gateway = f"{self.prefix}.1"
        serve = work / "www"
        serve.mkdir()
        (serve / "repo").symlink_to(self.apt_repo)
        (serve / "debian").symlink_to(self.debian_repo)
        s = socket.socket()
        s.bind((self.gateway, 0))
        self.port = s.getsockname()[1]
        s.close()
        self.http = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", self.gateway, str(self.port), "--directory", str(serve)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CLEAN.procs.append(self.http)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((self.gateway, self.port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("repository server did not start")
                time.sleep(0.1)
        self.repo_url = f"http://{self.gateway}:{self.port}/repo"
        self.nodes = []
        self.serial = 0
        self.proxy_proc = None

    def start(self, n):
        self.stop()
        self.serial += 1
        nodes = [(f"kb-{os.getpid()}-{self.serial}-{i + 1}", f"{self.prefix}.{11 + i}") for i in range(n)]

        def one(node):
            name, ip = node
            CLEAN.containers.add(name)
            run(["docker", "run", "-d", "--name", name, "--hostname", name, "--label", LABEL, "--network", self.network, "--ip", ip,
                 "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                 "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined", "--cgroupns=host",
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
                 self.image, "/sbin/init"])
            deadline = time.time() + 90
            while True:
                r = run(["docker", "exec", name, "sh", "-c", "systemctl is-system-running; systemctl is-active ssh; cat /etc/ssh/ssh_host_ed25519_key.pub"], check=False)
                lines = r.stdout.splitlines()
                if len(lines) >= 3 and lines[0] in ("running", "degraded") and lines[1] == "active" and lines[2].startswith("ssh-ed25519"):
                    break
                if time.time() > deadline:
                    raise RuntimeError(f"node {name} not ready: {r.stdout} {r.stderr}")
                time.sleep(0.25)
            # The fresh-node state every tool starts from: sshd logs each session (VERBOSE),
            # the only Debian source is the local one, and fstab has a swap entry to comment out.
            run(["docker", "exec", name, "sh", "-c",
                 "printf 'LogLevel VERBOSE\\nMaxStartups 100:30:200\\n' > /etc/ssh/sshd_config.d/bench.conf && systemctl reload ssh && "
                 f"echo 'deb [trusted=yes] http://{self.gateway}:{self.port}/debian ./' > /etc/apt/sources.list && "
                 "echo '/swapfile none swap sw 0 0' >> /etc/fstab && "
                 # kubelet (the real one and the test double) exits until kubeadm has written
                 # its config, so "kubelet running" never converges before kubeadm init, in any
                 # of the three tools: lay the config down as on a node kubeadm already set up.
                 "mkdir -p /var/lib/kubelet && printf 'apiVersion: kubelet.config.k8s.io/v1beta1\\nkind: KubeletConfiguration\\ncgroupDriver: systemd\\n' > /var/lib/kubelet/config.yaml"])
            return " ".join(lines[2].split()[:2])

        with ThreadPoolExecutor(min(n, 10)) as ex:
            keys = list(ex.map(one, nodes))
        self.nodes = nodes
        self.ids = {n: run(["docker", "inspect", "-f", "{{.Id}}", n]).stdout.strip() for n, _ in nodes}
        self.known_hosts = self.work / "known_hosts"
        # Each node under its own address and under its latency-proxy address (see proxy()).
        self.known_hosts.write_text("".join(f"{ip} {k}\n[{proxy_address(i)}]:{PROXY_PORT} {k}\n" for i, ((_, ip), k) in enumerate(zip(nodes, keys))))
        time.sleep(0.5)  # sshd reloaded

    def stop(self):
        self.proxy(None)
        if self.nodes:
            CLEAN.rm_containers([n for n, _ in self.nodes])
            self.nodes = []

    def exec_all(self, cmd):
        with ThreadPoolExecutor(min(len(self.nodes), 10)) as ex:
            return list(ex.map(lambda n: run(["docker", "exec", n[0], "sh", "-c", cmd]).stdout, self.nodes))

    def sshd_counts(self):
        """(connections accepted, sessions started) per node, from sshd's own journal."""
        outs = self.exec_all("journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey'; "
                             "journalctl -u ssh --no-pager -o cat | grep -c 'Starting session:'; true")
        return [tuple(int(x) for x in o.split()[:2]) for o in outs]

    def node_cpu_s(self):
        """CPU seconds used so far by all nodes together (their containers' cgroups: sshd, the
        commands the tools run, and whatever else runs there), or None if not readable."""
        total = 0.0
        for name, _ in self.nodes:
            cid = self.ids.get(name)
            for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
                                (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e-6),
                                (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e-6)):
                try:
                    text = Path(path).read_text()
                except OSError:
                    continue
                total += scale * int(text.split()[1] if text.startswith("usage_usec") else text.split()[0])
                break
            else:
                return None
        return total

    def endpoints(self):
        """(address, port) the tools connect to for each node: the node itself, or its
        latency proxy while one runs."""
        if self.proxy_proc:
            return [(proxy_address(i), PROXY_PORT) for i in range(len(self.nodes))]
        return [(ip, 22) for _, ip in self.nodes]

    def proxy(self, rtt_ms):
        """Route the tools through bench/latency_proxy.py, adding `rtt_ms` to every round
        trip (None: straight to the nodes again). It stands in for `tc netem`, which this
        machine's kernel lacks; one listening address per node, on loopback."""
        if self.proxy_proc:
            self.proxy_proc.terminate()
            self.proxy_proc.wait(10)
            CLEAN.procs.remove(self.proxy_proc)
            self.proxy_proc = None
        if rtt_ms is None:
            return
        maps = [f"{proxy_address(i)}:{PROXY_PORT}={ip}:22" for i, (_, ip) in enumerate(self.nodes)]
        self.proxy_proc = subprocess.Popen([sys.executable, str(BENCH / "latency_proxy.py"), "--rtt-ms", str(rtt_ms), *maps],
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        CLEAN.procs.append(self.proxy_proc)
        if self.proxy_proc.stdout.readline().strip() != "ready":
            raise RuntimeError("latency proxy did not start")

    def servers(self):
        """Long-lived helpers that are not part of any tool's cost."""
        return {p.pid for p in (self.http, self.proxy_proc) if p}

    def set_latency(self, ms):
        if ms:
            self.exec_all(f"tc qdisc replace dev eth0 root netem delay {ms}ms")
        else:
            self.exec_all("tc qdisc del dev eth0 root 2>/dev/null || true")


# ---------------------------------------------------------------- the three tools

class Tools:
    def __init__(self, lab, work, kprov_bin, venv, logs=None):
        self.lab, self.work, self.kprov, self.venv = lab, work, kprov_bin, Path(venv)
        self.logs = Path(logs) if logs else work / "logs"
        self.home = work / "home"
        self.home.mkdir(exist_ok=True)
        self.base_env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        self.base_env.update(HOME=str(self.home), NO_COLOR="1", LC_ALL="C.UTF-8")

    def write_inventories(self):
        lab = self.lab
        eps = lab.endpoints()
        hosts = "".join(f"  - {{ name: h{i + 1}, address: {ip}, ssh: {{ port: {port} }}, roles: [{'control-plane' if i == 0 else 'worker'}] }}\n" for i, (ip, port) in enumerate(eps))
        tmpl = (BENCH / "kprov/inventory.yaml.in").read_text()
        inv = tmpl.replace("@KEY@", str(lab.key)).replace("@KNOWN_HOSTS@", str(lab.known_hosts)).replace("@REPO@", lab.repo_url).replace("@HOSTS@\n", hosts)
        (self.work / "kprov.yaml").write_text(inv)
        ini = "[all]\n" + "".join(f"{ip} ansible_port={port}\n" for ip, port in eps)
        ini += (f"[all:vars]\nansible_user=root\nansible_ssh_private_key_file={lab.key}\n"
                f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'\n")
        (self.work / "ansible.ini").write_text(ini)
        hosts_py = ",\n".join(f"    ({ip!r}, {{'ssh_port': {port}, 'ssh_user': 'root', 'ssh_key': {str(lab.key)!r}, 'ssh_known_hosts_file': {str(lab.known_hosts)!r}, 'ssh_strict_host_key_checking': 'yes'}})" for ip, port in eps)
        (self.work / "pyinfra_inventory.py").write_text(f"hosts = [\n{hosts_py},\n]\n")

    def command(self, tool, mode):
        """(argv, env, cwd, after) for a tool in mode apply|check."""
        n = len(self.lab.nodes)
        env = dict(self.base_env)
        after = None
        if tool == "kprov":
            verb = "apply" if mode == "apply" else "plan"
            return [self.kprov, verb, str(self.work / "kprov.yaml"), "--tags", KPROV_TAGS], env, self.work, None
        if tool == "ansible":
            cp = Path(tempfile.mkdtemp(prefix="cp-", dir=self.work))
            env.update(ANSIBLE_CONFIG=str(BENCH / "ansible/ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp),
                       ANSIBLE_HOME=str(self.home / ".ansible"), ANSIBLE_LOCAL_TEMP=str(self.home / ".ansible/tmp"),
                       PATH=f"{self.venv}/bin:{os.environ['PATH']}")
            argv = [str(self.venv / "bin/ansible-playbook"), "-i", str(self.work / "ansible.ini"), str(BENCH / "ansible/prepare.yml"),
                    "--forks", str(n), "-e", f"repo_url={self.lab.repo_url}", "-e", "debian_codename=bookworm"]
            if mode == "check":
                argv.append("--check")

            def after():
                # End the ControlPersist masters (each run starts cold, like the other tools),
                # then reap them so their CPU time counts.
                for sock in cp.iterdir():
                    subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
                time.sleep(0.1)
                reap_orphans(self.lab.servers())
                shutil.rmtree(cp, ignore_errors=True)
            return argv, env, self.work, after
        if tool == "pyinfra":
            env.update(BENCH_REPO_URL=self.lab.repo_url, BENCH_CODENAME="bookworm", PATH=f"{self.venv}/bin:{os.environ['PATH']}")
            argv = [str(self.venv / "bin/pyinfra"), "-y", "--parallel", str(n), str(self.work / "pyinfra_inventory.py"), str(BENCH / "pyinfra/deploy.py")]
            if mode == "check":
                argv.insert(2, "--dry")
            return argv, env, BENCH / "pyinfra", None
        raise ValueError(tool)

    def once(self, tool, mode, label):
        argv, env, cwd, after = self.command(tool, mode)
        before = self.lab.sshd_counts()
        logp = self.logs / f"{label}.log"
        logp.parent.mkdir(exist_ok=True)
        node0 = self.lab.node_cpu_s()
        m = measured(argv, env, cwd, logp, self.lab.servers(), after)
        node1 = self.lab.node_cpu_s()
        n = len(self.lab.nodes)
        m["node_cpu_s_per_host"] = (node1 - node0) / n if node0 is not None and node1 is not None else None
        time.sleep(0.3)  # let journald catch up
        aft = self.lab.sshd_counts()
        n = len(self.lab.nodes)
        m["conns_per_host"] = sum(a[0] - b[0] for a, b in zip(aft, before)) / n
        m["sessions_per_host"] = sum(a[1] - b[1] for a, b in zip(aft, before)) / n
        m["log"] = str(logp)
        ok = m["rc"] == 0 or (tool == "kprov" and mode == "check" and m["rc"] == 2)
        if not ok:
            tail = logp.read_text()[-3000:]
            log(f"{label}: exit {m['rc']}\n{tail}")
        m["ok"] = ok
        return m


# ---------------------------------------------------------------- scenarios

def summarise(samples):
    ok = [s for s in samples if s["ok"]]
    use = ok or samples
    med = lambda k: statistics.median(s[k] for s in use)
    node = [s["node_cpu_s_per_host"] for s in use if s.get("node_cpu_s_per_host") is not None]
    return {"node_cpu_s_per_host": statistics.median(node) if node else None, "runs": len(samples), "ok_runs": len(ok), "wall_s": med("wall_s"), "cpu_s": med("cpu_s"), "rss_proc_mb": max(s["rss_proc_mb"] for s in use),
            "rss_tree_mb": max(s["rss_tree_mb"] for s in use), "conns_per_host": med("conns_per_host"), "sessions_per_host": med("sessions_per_host"),
            "walls": [round(s["wall_s"], 3) for s in samples], "rcs": [s["rc"] for s in samples]}


def drift(lab):
    lab.exec_all("echo '# drifted' >> /etc/sysctl.d/k8s.conf")


def node_scenarios(args, lab, tools, results, save):
    for n in args.hosts:
        for tool in args.tools:
            key = f"{tool}/{n}"
            log(f"=== {tool} at {n} hosts")
            first = []
            for i in range(args.first_runs):
                lab.start(n)
                tools.write_inventories()
                first.append(tools.once(tool, "apply", f"{tool}-{n}-first-{i}"))
                log(f"{key} first apply #{i}: {first[-1]['wall_s']:.1f}s rc={first[-1]['rc']}")
            results[f"{key}/first"] = summarise(first)
            save()
            if not first[-1]["ok"]:
                log(f"{key}: first apply failed; skipping its other scenarios")
                continue
            if tool == "kprov" and args.ab:
                # Two kprov binaries alternated on the same converged nodes (A B A B ...), so a
                # change to kprov is compared under the same machine load.
                main_bin, samples = tools.kprov, {"a": [], "b": []}
                for i in range(args.runs):
                    for side, binary in (("a", main_bin), ("b", args.ab)):
                        tools.kprov = binary
                        samples[side].append(tools.once("kprov", "apply", f"kprov-{n}-ab-{side}-{i}"))
                tools.kprov = main_bin
                for side in ("a", "b"):
                    results[f"kprov/{n}/noop-ab-{side}"] = summarise(samples[side])
                    log(f"{key}/noop-ab-{side}: median {results[f'kprov/{n}/noop-ab-{side}']['wall_s']:.2f}s")
                save()

            def series(scen, ms, label_sfx, key_sfx):
                samples = []
                for i in range(args.runs if scen == "noop" else args.runs_other or args.runs):
                    if scen == "drift":
                        drift(lab)
                    mode = "check" if scen == "check" else "apply"
                    samples.append(tools.once(tool, mode, f"{tool}-{n}-{scen}{label_sfx}-{i}"))
                results[f"{key}/{scen}{key_sfx}"] = s = summarise(samples)
                log(f"{key}/{scen}{key_sfx}: median {s['wall_s']:.2f}s, conns/host {s['conns_per_host']}, sessions/host {s['sessions_per_host']}, ok {s['ok_runs']}/{s['runs']}")
                save()

            for scen in args.scenarios:
                series(scen, 0, "", "")
            if n not in args.latency_hosts:
                continue
            # The latency sweep: every point, 0 ms included, through the same path (the proxy,
            # or netem on the nodes), so the points differ only in the added delay.
            for ms in args.latency:
                try:
                    if args.latency_via == "proxy":
                        lab.proxy(ms)
                        tools.write_inventories()
                    else:
                        lab.set_latency(ms)
                except RuntimeError as e:
                    # e.g. a kernel built without CONFIG_NET_SCH_NETEM: "Specified qdisc kind is unknown."
                    log(f"{key}: no latency sweep: {str(e).strip().splitlines()[-1]}")
                    results[f"{key}/latency-error"] = str(e).strip().splitlines()[-1]
                    break
                for scen in args.latency_scenarios:
                    series(scen, ms, f"-lat{ms}", f"/lat{ms}")
            if args.latency_via == "proxy":
                lab.proxy(None)
                tools.write_inventories()
            else:
                lab.set_latency(0)
        lab.stop()


# ---------------------------------------------------------------- kprov alone at scale, on loopback

SSHD_CONFIG = """Port 2222
ListenAddress 0.0.0.0
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 2000:30:4000
MaxSessions 20
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


def scale(args, work, kprov_bin, results, save):
    """kprov plan against many hosts, each a distinct 127.x address of one sshd that runs in a
    network namespace of its own (only a loopback interface) and a mount namespace where
    /etc/passwd is a copy with the privilege-separation user and /run is a tmpfs: nothing on
    the machine changes, and `kprov plan` only reads."""
    d = work / "scale"
    d.mkdir()
    os.chmod(d, 0o755)
    tar = CACHE / "rootfs-amd64-bookworm.tar"
    run(["tar", "-C", str(d), "-xf", str(tar), "./usr/sbin/sshd", "--wildcards", "./usr/lib/x86_64-linux-gnu/libwrap.so*", "./usr/lib/x86_64-linux-gnu/libnsl.so*"])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_ed25519")])
    shutil.copy(CACHE / "id_ed25519.pub", d / "authorized_keys")
    shutil.copy(CACHE / "id_ed25519", d / "id_ed25519")
    os.chmod(d / "id_ed25519", 0o600)
    (d / "sshd_config").write_text(SSHD_CONFIG.format(d=d))
    passwd = Path("/etc/passwd").read_text()
    if "\nsshd:" not in "\n" + passwd:
        passwd += "sshd:x:65534:65534::/run/sshd:/usr/sbin/nologin\n"
    (d / "passwd").write_text(passwd)
    inner = (f"mount --make-rprivate / && mount --bind {d}/passwd /etc/passwd && mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd && "
             f"ip link set lo up && LD_LIBRARY_PATH={d}/usr/lib/x86_64-linux-gnu exec {d}/usr/sbin/sshd -D -e -f {d}/sshd_config")
    sshd_log = open(d / "sshd.log", "w")
    sshd = subprocess.Popen(["unshare", "--net", "--mount", "sh", "-c", inner], stdout=sshd_log, stderr=subprocess.STDOUT)
    CLEAN.procs.append(sshd)
    hostkey = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    ns = f"/proc/{sshd.pid}/ns/net"
    deadline = time.time() + 10
    while run(["nsenter", f"--net={ns}", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2222"], check=False).returncode != 0:
        if time.time() > deadline or sshd.poll() is not None:
            raise RuntimeError(f"scale sshd did not start: {(d / 'sshd.log').read_text()}")
        time.sleep(0.2)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(d), NO_COLOR="1")
    for m in args.scale:
        addrs = [f"127.{1 + i // 250}.{i % 250}.{1 + (i % 7)}" for i in range(m)]
        (d / "known_hosts").write_text("".join(f"[{a}]:2222 {hostkey}\n" for a in addrs))
        hosts = "".join(f"  - {{ name: s{i + 1}, address: {a}, ssh: {{ port: 2222 }}, roles: [{'control-plane' if i == 0 else 'worker'}] }}\n" for i, a in enumerate(addrs))
        tmpl = (BENCH / "kprov/inventory.yaml.in").read_text()
        inv = tmpl.replace("@KEY@", str(d / "id_ed25519")).replace("@KNOWN_HOSTS@", str(d / "known_hosts")).replace("@REPO@", "http://127.0.0.1:9").replace("@HOSTS@\n", hosts)
        (d / f"inv-{m}.yaml").write_text(inv)
        samples = []
        for i in range(args.scale_runs):
            before = (d / "sshd.log").read_text().count("Accepted publickey")
            sb = (d / "sshd.log").read_text().count("Starting session:")
            mm = measured(["nsenter", f"--net={ns}", kprov_bin, "plan", str(d / f"inv-{m}.yaml"), "--tags", KPROV_TAGS] + args.scale_extra,
                          env, d, d / f"plan-{m}-{i}.log", {sshd.pid})
            time.sleep(0.3)
            text = (d / "sshd.log").read_text()
            mm["conns_per_host"] = (text.count("Accepted publickey") - before) / m
            mm["sessions_per_host"] = (text.count("Starting session:") - sb) / m
            mm["ok"] = mm["rc"] in (0, 2)
            if not mm["ok"]:
                log(f"scale {m}: exit {mm['rc']}\n{(d / f'plan-{m}-{i}.log').read_text()[-2000:]}")
            samples.append(mm)
            log(f"scale {m} #{i}: {mm['wall_s']:.2f}s cpu {mm['cpu_s']:.2f}s rss {mm['rss_proc_mb']:.0f}MB rc={mm['rc']} conns/host {mm['conns_per_host']}")
            results[f"scale/{m}"] = summarise(samples)
            save()
    sshd.terminate()
    sshd.wait(5)


# ---------------------------------------------------------------- report

def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def report(results):
    results = {k: v for k, v in results.items() if isinstance(v, dict)}
    lines = []
    keys = sorted({k.split("/", 2)[2] for k in results if not k.startswith("scale/") and k.count("/") >= 2},
                  key=lambda s: (s.split("/")[0] not in ("first",), s))
    hosts = sorted({int(k.split("/")[1]) for k in results if not k.startswith("scale/")})
    lines.append("| scenario | hosts | tool | runs (ok) | wall median s | controller CPU s | node CPU s/host | peak RSS largest process MB | peak RSS process tree MB | SSH conns/host | sessions/host |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for scen in keys:
        for n in hosts:
            for tool in TOOLS:
                r = results.get(f"{tool}/{n}/{scen}")
                if r:
                    lines.append(f"| {scen} | {n} | {tool} | {r['runs']} ({r['ok_runs']}) | {fmt(r['wall_s'])} | {fmt(r['cpu_s'])} | {fmt(r.get('node_cpu_s_per_host'), 3)} | {fmt(r['rss_proc_mb'], 0)} | {fmt(r['rss_tree_mb'], 0)} | {fmt(r['conns_per_host'], 1)} | {fmt(r['sessions_per_host'], 1)} |")
    lines.append("")
    lines.append("| scenario | hosts | kprov/Ansible wall | kprov/pyinfra wall | Ansible/kprov (x faster) | pyinfra/kprov (x faster) | kprov/Ansible CPU | kprov/pyinfra CPU |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for scen in keys:
        for n in hosts:
            k, a, p = (results.get(f"{t}/{n}/{scen}") for t in TOOLS)
            if not k:
                continue
            ra = k["wall_s"] / a["wall_s"] if a else None
            rp = k["wall_s"] / p["wall_s"] if p else None
            ca = k["cpu_s"] / a["cpu_s"] if a else None
            cp_ = k["cpu_s"] / p["cpu_s"] if p else None
            lines.append(f"| {scen} | {n} | {fmt(ra, 3)} | {fmt(rp, 3)} | {fmt(1 / ra if ra else None, 1)} | {fmt(1 / rp if rp else None, 1)} | {fmt(ca, 3)} | {fmt(cp_, 3)} |")
    sc = sorted((int(k.split("/")[1]), v) for k, v in results.items() if k.startswith("scale/"))
    if sc:
        lines.append("")
        lines.append("| loopback hosts | runs (ok) | wall median s | kprov CPU s | CPU ms/host | peak RSS MB | SSH conns/host | sessions/host |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for m, r in sc:
            lines.append(f"| {m} | {r['runs']} ({r['ok_runs']}) | {fmt(r['wall_s'])} | {fmt(r['cpu_s'])} | {fmt(1000 * r['cpu_s'] / m, 1)} | {fmt(r['rss_proc_mb'], 0)} | {fmt(r['conns_per_host'], 2)} | {fmt(r['sessions_per_host'], 2)} |")
        if len(sc) >= 2:
            (m0, r0), (m1, r1) = sc[0], sc[-1]
            lines.append("")
            lines.append(f"Growth {m0} -> {m1} hosts: wall {fmt(1000 * (r1['wall_s'] - r0['wall_s']) / (m1 - m0), 1)} ms per added host, "
                         f"controller CPU {fmt(1000 * (r1['cpu_s'] - r0['cpu_s']) / (m1 - m0), 1)} ms per added host, "
                         f"peak RSS {fmt(1024 * (r1['rss_proc_mb'] - r0['rss_proc_mb']) / (m1 - m0), 1)} KB per added host.")
    return "\n".join(lines)


def main():
    global CLEAN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x != ""]
    ap.add_argument("--hosts", type=ints, default=[1, 3, 10, 20], help="node counts (default 1,3,10,20)")
    ap.add_argument("--tools", type=lambda s: s.split(","), default=list(TOOLS))
    ap.add_argument("--runs", type=int, default=5, help="runs per no-op/drift/check scenario (median)")
    ap.add_argument("--runs-other", type=int, default=0, help="runs per drift/check scenario (default: --runs)")
    ap.add_argument("--first-runs", type=int, default=2, help="first applies, each on fresh nodes")
    ap.add_argument("--scenarios", type=lambda s: [x for x in s.split(",") if x], default=["noop", "drift", "check"])
    ap.add_argument("--latency", type=ints, default=[0, 10, 50], help="added round-trip times (ms) of the latency sweep")
    ap.add_argument("--latency-via", choices=["proxy", "netem"], default="proxy",
                    help="proxy: bench/latency_proxy.py on loopback, one address per node (default; works without netem); netem: tc netem on the nodes' eth0")
    ap.add_argument("--latency-scenarios", type=lambda s: s.split(","), default=["noop", "drift"], help="scenarios repeated at each non-zero delay")
    ap.add_argument("--latency-hosts", type=ints, default=[3], help="node counts at which the latency sweep runs")
    ap.add_argument("--scale", type=ints, default=[100, 250, 500, 1000], help="loopback host counts for kprov alone ('' to skip)")
    ap.add_argument("--scale-runs", type=int, default=3)
    ap.add_argument("--scale-extra", type=lambda s: s.split(), default=[], help="extra kprov plan arguments in the scale run")
    ap.add_argument("--kprov", default=str(ROOT / "target/release/kprov"))
    ap.add_argument("--ab", metavar="KPROV", help="also alternate no-op runs of --kprov (a) and this kprov binary (b) on the same nodes")
    ap.add_argument("--venv", default="/work/bench-venv")
    ap.add_argument("--out", default=str(BENCH / "results.json"))
    ap.add_argument("--logs", help="keep every run's output in this directory (default: removed with the work directory)")
    ap.add_argument("--report", metavar="JSON", help="print the tables of a results file and exit")
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.report).read_text())["results"]))
        return
    CLEAN = Cleanup()
    make_subreaper()
    work = Path(tempfile.mkdtemp(prefix="kprov-bench-"))
    CLEAN.dirs.append(work)
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {"results": {}}
    doc["machine"] = {"nproc": os.cpu_count(), "kernel": os.uname().release, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results = doc["results"]

    def save():
        out.write_text(json.dumps(doc, indent=1, sort_keys=True))

    if args.hosts and args.tools:
        lab = Lab(work)
        tools = Tools(lab, work, args.kprov, args.venv, args.logs)
        node_scenarios(args, lab, tools, results, save)
        lab.stop()
    if args.scale:
        scale(args, work, args.kprov, results, save)
    save()
    print(report(results))


if __name__ == "__main__":
    main()
