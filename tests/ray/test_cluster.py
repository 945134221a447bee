"""scripts/ray/embed.py on a three-node Ray cluster on loopback (a head, two workers that declare
one GPU each; themap runs with --device cpu): the same index as one machine, nothing recomputed
on a rerun, and a worker lost mid-run costs no passage.

    THEMAP_BIN=target/release/themap THEMAP_MODEL=... $(scripts/ray/venv.sh) -m unittest discover -s tests/ray -v

The cluster is started once for the module and stopped at the end, by the processes it started
(scripts/ray/local_cluster.py), whatever else runs Ray on the machine.
"""

import fcntl
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "ray"))

from local_cluster import LoopbackCluster  # noqa: E402

THEMAP = os.path.abspath(os.environ.get("THEMAP_BIN", os.path.join(ROOT, "target", "release", "themap")))
MODEL = os.environ.get("THEMAP_MODEL")
DATA = os.path.join(ROOT, "data")
WINDOW = "16"  # small windows: several shards from the 259 sample passages
cluster = None
work = None


def setUpModule():
    global cluster, work
    if not MODEL or not os.path.isdir(MODEL):
        raise unittest.SkipTest("THEMAP_MODEL must name the model folder (scripts/fetch-model.sh)")
    work = tempfile.TemporaryDirectory(prefix="themap-ray-")
    started = time.time()
    cluster = LoopbackCluster(workers=2, cpus_per_worker=1, gpus_per_worker=1, base_port=36300).up()
    print(f"\nloopback cluster up in {time.time() - started:.0f} s", file=sys.stderr)
    # The single-machine reference: themap embed + themap index, the same windows.
    single = path("single.npy")
    themap("embed", DATA, "-o", single, "--window", WINDOW)
    themap("index", DATA, "--vectors", single, "--index", path("index-single"))


def tearDownModule():
    if cluster:
        cluster.down()
    if work:
        work.cleanup()


def path(name: str) -> str:
    return os.path.join(work.name, name)


def themap(*args: str) -> None:
    subprocess.run([THEMAP, "-q", *args, "--model", MODEL], check=True, stdout=subprocess.DEVNULL)


def driver(out: str, *extra: str) -> list[str]:
    return [
        sys.executable, os.path.join(ROOT, "scripts", "ray", "embed.py"), DATA, "--out", out,
        "--address", cluster.address, "--themap", THEMAP, "--model", MODEL, "--device", "cpu",
        "--window", WINDOW, "--json", *extra,
    ]


def run_driver(out: str, *extra: str) -> dict:
    done = subprocess.run(driver(out, *extra), capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"the driver failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class RayEmbedTest(unittest.TestCase):
    def assert_same_index(self, index: str) -> None:
        """Every file of the single-machine index, byte for byte, but the search graph, which
        hnsw_rs builds in parallel and so differs between any two builds, on one machine too."""
        single = path("index-single")
        names = sorted(n for n in os.listdir(single) if not n.startswith("graph-"))
        self.assertEqual(names, sorted(n for n in os.listdir(index) if not n.startswith("graph-")))
        for name in names:
            a, b = (pathlib.Path(folder, name).read_bytes() for folder in (single, index))
            if name == "manifest.json":
                a, b = json.loads(a), json.loads(b)
                for manifest in (a, b):
                    manifest["graph"]["file"].pop("xxh3")
            self.assertEqual(a, b, f"{name} differs from the single-machine index's")

    def test_1_same_index_as_one_machine_and_nothing_recomputed_on_a_rerun(self):
        out = path("shared-1")
        summary = run_driver(out, "--shard-size", "32", "--index", path("index-ray"))
        self.assertEqual((summary["shards"], summary["embedded"], summary["passages"]), (9, 9, 259))
        self.assertEqual(len(summary["by_node"]), 2, f"both workers embedded: {summary['by_node']}")
        self.assert_same_index(path("index-ray"))

        vectors = os.path.join(out, "vectors")
        before = {name: os.stat(os.path.join(vectors, name)).st_mtime_ns for name in os.listdir(vectors)}
        again = run_driver(out, "--shard-size", "32")
        self.assertEqual((again["already_done"], again["embedded"]), (9, 0))
        after = {name: os.stat(os.path.join(vectors, name)).st_mtime_ns for name in os.listdir(vectors)}
        self.assertEqual(before, after, "a rerun rewrote finished shards")

        # A second driver on the same folder while one runs is refused before it touches anything.
        with open(os.path.join(out, ".driver.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            busy = subprocess.run(driver(out, "--shard-size", "32", "--restart"), capture_output=True, text=True)
        self.assertNotEqual(busy.returncode, 0)
        self.assertIn("another ray-embed is running", busy.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "plan.json")))

        # Other settings on the same folder are refused, and it is left as it was.
        refused = subprocess.run(driver(out, "--shard-size", "48"), capture_output=True, text=True)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("other input or other settings", refused.stderr)
        self.assertEqual(before, {n: os.stat(os.path.join(vectors, n)).st_mtime_ns for n in os.listdir(vectors)})

    def test_2_a_worker_lost_mid_run_costs_no_passage(self):
        out = path("shared-2")
        log, killed = [], threading.Event()
        with subprocess.Popen(
            driver(out, "--shard-size", "16"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as run:

            def watch():
                # Once worker 2 has finished a shard it is busy with the next: kill it then.
                for line in run.stderr:
                    log.append(line)
                    if not killed.is_set() and "done on 127.0.0.4" in line:
                        time.sleep(1)
                        self.assertGreater(cluster.kill_worker(2), 0)
                        killed.set()

            watcher = threading.Thread(target=watch)
            watcher.start()
            stdout = run.stdout.read()
            run.wait(timeout=900)
            watcher.join()
        text = "".join(log)
        self.assertEqual(run.returncode, 0, text[-4000:])
        self.assertTrue(killed.is_set(), text[-4000:])
        summary = json.loads(stdout.strip().splitlines()[-1])
        self.assertGreaterEqual(summary["retried"], 1, text[-4000:])
        self.assertIn("queued again", text)
        self.assertEqual(summary["shards"], 17)
        themap("index", DATA, "--vectors", os.path.join(out, "vectors"), "--index", path("index-lost"))
        self.assert_same_index(path("index-lost"))


if __name__ == "__main__":
    unittest.main()
