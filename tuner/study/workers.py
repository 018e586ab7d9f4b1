"""Several worker processes on one study: launch, share out CPU threads and GPUs, watch.

Each worker is a ``tune worker`` process joining the study through its database, exactly as a
worker on another machine would; the launcher only starts them and shows the study's progress.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from tuner.study.orchestrate import StudySettings


def usable_cores() -> int:
    """Cores this process may use (respects taskset and container CPU sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(n_workers: int, cores: int | None = None) -> int:
    """Split the machine's cores evenly: two workers on two cores get one thread each."""
    return max(1, (cores or usable_cores()) // max(n_workers, 1))


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's thread pools (call before the first TensorFlow operation)."""
    if not threads:
        return
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    from tuner.models.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started; the environment above still applies
        pass


def gpu_count() -> int:
    """NVIDIA GPUs visible on this machine (0 without nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


FAST_EXIT_ENV = "TUNER_WORKER_FAST_EXIT"


@dataclass
class WorkerProcess:
    index: int
    process: subprocess.Popen[bytes]
    log: Path


def worker_command(
    settings: StudySettings, *, threads: int, seed: int | None, data: str | None
) -> list[str]:
    cmd = [
        sys.executable, "-m", "tuner", "worker", settings.name,
        "--storage", settings.storage_url,
        "--tracking-uri", settings.tracking_uri,
        "--threads", str(threads),
        "--heartbeat", str(settings.heartbeat_interval),
        "--grace", str(settings.grace_period),
        "--db-patience", str(settings.storage_patience_s),
        "--no-live",
    ]  # fmt: skip
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if data:
        cmd += ["--data", data]
    if settings.timeout is not None:
        cmd += ["--timeout", str(settings.timeout)]
    return cmd


def worker_environment(
    base: Mapping[str, str], index: int, *, n_workers: int, gpus: int
) -> dict[str, str]:
    """The environment of worker ``index`` (from 0): one GPU, round robin, or none. The GPUs
    are the machine's ``gpus``, or those the user's own CUDA_VISIBLE_DEVICES names."""
    # Launched workers exit at once when done (see `tune worker`): every write is committed.
    env = {**base, FAST_EXIT_ENV: "1"}
    if "CUDA_VISIBLE_DEVICES" in base:
        devices = [d.strip() for d in base["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    else:
        devices = [str(g) for g in range(gpus)]
    if not devices:
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env
    env["CUDA_VISIBLE_DEVICES"] = devices[index % len(devices)]
    if n_workers > len(devices):
        # TensorFlow takes nearly all of a GPU's memory up front: a second worker on the same
        # GPU would fail with out-of-memory. Growing on demand lets them share it.
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    return env


def launch_workers(
    settings: StudySettings, n_workers: int, log_dir: Path, *, data: str | None = None
) -> list[WorkerProcess]:
    """Start ``n_workers`` worker processes on the (already created) study."""
    log_dir.mkdir(parents=True, exist_ok=True)
    threads = threads_per_worker(n_workers)
    gpus = gpu_count()
    workers = []
    for i in range(n_workers):
        env = worker_environment(os.environ, i, n_workers=n_workers, gpus=gpus)
        seed = settings.seed + i if settings.seed is not None else None
        log = log_dir / f"worker-{i + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                worker_command(settings, threads=threads, seed=seed, data=data),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        workers.append(WorkerProcess(i + 1, proc, log))
    return workers


def watch_workers(
    workers: list[WorkerProcess],
    study: optuna.Study,
    on_trials: Callable[[list[optuna.trial.FrozenTrial]], None],
    poll_s: float = 1.0,
) -> bool:
    """Wait for the workers, feeding the study's trials to ``on_trials``; Ctrl-C is passed on
    to every worker (each records its running trial as interrupted). Returns True if
    interrupted."""
    interrupted = False
    try:
        while any(w.process.poll() is None for w in workers):
            on_trials(study.get_trials(deepcopy=False))
            time.sleep(poll_s)
    except KeyboardInterrupt:
        interrupted = True
        for w in workers:
            if w.process.poll() is None:
                w.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        for w in workers:
            try:
                w.process.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                w.process.kill()
    on_trials(study.get_trials(deepcopy=False))
    return interrupted


def failed_workers(workers: list[WorkerProcess]) -> list[tuple[int, int, str]]:
    """(index, exit code, last log line) of workers that ended badly."""
    bad = []
    for w in workers:
        code = w.process.returncode
        if code not in (0, 130, None, -signal.SIGINT):
            lines = [ln for ln in w.log.read_text(errors="replace").splitlines() if ln.strip()]
            bad.append((w.index, code, lines[-1] if lines else ""))
    return bad
