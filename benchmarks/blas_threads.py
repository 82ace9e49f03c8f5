"""Benchmark: does one BLAS thread beat OpenBLAS's default (one per core) for training?

    python benchmarks/blas_threads.py [--rounds 5] [--steps 20] [--busy 0]

Each round runs the same training job in two fresh processes, one with
``OPENBLAS_NUM_THREADS=1`` and one with the variable unset, in alternating order, and times
``--steps`` training steps after two warm-up steps. Jobs: the composed layers ``train`` and
``demo`` build (adding task, T=50, batch 32, hidden 32, float32), the fused LSTM at the same
size, and a larger composed LSTM (hidden 256, batch 64) whose matrix products are big enough
for two threads to have work. ``--busy N`` starts N processes that spin on the CPU for the
whole run, standing in for other work on the machine. Prints the median seconds per step for
each setting, their ratio, and the load average before and after.
"""

import argparse
import os
import statistics
import subprocess
import sys

JOB = """
import sys, time
import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

hidden, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4])
fused = sys.argv[3] == "1"
task = tasks.AddingTask(50)
config = tasks.model_config(task, "lstm", hidden, fused=fused)
model = tasks.build_model(config, rng=np.random.default_rng(0))
loss = lambda p, y: tasks.task_loss(task, p, y)
trainer = Trainer(model, Adam(model.parameters(), lr=1e-3), loss, clip=1.0, per_step_targets=False)
rng = np.random.default_rng(1)
for _ in range(2):
    trainer.step(*task.batch(rng, batch))
start = time.perf_counter()
for _ in range(steps):
    trainer.step(*task.batch(rng, batch))
print((time.perf_counter() - start) / steps)
"""

JOBS = {
    "composed H=32 B=32": ("32", "32", "0"),
    "fused H=32 B=32": ("32", "32", "1"),
    "composed H=256 B=64": ("256", "64", "0"),
}


def run(job: tuple[str, str, str], steps: int, one_thread: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if one_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", JOB, *job, str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to start")
    args = parser.parse_args()
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f}; {args.busy} spinner(s)")
        for name, job in JOBS.items():
            times = {True: [], False: []}
            for r in range(args.rounds):
                for one in (r % 2 == 0, r % 2 != 0):
                    times[one].append(run(job, args.steps, one))
            one, default = statistics.median(times[True]), statistics.median(times[False])
            print(
                f"{name:<22} 1 thread {1e3 * one:8.1f} ms/step   default {1e3 * default:8.1f} "
                f"ms/step   default / 1 thread {default / one:5.2f}x"
            )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
