"""Draw docs/benchmarks.png from bench/results/*.json: decode tok/s per variant, TTFT by turn,
and (when bench/speculative.py has run) tok/s with and without speculative decoding.

matplotlib is a bench-only dependency (see bench/README.md); without it this says so and
does nothing.

    .venv/bin/python bench/chart.py [--out docs/benchmarks.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import benchlib


def draw(out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (.venv/bin/pip install matplotlib)")
        return None
    decode_file = benchlib.RESULTS / "decode_speed.json"
    reuse_file = benchlib.RESULTS / "prompt_reuse.json"
    if not decode_file.exists() or not reuse_file.exists():
        print("run bench/decode_speed.py and bench/prompt_reuse.py first: no chart")
        return None
    decode = json.loads(decode_file.read_text())
    reuse = json.loads(reuse_file.read_text())

    speculative_file = benchlib.RESULTS / "speculative.json"
    speculative = json.loads(speculative_file.read_text()) if speculative_file.exists() else None
    if speculative is not None:
        fig, (left, right, third) = plt.subplots(1, 3, figsize=(16.5, 4.4))
        draw_speculative(third, speculative)
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    summary = {n: decode["summary"][n] for n in ("binding", "engine", "app") if n in decode["summary"]}
    llama_bench_file = benchlib.RESULTS / "llama_bench.json"
    if llama_bench_file.exists():  # the optional C++ figure, as a bar of its own
        lb = json.loads(llama_bench_file.read_text()).get("summary", {}).get("llama-bench")
        if lb:
            summary = {"llama-bench": {"tok_s": lb["tok_s"], "best_tok_s": lb["best_tok_s"]}, **summary}
    names = list(summary)
    x = range(len(names))
    medians = [summary[n]["tok_s"] for n in names]
    bests = [summary[n].get("best_tok_s", summary[n]["tok_s"]) for n in names]
    left.bar([i - 0.2 for i in x], medians, width=0.4, color="#4c72b0", label="median")
    left.bar([i + 0.2 for i in x], bests, width=0.4, color="#dd8452", label="best run")
    for i, name in enumerate(names):
        s_ = summary[name]
        left.annotate(f"{medians[i]:.1f}" + (f"\n×{s_['ratio_to_binding']:.2f}" if s_.get("ratio_to_binding") else ""),
                      (i - 0.2, medians[i]), ha="center", va="bottom", fontsize=8)
        best_ratio = f"\n×{s_['best_ratio_to_binding']:.2f}" if s_.get("best_ratio_to_binding") else ""
        left.annotate(f"{bests[i]:.1f}" + best_ratio,
                      (i + 0.2, bests[i]), ha="center", va="bottom", fontsize=8)
    left.set_xticks(list(x), names)
    left.legend(fontsize=8, loc="upper right")
    speeds = bests
    s = decode["settings"]
    left.set_title(f"Decode speed, {s['model']}\n{s['tokens']} tokens, {s['threads']} threads, {s['rounds']} rounds "
                   "(×: ratio to binding)",
                   fontsize=10)
    left.set_ylabel("tokens / s (higher is better)")
    left.set_ylim(0, max(speeds) * 1.3)

    turns = reuse["turns"]
    x = [t["turn"] for t in turns]
    right.plot(x, [t["ttft_ms"] for t in turns], marker="o", label="TTFT, best of passes (ms)")
    right.set_xlabel("turn N of one chat")
    right.set_ylabel("time to first token, ms")
    right.set_xticks(x[::2] if len(x) > 10 else x)
    twin = right.twinx()
    twin.plot(x, [t["prompt_tokens"] for t in turns], color="#999999", linestyle="--", label="prompt tokens")
    twin.plot(x, [t["evaluated"] for t in turns], color="#55a868", linestyle=":", marker=".", label="tokens evaluated")
    twin.set_ylabel("tokens")
    lines = right.get_lines() + twin.get_lines()
    right.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    right.set_title("Prompt reuse: TTFT by turn (engine, starter model)", fontsize=10)
    right.set_ylim(bottom=0)
    twin.set_ylim(bottom=0)

    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"chart: {out.relative_to(benchlib.ROOT) if out.is_relative_to(benchlib.ROOT) else out}")
    return out


def draw_speculative(ax, data: dict) -> None:
    """Engine tok/s per workload without speculation, and with it (auto; on for edits), medians
    of rounds, each bar annotated with its ratio to "off" (median of per-round ratios)."""
    summary, ratios = data["summary"], data["ratios"]
    workloads = list(dict.fromkeys(key.split(" | ")[0] for key in summary if " | engine " in key))
    modes = [("off", "#8c8c8c"), ("on", "#dd8452"), ("auto", "#4c72b0")]
    width = 0.27
    top = 0.0
    for i, workload in enumerate(workloads):
        for j, (mode, color) in enumerate(modes):
            key = f"{workload} | engine {mode}"
            if key not in summary:
                continue
            value = summary[key]["tok_s"]["median"]
            top = max(top, value)
            x = i + (j - 1) * width
            ax.bar(x, value, width=width, color=color, label=mode if i == 0 else None)
            ratio = ratios.get(key, {}).get("tok_s_ratio", {}).get("median")
            ax.annotate(f"{value:.0f}" + (f"\n×{ratio:.2f}" if ratio else ""), (x, value),
                        ha="center", va="bottom", fontsize=7)
    labels = [w.split(",")[0].replace(": ", ":\n") for w in workloads]
    ax.set_xticks(list(range(len(workloads))), labels, fontsize=7)
    ax.set_ylim(0, top * 1.35)
    ax.set_ylabel("decode tokens / s (engine)")
    ax.legend(fontsize=8, loc="upper right", title="speculative", title_fontsize=8)
    s = data["settings"]
    ax.set_title(f"Speculative decoding by prompt lookup, {s['rounds']} rounds\n(×: ratio to off; edits greedy, "
                 "prose sampled)", fontsize=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=benchlib.ROOT / "docs" / "benchmarks.png")
    draw(parser.parse_args().out.resolve())


if __name__ == "__main__":
    main()
