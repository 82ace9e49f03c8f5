"""Forecasting a real series: next year's sunspot number, an LSTM against honest baselines.

The series is the yearly sunspot numbers 1700-2008 (public domain, shipped with the package).
It is split in time order: 1700-1916 train, 1917-1962 validate, 1963-2008 test. The LSTM
reads a window of the years before and predicts the next one; its inputs are normalised
with the training years' mean and standard deviation only. The validation years choose
when to stop training (the weights with the lowest validation RMSE are kept) and the order
of the linear autoregression; the test years are scored once, at the end.

Every forecaster predicts one year ahead from the true values before it:
- persistence: next year = this year;
- previous cycle: the value 11 years before (the solar cycle's mean length);
- AR(p): a linear autoregression on the last p years, fitted by least squares on the
  training years (p from 1 to the window, chosen on the validation years);
- the LSTM, trained from several seeds: its row gives the mean over seeds and the range.

    python examples/forecast_sunspots.py --out sunspots.png   # five seeds, 10-20 s
    python examples/forecast_sunspots.py --steps 20 --seeds 0 --eval-every 10 --no-plot

On a machine whose cores are busy, set OPENBLAS_NUM_THREADS=1: the matrices are small, and
BLAS threads waiting for a core made the same run five times slower.
"""

import argparse
import time

import numpy as np
from tinygrad_lstm.tooling.forecast_baselines import (
    forecast_errors,
    persistence,
    seasonal_naive,
    select_autoregression,
)
from tinygrad_lstm.tooling.forecast_chart import forecast_png, forecast_text_chart
from tinygrad_lstm.tooling.forecasting import SunspotTask

from tinygrad_lstm import tasks
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

CYCLE = 11  # years: the mean length of the solar cycle


def predict(model, task: SunspotTask, span: str) -> np.ndarray:
    """The model's one-year-ahead forecasts for ``span``, in sunspot numbers."""
    x, _ = task.windows(span)
    return task.to_values(tasks.predict(model, x).data[:, 0])


def train(task: SunspotTask, args, seed: int):
    """Train from ``seed``; returns the model at its best validation step, and that step."""
    config = tasks.model_config(task, "lstm", args.hidden, fused=args.fused)
    model = tasks.build_model(config, rng=np.random.default_rng(seed))
    trainer = Trainer(
        model,
        Adam(model.parameters(), lr=args.lr),
        lambda p, y: tasks.task_loss(task, p, y),
        clip=1.0,
        per_step_targets=False,
    )
    truth = task.series.values[task.targets("val")]
    best = (np.inf, 0, model.state_dict())
    for step in range(1, args.steps + 1):
        trainer.step(*task.batch(np.random.default_rng([seed, step]), args.batch))
        if step % args.eval_every == 0 or step == args.steps:
            rmse = forecast_errors(predict(model, task, "val"), truth)["rmse"]
            if rmse < best[0]:
                best = (rmse, step, model.state_dict())
    model.load_state_dict(best[2])
    return model, best[1]


def row(name: str, val: dict, test: dict, note: str = "") -> str:
    return (
        f"{name:<28}{val['mae']:>8.2f}{val['rmse']:>8.2f}"
        f"{test['mae']:>10.2f}{test['rmse']:>8.2f}  {note}"
    )


def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{key} {min(values):.2f}-{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=20, help="years the LSTM reads")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1500, help="training steps per seed")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--eval-every", type=int, default=100, help="validation interval")
    parser.add_argument("--composed", dest="fused", action="store_false", help="not fused")
    parser.add_argument("--out", default="sunspots_forecast.png", help="the PNG to write")
    parser.add_argument("--no-plot", action="store_true", help="a text chart, no PNG")
    args = parser.parse_args()

    task = SunspotTask(args.window)
    values, years = task.series.values, task.series.years
    spans = {s: task.targets(s) for s in ("train", "val", "test")}
    for s, t in spans.items():
        print(f"{s:<5} {years[t[0]]}-{years[t[-1]]}: {len(t)} target years")
    print(f"normalised with the training years' mean {task.mean:.2f} and std {task.std:.2f}\n")

    def scores(forecast) -> tuple[dict, dict]:
        return tuple(forecast_errors(forecast(spans[s]), values[spans[s]]) for s in ("val", "test"))

    ar = select_autoregression(values, spans["train"], spans["val"], range(1, args.window + 1))
    baselines = {
        "persistence": lambda t: persistence(values, t),
        f"previous cycle ({CYCLE} years)": lambda t: seasonal_naive(values, t, CYCLE),
        f"linear AR({ar.order}), least squares": lambda t: ar.predict(values, t),
    }

    runs, models = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        model, step = train(task, args, seed)
        val, test = (
            forecast_errors(predict(model, task, s), values[spans[s]]) for s in ("val", "test")
        )
        runs.append({"val": val, "test": test, "step": step})
        models.append(model)
        print(
            f"seed {seed}: best validation RMSE {val['rmse']:.2f} at step {step}; "
            f"test RMSE {test['rmse']:.2f} ({time.perf_counter() - started:.1f}s)",
            flush=True,
        )

    print(f"\none-year-ahead forecasts, in sunspot numbers; LSTM: mean of {len(runs)} seed(s)")
    print(f"{'':<28}{'validation':>16}{'test':>18}")
    print(f"{'forecaster':<28}{'MAE':>8}{'RMSE':>8}{'MAE':>10}{'RMSE':>8}")
    for name, forecast in baselines.items():
        print(row(name, *scores(forecast)))
    mean = {
        s: {k: float(np.mean([r[s][k] for r in runs])) for k in ("mae", "rmse")}
        for s in ("val", "test")
    }
    lstm_name = f"LSTM (hidden {args.hidden}, window {args.window})"
    print(row(lstm_name, mean["val"], mean["test"], spread([r["test"] for r in runs], "rmse")))

    best = int(np.argmin([r["val"]["rmse"] for r in runs]))
    test_years = years[spans["test"]]
    curves = {
        "lstm": predict(models[best], task, "test"),
        f"ar({ar.order})": ar.predict(values, spans["test"]),
        "persistence": persistence(values, spans["test"]),
    }
    title = f"test years {test_years[0]}-{test_years[-1]}: LSTM seed {args.seeds.split(',')[best]}"
    truth = values[spans["test"]]
    if not args.no_plot and forecast_png(args.out, test_years, truth, curves, title):
        print(f"\nwrote {args.out} ({title}, the seed with the best validation RMSE)")
    else:
        print(f"\n{title} (the seed with the best validation RMSE)")
        chart = {
            "truth": truth,
            "lstm": curves["lstm"],
            f"ar({ar.order})": curves[f"ar({ar.order})"],
        }
        print(forecast_text_chart(test_years, chart))


if __name__ == "__main__":
    main()
