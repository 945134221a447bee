"""A Ray cluster on this machine, for trying scripts/ray/embed.py and for its tests.

    python scripts/ray/local_cluster.py up [--workers 2] [--cpus-per-worker 1] [--gpus-per-worker 1]
    python scripts/ray/local_cluster.py down

A head and N workers, each a Ray node of its own on a loopback address (127.0.0.2 the head,
127.0.0.3... the workers: Ray rewrites 127.0.0.1 and localhost to the machine's external address,
but keeps these), every port pinned from --base-port, Ray's files in a short folder (Ray keeps Unix
sockets there and long paths break them). The workers declare GPUs (none need exist) so that
GPU-tagged actors are placed as on a real cluster; run themap with --device cpu on them.

Every process a node starts carries THEMAP_RAY_NODE=<cluster>/<node> in its environment, so `down`
(and `kill`, which ends one node as a lost machine would end) stop exactly those processes, never
another Ray on the machine, as `ray stop` would.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STATE = os.path.join(tempfile.gettempdir(), "themap-ray.json")


def ray_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


def node_pids(marker: str) -> list[int]:
    """Processes whose environment carries THEMAP_RAY_NODE=marker (or a node of cluster marker/)."""
    wanted = f"THEMAP_RAY_NODE={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if any(var == wanted or (marker.endswith("/") and var.startswith(wanted)) for var in env):
            pids.append(int(entry))
    return pids


def kill(marker: str) -> int:
    """SIGKILL every process of a node (or of a whole cluster, with a trailing '/')."""
    pids = node_pids(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


class LoopbackCluster:
    """Start with up(), stop with down(); `address` is what ray.init and the driver take."""

    def __init__(self, workers=2, cpus_per_worker=1, gpus_per_worker=1, base_port=36300, name=None):
        self.name = name or f"themap-{os.getpid()}"
        self.workers = workers
        self.cpus, self.gpus = cpus_per_worker, gpus_per_worker
        self.base = base_port
        self.head_ip = "127.0.0.2"
        self.address = f"{self.head_ip}:{self.base + 79}"
        self.temp_dir = tempfile.mkdtemp(prefix="tr-", dir="/tmp")

    def _env(self, node: str) -> dict:
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", THEMAP_RAY_NODE=f"{self.name}/{node}")
        # A loaded 2-core machine can take longer than Ray's 30 s default to register a node.
        env.setdefault("RAY_raylet_start_wait_time_s", "180")
        env.pop("RAY_ADDRESS", None)
        return env

    def _start(self, node: str, args: list[str]) -> subprocess.Popen:
        with open(os.path.join(self.temp_dir, f"{node}.log"), "w") as log:
            return subprocess.Popen(
                [ray_bin(), "start", "--disable-usage-stats", *args], env=self._env(node), stdout=log, stderr=log
            )

    def _check(self, started: subprocess.Popen, node: str) -> None:
        if started.wait() != 0:
            with open(os.path.join(self.temp_dir, f"{node}.log")) as f:
                log = f.read()
            self.down()
            raise RuntimeError(f"ray start of the {node} node failed:\n{log[-3000:]}")

    def up(self) -> "LoopbackCluster":
        b = self.base
        head = self._start(
            "head",
            [
                "--head", f"--node-ip-address={self.head_ip}", f"--port={b + 79}",
                f"--node-manager-port={b + 80}", f"--object-manager-port={b + 81}",
                f"--min-worker-port={b}", f"--max-worker-port={b + 49}",
                f"--dashboard-host={self.head_ip}", f"--dashboard-port={b + 65}",
                f"--dashboard-agent-listen-port={b + 82}", f"--dashboard-agent-grpc-port={b + 83}",
                f"--runtime-env-agent-port={b + 84}", f"--metrics-export-port={b + 85}",
                f"--ray-client-server-port={b + 86}", "--num-cpus=1", "--num-gpus=0",
                "--object-store-memory=200000000", f"--temp-dir={self.temp_dir}",
            ],
        )
        self._check(head, "head")
        # One at a time: on a small machine parallel starts overload the head and time out.
        for i in range(1, self.workers + 1):
            self.start_worker(i)
        self.wait_for_nodes(self.workers + 1)
        return self

    def start_worker(self, i: int) -> None:
        b = self.base + 100 * i
        process = self._start(
            f"worker{i}",
            [
                f"--address={self.address}", f"--node-ip-address=127.0.0.{2 + i}",
                f"--node-manager-port={b + 80}", f"--object-manager-port={b + 81}",
                f"--min-worker-port={b}", f"--max-worker-port={b + 49}",
                f"--dashboard-agent-listen-port={b + 82}", f"--dashboard-agent-grpc-port={b + 83}",
                f"--runtime-env-agent-port={b + 84}", f"--metrics-export-port={b + 85}",
                f"--num-cpus={self.cpus}", f"--num-gpus={self.gpus}", "--object-store-memory=200000000",
            ],
        )
        self._check(process, f"worker{i}")

    def alive_nodes(self) -> int:
        out = subprocess.run(
            [sys.executable, "-c", "import ray, json; ray.init(address=%r, logging_level='ERROR'); "
             "print(json.dumps(sum(1 for n in ray.nodes() if n['Alive'])))" % self.address],
            capture_output=True, text=True, env=self._env("probe"),
        )
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0

    def wait_for_nodes(self, count: int, timeout=120) -> None:
        deadline = time.time() + timeout
        while self.alive_nodes() < count:
            if time.time() > deadline:
                raise RuntimeError(f"fewer than {count} Ray nodes came up in {timeout} s")
            time.sleep(1)

    def kill_worker(self, i: int) -> int:
        """Ends worker i as a lost machine would: SIGKILL to all its processes."""
        return kill(f"{self.name}/worker{i}")

    def down(self) -> None:
        kill(f"{self.name}/")
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a head and workers on loopback addresses")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--cpus-per-worker", type=int, default=1)
    up.add_argument("--gpus-per-worker", type=int, default=1, help="declared; none need exist")
    up.add_argument("--base-port", type=int, default=36300)
    sub.add_parser("down", help="stop the cluster `up` started, and nothing else")
    args = parser.parse_args()
    if args.command == "up":
        if os.path.exists(STATE):
            sys.exit(f"a local cluster is already up ({STATE}); run `down` first")
        started = time.time()
        cluster = LoopbackCluster(args.workers, args.cpus_per_worker, args.gpus_per_worker, args.base_port).up()
        json.dump({"name": cluster.name, "address": cluster.address, "temp_dir": cluster.temp_dir}, open(STATE, "w"))
        print(f"Ray cluster up in {time.time() - started:.0f} s: head and {args.workers} workers; "
              f"address {cluster.address}, dashboard http://{cluster.head_ip}:{args.base_port + 65}", file=sys.stderr)
        print(cluster.address)
    else:
        if not os.path.exists(STATE):
            sys.exit("no local cluster is up")
        state = json.load(open(STATE))
        print(f"stopped {kill(state['name'] + '/')} processes of {state['name']}", file=sys.stderr)
        shutil.rmtree(state["temp_dir"], ignore_errors=True)
        os.remove(STATE)


if __name__ == "__main__":
    main()
