"""`themap embed` across the machines of a Ray cluster, in shards, resumable.

    python scripts/ray/embed.py INPUT... --out SHARED_DIR [--index DIR] [themap embed options]

Run it where Ray runs a driver (`ray job submit -- python scripts/ray/embed.py ...`, or on the
head). SHARED_DIR must be a folder every node sees at the same path (NFS, a mounted bucket),
and the themap binary (--themap) and the model (--model) must be at the same path on every node.

1. Records. `.jsonl` and `.tsv` record files are embedded a line at a time, as `themap embed`
   embeds them. Folders and documents (and .jsonl documents with --split) are split into
   passages once, here, by `themap passages --json`, exactly as `themap index` splits them.
2. Shards. The records are cut into SHARED_DIR/input/NNNNNN.jsonl (or .tsv) of --shard-size
   lines, a multiple of --window, so that every window, and so every vector, is the one a
   single `themap embed` run computes. SHARED_DIR/plan.json records a digest of the records and
   the settings: a rerun on the same input reuses the shards; other input is refused.
3. Embedding. One Ray actor per --gpus-per-actor GPUs (default 1; 0 for CPU nodes, with
   --cpus-per-actor), each running one `themap embed --jobs -` process: the model loads once per
   actor. A free actor takes the next shard and writes SHARED_DIR/vectors/NNNNNN.npy (+ .ids.txt,
   .meta.json). A shard whose vectors exist is never embedded again. A shard whose actor or node
   is lost goes back in the queue and runs on another actor, resuming the vectors its first run
   had flushed (themap's resumable output); a replacement actor is asked for and joins when Ray
   can place it.
4. Assembly. `themap index INPUT... --vectors SHARED_DIR/vectors` builds the index from the
   shards, checked against the input, as if one machine had embedded it (--index DIR runs it here).

Prints one line per shard and, with --json, a summary. Exit status 0 when every shard is done.
"""

import argparse
import collections
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

PLAN_VERSION = 1
# A shard lost with its actor more often than this is itself the cause (a record that kills themap).
MAX_LOSSES = 3
# Options passed through to every `themap embed`: each changes the vectors' bytes or their speed.
EMBED_OPTIONS = ["prompt", "dims", "device", "dtype", "out_type", "batch_size", "batch_tokens", "max_tokens", "encoding"]


def log(message: str) -> None:
    print(f"[ray-embed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Records and shards (on the driver)


def record_kind(inputs: list[str], split: bool) -> str:
    """`jsonl` or `tsv` records embedded as they are, or `documents` to split, as themap decides."""
    kinds = set()
    for path in inputs:
        if not os.path.exists(path):
            raise SystemExit(f"ray-embed: {path}: no such file or folder")
        ext = os.path.splitext(path)[1].lower()
        if os.path.isdir(path) or split or ext not in (".jsonl", ".tsv"):
            kinds.add("documents")
        else:
            kinds.add(ext[1:])
    if len(kinds) != 1:
        raise SystemExit(
            "ray-embed: give either records files (.jsonl or .tsv, one format) or documents (folders, .txt, .md), "
            "as `themap embed` takes them; run once for each"
        )
    return kinds.pop()


def record_lines(args, kind: str):
    """The records, one line each, in input order: record files' non-empty lines as they are, or
    the passages `themap passages --json` splits documents into."""
    if kind != "documents":
        for path in args.inputs:
            with open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        yield line if line.endswith(b"\n") else line + b"\n"
        return
    command = [args.themap, "-q", "passages", "--json", *args.inputs, "--model", args.model]
    if args.max_tokens:
        command += ["--max-tokens", str(args.max_tokens)]
    if args.encoding:
        command += ["--encoding", args.encoding]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as passages:
        yield from passages.stdout
    if passages.returncode != 0:
        raise SystemExit(f"ray-embed: `{' '.join(command)}` failed (exit {passages.returncode}); see its message above")


def embed_arguments(args) -> list[str]:
    """The `themap embed` options every shard is embedded with."""
    out = ["--model", args.model, "--window", str(args.window)]
    for name in EMBED_OPTIONS:
        value = getattr(args, name)
        if value is not None and name not in ("max_tokens", "encoding"):
            out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def plan_shards(args, kind: str) -> dict:
    """Cuts the records into shard files once; a rerun with the same records reuses them."""
    input_dir = os.path.join(args.out, "input")
    plan_path = os.path.join(args.out, "plan.json")
    digest, count, shard, shards = hashlib.sha256(), 0, None, 0
    old = json.load(open(plan_path)) if os.path.exists(plan_path) else None
    staging = os.path.join(args.out, f"input.partial-{os.getpid()}")
    write = old is None
    if write:
        os.makedirs(staging)
    for line in record_lines(args, kind):
        if count % args.shard_size == 0:
            if shard:
                shard.close()
            if write:
                shard = open(os.path.join(staging, shard_name(kind, shards)), "wb")
            shards += 1
        digest.update(line)
        if write:
            shard.write(line)
        count += 1
    if shard:
        shard.close()
    if count == 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"ray-embed: no texts in {', '.join(args.inputs)}: nothing to embed")
    plan = {
        "version": PLAN_VERSION,
        "inputs": [os.path.abspath(p) for p in args.inputs],
        "kind": kind,
        "records": count,
        "digest": digest.hexdigest(),
        "shard_size": args.shard_size,
        "shards": shards,
        "embed": embed_arguments(args),
    }
    if old is not None:
        if {k: old.get(k) for k in ("records", "digest", "shard_size", "embed")} != {
            k: plan[k] for k in ("records", "digest", "shard_size", "embed")
        }:
            raise SystemExit(
                f"ray-embed: {args.out} holds shards of other input or other settings ({plan_path}); "
                "give another --out, or --restart to throw them away"
            )
        return old
    shutil.rmtree(input_dir, ignore_errors=True)
    os.rename(staging, input_dir)
    with open(plan_path + ".tmp", "w") as f:
        json.dump(plan, f, indent=1)
    os.replace(plan_path + ".tmp", plan_path)
    return plan


def shard_name(kind: str, index: int) -> str:
    """A shard's records file: TSV stays TSV, JSONL records and passages are JSONL."""
    return f"{index:06d}.{'tsv' if kind == 'tsv' else 'jsonl'}"


def shard_paths(args, plan: dict, index: int) -> tuple[str, str]:
    return (
        os.path.join(args.out, "input", shard_name(plan["kind"], index)),
        os.path.join(args.out, "vectors", f"{index:06d}.npy"),
    )


def finished(vectors: str) -> bool:
    """themap moves the vectors into place last, after the ids and the metadata."""
    return os.path.isfile(vectors) and os.path.isfile(vectors[: -len(".npy")] + ".meta.json")


# ---------------------------------------------------------------------------------------------
# The actors (on the nodes)


def die_with_parent() -> None:
    """In the child: SIGKILL when the actor's process ends, so no orphan writes a shard that
    another actor has taken over (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


class ShardEmbedder:
    """One `themap embed --jobs -` process: the model loads once, then a shard per call."""

    def __init__(self, command: list[str], threads: int):
        import tempfile

        import ray

        env = dict(os.environ)
        if threads:
            env["RAYON_NUM_THREADS"] = str(threads)
        self.node = ray.util.get_node_ip_address()
        # themap's warnings and errors: kept in a file (a pipe nobody reads could fill up).
        self.stderr = tempfile.TemporaryFile(mode="w+")
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                env=env, preexec_fn=die_with_parent,
            )
        except OSError as error:
            raise RuntimeError(f"ray-embed: cannot start themap on {self.node}: {error}") from None
        # The first line says the model loaded; without it, themap's own message says why not.
        if not self.process.stdout.readline():
            raise RuntimeError(f"ray-embed: themap failed on {self.node}: {self.themap_error()}")

    def themap_error(self) -> str:
        code = self.process.wait()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {code}"

    def ready(self) -> str:
        return self.node

    def embed(self, shard: str, vectors: str) -> dict:
        if finished(vectors):
            return {"out": vectors, "node": self.node, "skipped": True}
        self.process.stdin.write(json.dumps({"inputs": [shard], "out": vectors}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            # themap itself is gone (killed, out of memory): this actor is of no more use.
            log(f"themap ended on {self.node} ({self.themap_error()}); the actor ends")
            os._exit(1)
        answer = json.loads(answer)
        if "error" in answer:
            raise RuntimeError(f"themap embed {shard}: {answer['error']}")
        answer["node"] = self.node
        return answer


# ---------------------------------------------------------------------------------------------
# The driver


def own_message(error) -> str:
    """Our own line from a Ray error that wraps an actor's exception and its traceback."""
    lines = [line for line in str(error).splitlines() if "ray-embed:" in line]
    return lines[-1][lines[-1].index("ray-embed:"):] if lines else f"ray-embed: {error}"


def run(args) -> dict:
    import ray
    from ray.exceptions import RayActorError

    if not (os.path.isfile(args.themap) and os.access(args.themap, os.X_OK)):
        raise SystemExit(
            f"ray-embed: --themap {args.themap}: no themap binary there; give its path (the same on every node) "
            "with --themap or THEMAP_BIN"
        )
    kind = record_kind(args.inputs, args.split)
    os.makedirs(args.out, exist_ok=True)
    # One driver per folder: a second would cut the shards again under the first one's actors.
    lock = open(os.path.join(args.out, ".driver.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"ray-embed: another ray-embed is running on {args.out}; wait for it, or give another --out")
    for name in os.listdir(args.out):
        # What --restart throws away, and the shards a killed driver was still cutting.
        if name.startswith("input.partial-") or (args.restart and name in ("input", "vectors", "plan.json")):
            path = os.path.join(args.out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    os.makedirs(os.path.join(args.out, "vectors"), exist_ok=True)
    log(f"cutting {kind} records into shards of {args.shard_size}")
    plan = plan_shards(args, kind)
    todo = collections.deque(i for i in range(plan["shards"]) if not finished(shard_paths(args, plan, i)[1]))
    summary = {"out": args.out, "records": plan["records"], "shards": plan["shards"], "already_done": plan["shards"] - len(todo),
               "embedded": 0, "passages": 0, "retried": 0, "by_node": {}}
    log(f"{plan['records']} records in {plan['shards']} shards, {len(todo)} to embed")
    if todo:
        ray.init(address=args.address, logging_level="WARNING", log_to_driver=args.verbose)
        resources = ray.cluster_resources()
        if args.actors:
            actors_wanted = args.actors
        elif args.gpus_per_actor:
            actors_wanted = int(resources.get("GPU", 0) // args.gpus_per_actor)
        else:
            actors_wanted = int(resources.get("CPU", 0) // max(args.cpus_per_actor, 1))
        actors_wanted = min(max(actors_wanted, 1), len(todo))
        if args.gpus_per_actor and not resources.get("GPU"):
            log(f"the cluster has no GPU yet; the actors wait for nodes with {args.gpus_per_actor} GPU(s)")
        remote = ray.remote(ShardEmbedder).options(
            num_gpus=args.gpus_per_actor, num_cpus=args.cpus_per_actor, max_restarts=0, max_task_retries=0
        )
        command = [args.themap, "-q", "embed", "--jobs", "-", *plan["embed"]]
        starting, idle, running = {}, [], {}
        losses = collections.Counter()

        def spawn():
            actor = remote.remote(command, args.cpus_per_actor)
            starting[actor.ready.remote()] = actor

        for _ in range(actors_wanted):
            spawn()
        started = time.time()
        while todo or running:
            while idle and todo:
                actor, shard = idle.pop(), todo.popleft()
                running[actor.embed.remote(*shard_paths(args, plan, shard))] = (actor, shard)
            ready, _ = ray.wait(list(running) + list(starting), num_returns=1)
            ref = ready[0]
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    log(f"actor ready on {ray.get(ref)}")
                    idle.append(actor)
                except RayActorError as error:
                    if error.actor_init_failed:  # themap could not start: the same everywhere
                        raise SystemExit(own_message(error))
                    # Placed on a node that was dying: ask again.
                    log("an actor was lost before it started; asking for another")
                    spawn()
                continue
            actor, shard = running.pop(ref)
            try:
                answer = ray.get(ref)
            except RayActorError as error:
                # Its node (or its themap) was lost: the shard goes back in the queue, resumed
                # by the next actor from what was flushed, and a replacement actor is asked for.
                losses[shard] += 1
                if losses[shard] > MAX_LOSSES:
                    raise SystemExit(
                        f"ray-embed: shard {shard:06d} was lost with its actor {losses[shard]} times; "
                        "see the Ray workers' logs (ray logs) for why themap ended"
                    )
                log(f"shard {shard:06d} lost with its actor ({type(error).__name__}); queued again")
                todo.appendleft(shard)
                summary["retried"] += 1
                spawn()
                continue
            idle.append(actor)
            if not answer.get("skipped"):
                summary["embedded"] += 1
                summary["passages"] += answer.get("passages", 0)
                summary["by_node"][answer["node"]] = summary["by_node"].get(answer["node"], 0) + 1
            done = plan["shards"] - len(todo) - len(running)
            log(
                f"shard {shard:06d} done on {answer['node']}: {answer.get('rows')} rows"
                + (f", resumed after {answer['resumed_after']}" if answer.get("resumed_after") else "")
                + f" ({done}/{plan['shards']})"
            )
        summary["seconds"] = time.time() - started
        for actor in idle + [actor for actor, _ in running.values()] + list(starting.values()):
            ray.kill(actor)
    vectors = os.path.join(args.out, "vectors")
    if plan["kind"] == "documents":
        index_command = [args.themap, "index", *args.inputs, "--vectors", vectors, "--model", args.model]
        if args.max_tokens:
            index_command += ["--max-tokens", str(args.max_tokens)]
        if args.index:
            log(f"assembling the index: {' '.join(index_command)} --index {args.index}")
            subprocess.run([*index_command, "--index", args.index, "-q"], check=True)
            summary["index"] = args.index
        else:
            log(f"all shards done; build the index with: {' '.join(index_command)}")
    else:
        log(f"all shards done: {vectors}/*.npy in name order hold the vectors, row for row the records")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="as for `themap embed` (paths every node need not see)")
    parser.add_argument("--out", required=True, help="shared folder for the shards and their vectors")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"), help="Ray cluster (default: auto)")
    parser.add_argument("--themap", default=os.environ.get("THEMAP_BIN") or shutil.which("themap") or "themap",
                        help="the themap binary, at this path on every node (default: $THEMAP_BIN, else on PATH)")
    parser.add_argument("--model", default=os.environ.get("THEMAP_MODEL"), help="model folder on every node ($THEMAP_MODEL)")
    parser.add_argument("--index", help="build the index here from the shards when done (documents only)")
    parser.add_argument("--shard-size", type=int, default=16384, help="records per shard, a multiple of --window")
    parser.add_argument("--window", type=int, default=1024, help="as for themap embed")
    parser.add_argument("--gpus-per-actor", type=float, default=1, help="GPUs each actor holds (0: CPU actors)")
    parser.add_argument("--cpus-per-actor", type=int, default=1, help="CPUs each actor holds (its themap threads)")
    parser.add_argument("--actors", type=int, help="how many actors (default: as many as the cluster's GPUs, or CPUs, allow)")
    parser.add_argument("--split", action="store_true", help="read .jsonl inputs as documents, as themap embed --split")
    parser.add_argument("--restart", action="store_true", help="throw away what SHARED_DIR holds and start again")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the actors' logs")
    for name in EMBED_OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", help="as for themap embed")
    args = parser.parse_args()
    if not args.model:
        parser.error("--model (or THEMAP_MODEL) is required")
    if args.shard_size <= 0 or args.window <= 0 or args.shard_size % args.window:
        parser.error("--shard-size must be a positive multiple of --window")
    summary = run(args)
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
