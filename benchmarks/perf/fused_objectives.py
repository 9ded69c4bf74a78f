"""Output layer + training loss, fused and on materialised logits: time and extra peak memory.

    python benchmarks/perf/fused_objectives.py [--rows 1024] [--vocab 32016 50257]
        [--hidden 768] [--objectives ce dece ...] [--threads 1] [--rounds 2] [--no-step] [--json]

The defaults fit the project's shared 2-core CPU in about twenty minutes; the issue's grid
(N = 8,192, V up to 151,936, H up to 4,096) is a matter of flags and time.

For each vocabulary size V and hidden size H: N rows of random float32 hidden states (one in
ten ignored), an output weight V × H (no bias, as in the suite's LM families), forward and
backward of the output layer and the loss, giving the gradients of the hidden states and the
weight. Baseline: F.cross_entropy on the materialised logits F.linear(h, W), which is what
Hugging Face's causal-LM loss computes in float32. Each objective then runs unfused (the
objective's own loss on the same materialised logits) and fused (models.fused_loss: never more
than one block of logits). Moderate fitting's loss is CE's and is not repeated. Liger-Kernel's
fused linear cross-entropy is measured only where it is installed and a CUDA GPU is present
(its kernels are Triton, GPU only).

Then a training step (forward, backward, AdamW) of a tiny Llama-style victim: DeCE fused, as the
trainer runs it, against the same model computing Hugging Face's own cross-entropy (labels
passed to the model).

Time: one process per (V, H) runs every method once to warm up (and compile), then in
interleaved rounds; the median per method. Memory: a fresh process per measurement, as in
dece_loss.py: after the inputs and a warm-up run, the peak-RSS counter is reset
(/proc/self/clear_refs), and extra peak = VmHWM after one more forward + backward minus VmRSS
before it, with glibc told to return every block over 64 KiB to the system
(MALLOC_MMAP_THRESHOLD_). It includes the gradients of the weight and the hidden states,
which every method produces. Linux only. ``--json`` prints the measurements, their ratios and
the machine as JSON instead of tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

# The resident-set reader of the DeCE benchmark, beside this file.
from dece_loss import resident_kib
from report import add_json_flag, comparison, emit, ratio_text

OBJECTIVES = ("ce", "label-smoothing", "dece", "gce", "in-trust")
BASELINE = "F.cross_entropy on logits"
LIGER = "Liger fused linear CE"
# N×V float32 buffers a method on materialised logits holds at its peak, with a margin; only
# used to skip a measurement that the machine's free memory cannot hold.
DENSE_BUFFERS = 6
GIB = 2**30
# The tiny Llama-style victim of the training-step measurement.
STEP_MODEL = {
    "vocab_size": 32016, "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4,
}
STEP_BATCH, STEP_LENGTH = 8, 256
STEP_METHODS = ("HF cross-entropy (model's own loss)", "DeCE fused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024, help="N, tokens per batch")
    parser.add_argument("--vocab", type=int, nargs="+", default=[32016, 50257])
    parser.add_argument("--hidden", type=int, nargs="+", default=[768])
    parser.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-step", action="store_true", help="skip the training step")
    add_json_flag(parser)
    parser.add_argument("--worker", choices=("time", "memory", "step"), help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)  # comma-separated for "time"
    args = parser.parse_args()
    if args.worker == "time":
        shape = (args.rows, args.vocab[0], args.hidden[0])
        print(json.dumps(measure_time(args.method.split(","), *shape, args.threads, args.rounds)))
    elif args.worker == "memory":
        shape = (args.rows, args.vocab[0], args.hidden[0])
        print(json.dumps(measure_memory(args.method, *shape, args.threads)))
    elif args.worker == "step":
        print(json.dumps(measure_step(args.method, args.threads, args.rounds)))
    else:
        report(args)


def methods_for(objectives: list[str]) -> list[str]:
    names = [BASELINE]
    for objective in objectives:
        if objective != "ce":
            names.append(f"{objective} unfused")
        names.append(f"{objective} fused")
    if liger_available():
        names.append(LIGER)
    return names


def liger_available() -> bool:
    if importlib.util.find_spec("liger_kernel") is None:
        return False
    import torch

    return torch.cuda.is_available()


def report(args: argparse.Namespace) -> None:
    document: dict = {
        "rows": args.rows, "threads": args.threads, "rounds": args.rounds,
        "load_average_before": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "liger": "measured" if liger_available() else
        "not measured: liger-kernel is not installed or no CUDA GPU (its kernels are GPU-only)",
        "shapes": [], "step": None,
    }
    methods = methods_for(args.objectives)
    for hidden in args.hidden:
        for vocab in args.vocab:
            if not fits_in_memory(args.rows, vocab, hidden):
                document["shapes"].append({"vocab": vocab, "hidden": hidden,
                                           "skipped": "not enough free memory"})
                continue
            shape = ["--rows", str(args.rows), "--vocab", str(vocab), "--hidden", str(hidden)]
            times = run_worker(["--worker", "time", "--method", ",".join(methods), *shape], args)
            memory = {
                method: run_worker(["--worker", "memory", "--method", method, *shape], args)
                for method in methods
            }
            document["shapes"].append({
                "vocab": vocab, "hidden": hidden,
                "methods": {
                    method: {"median_s": times[method]["median_s"],
                             "extra_peak_bytes": memory[method]["extra_peak_bytes"]}
                    for method in methods
                },
                **ratios_to(BASELINE, times, memory),
            })
            if not args.json:
                print_shape(document["shapes"][-1], args.rows)
    if not args.no_step:
        steps = {method: run_worker(["--worker", "step", "--method", method], args)
                 for method in STEP_METHODS}
        document["step"] = {
            "model": STEP_MODEL, "batch": STEP_BATCH, "length": STEP_LENGTH, "methods": steps,
            **ratios_to(STEP_METHODS[0], steps, steps),
        }
        if not args.json:
            print_step(document["step"])
    document["load_average_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        emit("fused_objectives", args, document, internal=("worker", "method"),
             torch_threads=args.threads)
    else:
        print(f"\nload average: {document['load_average_before']} before, "
              f"{document['load_average_after']} after, on {document['cpus']} CPUs; "
              f"Liger: {document['liger']}")


def ratios_to(baseline: str, times: dict, memory: dict) -> dict:
    """The time and the memory comparison of every method with ``baseline``'s."""
    return {
        "time": comparison({m: times[m]["median_s"] for m in times}, baseline, "s (median)"),
        "memory": comparison({m: memory[m]["extra_peak_bytes"] for m in memory}, baseline,
                             "extra peak bytes"),
    }


def print_shape(shape: dict, rows: int) -> None:
    from tabulate import tabulate

    time_ratio, memory_ratio = shape["time"]["ratios"], shape["memory"]["ratios"]
    table = [
        [method, f"{m['median_s']:.3f}", f"{time_ratio[method]:.2f}x",
         f"{m['extra_peak_bytes'] / GIB:.3f}", ratio_text(memory_ratio[method])]
        for method, m in shape["methods"].items()
    ]
    print(f"\nN = {rows}, V = {shape['vocab']}, H = {shape['hidden']}, forward + backward")
    print(tabulate(table, headers=["method", "time (s, median)", "time / CE",
                                   "extra peak (GiB)", "memory / CE"], disable_numparse=True))


def print_step(step: dict) -> None:
    from tabulate import tabulate

    time_ratio, memory_ratio = step["time"]["ratios"], step["memory"]["ratios"]
    table = [
        [method, f"{m['median_s']:.3f}", f"{time_ratio[method]:.2f}x",
         f"{m['extra_peak_bytes'] / GIB:.3f}", ratio_text(memory_ratio[method]), m["loss_path"]]
        for method, m in step["methods"].items()
    ]
    print(f"\ntraining step of a tiny Llama-style victim {step['model']}, "
          f"batch {step['batch']} x {step['length']} tokens")
    print(tabulate(table, headers=["loss", "time (s, median)", "time / HF CE",
                                   "extra peak (GiB)", "memory / HF CE", "path"],
                   disable_numparse=True))


def fits_in_memory(rows: int, vocab: int, hidden: int) -> bool:
    needed = ((DENSE_BUFFERS + 1) * rows * vocab + 3 * vocab * hidden) * 4
    with open("/proc/meminfo") as handle:
        available_kib = next(int(line.split()[1]) for line in handle if "MemAvailable" in line)
    return needed < 0.8 * available_kib * 1024


def run_worker(arguments: list[str], args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, *arguments, "--threads", str(args.threads),
               "--rounds", str(args.rounds)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if "memory" in arguments or "step" in arguments:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker {' '.join(arguments)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def objective_named(name: str):
    from codebackdoor.registry import registry

    return registry("defenses").get(name)()


def step_function(method: str, rows: int, vocab: int, hidden: int, threads: int) -> Callable:
    """One forward + backward of output layer and loss by ``method``, on fixed inputs."""
    import torch
    import torch.nn.functional as F

    from codebackdoor.models.fused_loss import fused_linear_loss

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    h = torch.randn(rows, hidden, generator=generator).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=generator) / hidden**0.5).requires_grad_()
    labels = torch.randint(0, vocab, (rows,), generator=generator)
    labels[::10] = -100
    epoch = 1
    if method == BASELINE:
        def loss():
            return F.cross_entropy(F.linear(h, w), labels, ignore_index=-100)
    elif method == LIGER:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        h.data, w.data = h.data.cuda(), w.data.cuda()
        labels = labels.cuda()
        liger = LigerFusedLinearCrossEntropyLoss()

        def loss():
            return liger(w, h, labels)
    else:
        name, _, variant = method.rpartition(" ")
        objective = objective_named(name)
        if variant == "fused":
            def loss():
                return fused_linear_loss(h, w, None, labels, objective, epoch)
        else:
            def loss():
                return objective.loss(F.linear(h, w), labels, epoch)

    def step() -> None:
        loss().backward()
        h.grad = w.grad = None

    return step


def measure_time(methods: list[str], rows: int, vocab: int, hidden: int, threads: int,
                 rounds: int) -> dict:
    steps = {method: step_function(method, rows, vocab, hidden, threads) for method in methods}
    for step in steps.values():
        step()
    seconds: dict[str, list[float]] = {method: [] for method in methods}
    for _ in range(rounds):
        for method, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[method].append(time.perf_counter() - start)
    return {method: {"median_s": statistics.median(seconds[method])} for method in methods}


def measure_memory(method: str, rows: int, vocab: int, hidden: int, threads: int) -> dict:
    step = step_function(method, rows, vocab, hidden, threads)
    step()  # warm-up: compiles, and loads whatever torch loads lazily
    return {"extra_peak_bytes": peak_of(step)}


def peak_of(step: Callable[[], None]) -> int:
    before = resident_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current resident set
    step()
    return (resident_kib("VmHWM") - before) * 1024


def measure_step(method: str, threads: int, rounds: int) -> dict:
    """Memory of the second training step (the optimizer's state exists by then) and the
    median time of ``rounds`` more, in this fresh process."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from codebackdoor.defenses.dece import DeCE
    from codebackdoor.models.fused_loss import fused_linear_loss
    from codebackdoor.models.objective import next_token_labels
    from codebackdoor.models.output_layer import output_layer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**STEP_MODEL)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, STEP_MODEL["vocab_size"], (STEP_BATCH, STEP_LENGTH))
    features = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = ids.clone()
    labels[:, : STEP_LENGTH // 4] = -100  # a prompt
    layer = output_layer(model, "causal")
    objective = DeCE()
    fused = method == "DeCE fused"

    def step() -> None:
        if fused:
            hidden = layer.hidden_states(features)
            loss = fused_linear_loss(hidden, layer.layer.weight, layer.layer.bias,
                                     next_token_labels(labels), objective, 1)
        else:
            loss = model(**features, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    extra = peak_of(step)
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return {"extra_peak_bytes": extra, "median_s": statistics.median(seconds),
            "loss_path": "fused" if fused else "logits"}


if __name__ == "__main__":
    main()
