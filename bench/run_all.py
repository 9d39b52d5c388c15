"""Run every benchmark, one after another, and sum them up in one table.

What: decode_speed (with the app's threads, then with every core), llama_bench, speculative,
ui_drain, prompt_reuse, startup_memory and long_chat (3 runs), each in its own process and
never two at once (on 2 cores a second benchmark would only measure the first). llama_bench
skips itself with a message when llama-bench cannot be built. Then one table of the headline
figures against their targets, bench/results/latest.json (the figures and a description of
the machine), and the chart docs/benchmarks.png.
--update-docs also rewrites the results block of docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--skip NAME ...] [--update-docs]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from contextlib import redirect_stdout

import benchlib

SCRIPTS = ["decode_speed", "decode_speed_all_cores", "llama_bench", "speculative", "ui_drain", "prompt_reuse",
           "startup_memory", "long_chat"]


def command(name: str) -> list[str]:
    """decode_speed runs twice: with the app's default threads (cores - 1), the headline,
    and with every core, where llama.cpp's threads and the UI compete for the cores."""
    from llama_tui.engine.settings import available_cores

    if name == "decode_speed_all_cores":
        return ["decode_speed.py", "--threads", str(available_cores()), "--out", name]
    if name == "long_chat":
        return ["long_chat.py", "--runs", "3"]
    return [f"{name}.py"]
DOCS = benchlib.ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin (bench/run_all.py --update-docs) -->", "<!-- results:end -->"


def load(name: str) -> dict | None:
    path = benchlib.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def check(value: float | None, ok: bool | None) -> str:
    return "–" if value is None or ok is None else ("yes" if ok else "**no**")


def headline_rows(results: dict[str, dict | None]) -> list[list[str]]:
    f = benchlib.fmt
    rows: list[list[str]] = []
    if d := results["decode_speed"]:
        s = d["summary"]
        for name in ("binding", "engine", "app"):
            rows.append(["decode", f"{name} tok/s: median / best",
                         f"{f(s[name]['tok_s'])} / {f(s[name]['best_tok_s'])}", "", ""])
            if name != "binding":
                rows.append(["decode", f"{name} Python overhead per token (ms)", f(s[name]["overhead_ms_per_token"], 2),
                             "", ""])
        for name, target in (("engine", None), ("app", 0.97)):
            for kind, key in (("median of rounds", "ratio_to_binding"), ("ratio of bests", "best_ratio_to_binding")):
                ratio = s[name][key]
                rows.append(["decode", f"{name}/binding, {kind}", f(ratio, 3), f">= {target}" if target else "",
                             check(ratio, ratio >= target if target and ratio else None)])
        if d.get("machine_busy"):
            rows.append(["decode", "machine busy during the run (binding runs differ > 1.25x)", "yes", "", ""])
        ui = d.get("app_ui", {}).get("app")
        if ui:
            rows.append(["decode", "app UI thread CPU while streaming", f"{ui['core_share']:.0%} of a core", "", ""])
        rows.insert(0, ["decode", "llama.cpp threads (the app's default: cores - 1)", str(d["settings"]["threads"]),
                        "", ""])
    if a := results.get("decode_speed_all_cores"):
        s = a["summary"]
        rows.append(["decode, all cores", "llama.cpp threads", str(a["settings"]["threads"]), "", ""])
        rows.append(["decode, all cores", "binding / engine / app tok/s (median)",
                     " / ".join(f(s[name]["tok_s"]) for name in ("binding", "engine", "app")), "", ""])
        ratio = s["app"]["ratio_to_binding"]
        rows.append(["decode, all cores", "app/binding, median of rounds", f(ratio, 3), ">= 0.97",
                     check(ratio, ratio >= 0.97 if ratio else None)])
    if (lb := results.get("llama_bench")) and "summary" in lb:
        s = lb["summary"]
        rows.append(["llama-bench", f"llama.cpp's own tok/s, {lb['settings']['threads']} threads, flash attention off "
                     "like the app: median / best",
                     f"{f(s['llama-bench']['tok_s'])} / {f(s['llama-bench']['best_tok_s'])}", "", ""])
        auto = s["llama-bench, flash attention auto"]
        rows.append(["llama-bench", "the same with llama-bench's default flash attention (auto)",
                     f"{f(auto['tok_s'])} / {f(auto['best_tok_s'])}", "", ""])
        rows.append(["llama-bench", "binding / app over llama-bench, median of rounds",
                     f"{f(s['binding']['ratio_to_llama_bench'], 3)} / {f(s['app']['ratio_to_llama_bench'], 3)}",
                     "app >= 0.95", check(s["app"]["ratio_to_llama_bench"], s["app"]["ratio_to_llama_bench"] >= 0.95)])
        rows.append(["llama-bench", "binding / app over llama-bench, ratio of bests",
                     f"{f(s['binding']['best_ratio_to_llama_bench'], 3)} / "
                     f"{f(s['app']['best_ratio_to_llama_bench'], 3)}",
                     "app >= 0.95",
                     check(s["app"]["best_ratio_to_llama_bench"], s["app"]["best_ratio_to_llama_bench"] >= 0.95)])
    if (sp := results.get("speculative")) and "ratios" in sp:
        rows.extend(speculative_rows(sp))
    if u := results["ui_drain"]:
        s = u["summary"]
        rows.append(["UI drain", "lag Finished → on screen, max (ms)", f(s["lag_ms_max"], 0), "< 100",
                     check(s["lag_ms_max"], s["lag_ms_max"] < 100)])
        rows.append(["UI drain", "key → handled p50 / p95 (ms)", f"{f(s['key_ms_p50'])} / {f(s['key_ms_p95'])}",
                     "p95 < 50", check(s["key_ms_p95"], s["key_ms_p95"] < 50 if s["key_ms_p95"] else None)])
        rows.append(["UI drain", "key → next frame p50 / p95 (ms)",
                     f"{f(s['key_to_frame_ms_p50'])} / {f(s['key_to_frame_ms_p95'])}", "", ""])
        if "ui_ms_per_drain_first_fifth" in s:
            rows.append(["UI drain", "UI CPU per drain, early / late in the reply (ms)",
                         f"{f(s['ui_ms_per_drain_first_fifth'])} / {f(s['ui_ms_per_drain_last_fifth'])}", "", ""])
        rows.append(["UI drain", "tiny model through the app (tok/s)", f(s["tok_s"], 0), "", ""])
    if p := results["prompt_reuse"]:
        s = p["summary"]
        rows.append(["prompt reuse", "TTFT turn 1, best of passes (ms)", f(s["first_turn_ttft_ms"], 0), "", ""])
        rows.append(["prompt reuse", f"TTFT turns 2-{len(p['turns'])}, best per turn: median / max (ms)",
                     f"{f(s['later_ttft_ms_median'], 0)} / {f(s['later_ttft_ms_max'], 0)}", "flat", ""])
        growth = s["ttft_growth_second_half_vs_first"]
        rows.append(["prompt reuse", "TTFT 2nd half / 1st half of the chat", f(growth, 2), "≈ 1 (flat)",
                     check(growth, growth < 1.25 if growth else None)])
        rows.append(["prompt reuse", "most tokens evaluated in a later turn",
                     f"{s['later_evaluated_max']} of {s['last_prompt_tokens']}", "", ""])
    if m := results["startup_memory"]:
        rows.append(["start-up", "to first frame, no model (ms)", f(m["startup"]["first_frame_seconds"] * 1000, 0),
                     "", ""])
        for label, r in m["load"].items():
            rows.append(["load", f"{label}: binding / in app worker / app start → ready (ms)",
                         f"{r['binding'] * 1000:.0f} / {r['app_worker'] * 1000:.0f} / {r['app'] * 1000:.0f}", "", ""])
        mem = m["memory"]
        rows.append(["memory", "VmRSS after close: first / last / after malloc_trim (MiB)",
                     f"{mem['after_first_close_mib']:.0f} / {mem['after_last_close_mib']:.0f} / "
                     f"{f(mem.get('after_malloc_trim_mib'), 0)}", "", ""])
        per_swap = mem.get("growth_per_swap_after_first_starter_mib")
        rows.append(["memory", f"VmRSS growth per swap, as the app runs ({m['settings']['swaps']} swaps, MiB)",
                     f(per_swap, 2), "", ""])
        trimmed = mem.get("after_malloc_trim_mib")
        if trimmed is not None:
            kept = trimmed - mem["after_first_close_mib"]
            rows.append(["memory", "kept after all swaps and malloc_trim, vs after the first close (MiB)",
                         f"{kept:+.0f}", "≈ 0 (< 10)", check(kept, kept < 10)])
    if (lc := results.get("long_chat")) and "summary" in lc:
        s = lc["summary"]
        lengths = sorted(int(n) for n in s if n.isdigit() and n != "0")
        longest, shortest = s[str(lengths[-1])], s[str(lengths[0])]
        rows.append(["long chat", f"open {lengths[-1]} messages from the history: last screen / window mounted (ms)",
                     f"{f(longest['open_ms'], 0)} / {f(longest.get('window_ms'), 0)}", "< 300",
                     check(longest["open_ms"], longest["open_ms"] < 300 if longest["open_ms"] else None)])
        rows.append(["long chat", "open " + " / ".join(str(n) for n in lengths) + " messages (ms)",
                     " / ".join(f(s[str(n)]["open_ms"], 0) for n in lengths), "", ""])
        for label, figures in ((f"{lengths[-1]} messages open", longest), ("new chat", s["0"]),
                               (f"{lengths[-1]} messages, as they are mounted", s.get("keys_opening"))):
            if figures:
                p95 = figures["key_painted_p95"]
                rows.append(["long chat", f"typed key → frame p50 / p95, {label} (ms)",
                             f"{f(figures['key_painted_p50'])} / {f(p95)}", "p95 < 50",
                             check(p95, p95 < 50 if p95 else None)])
        p95 = longest["scroll_key_p95"]
        rows.append(["long chat", f"page up/down key → frame p50 / p95, {lengths[-1]} messages (ms)",
                     f"{f(longest['scroll_key_p50'])} / {f(p95)}", "p95 < 50", check(p95, p95 < 50 if p95 else None)])
        rows.append(["long chat", f"streaming frame CPU p50, {lengths[0]} / {lengths[-1]} messages (ms)",
                     f"{f(shortest['stream_frame_cpu_p50'])} / {f(longest['stream_frame_cpu_p50'])}", "flat", ""])
    return rows


def speculative_rows(sp: dict) -> list[list[str]]:
    f = benchlib.fmt
    rows: list[list[str]] = []
    costs = sp["costs"]
    batch = costs["batch"]
    rows.append(["speculative", "llama_decode of 4 / 8 / 16 tokens, all logits, x one token",
                 " / ".join(f"{batch[n]['x_single']:.2f}" for n in ("4", "8", "16") if n in batch), "", ""])
    rows.append(["speculative", "choosing a token: llama.cpp greedy chain / default chain / numpy argmax (ms)",
                 " / ".join(f"{v:.3f}" for v in costs["sampling_ms"].values()), "", ""])
    summary, ratios = sp["summary"], sp["ratios"]
    for key, r in ratios.items():
        name, variant = key.split(" | ")
        if not variant.endswith(("on", "auto")):
            continue
        ratio = r["tok_s_ratio"]
        target = 1.8 if name.startswith("edit") else 0.97
        same = r["same_text"]
        same_text = ""
        if name.startswith("edit"):
            same_text = "same text" if all(same) else f"same text in {sum(same)} of {len(same)}"
        base = summary[f"{name} | {variant.split(' ')[0]} off"]["tok_s"]["median"]
        rows.append(["speculative",
                     f"{name}, {variant} vs off: tok/s; x (range){'; ' + same_text if same_text else ''}",
                     (f"{f(summary[key]['tok_s']['median'])} vs {f(base)}; x{f(ratio['median'], 2)} "
                      f"({f(ratio['min'], 2)}-{f(ratio['max'], 2)}; bests x{f(r.get('best_ratio'), 2)})"),
                     f">= {target}", check(ratio["median"], ratio["median"] >= target if ratio["median"] else None)])
    if "same prompt, engine | before" in summary:
        before, after = summary["same prompt, engine | before"], summary["same prompt, engine | after"]
        over = after["overhead_ms_per_token"]["median"]
        rows.append(["speculative",
                     f"engine overhead per token, off, before ({sp['settings']['before']}) -> after (ms)",
                     f"{f(before['overhead_ms_per_token']['median'], 2)} -> {f(over, 2)}", "<= 0.3",
                     check(over, over <= 0.3 if over is not None else None)])
        prompt = ratios["same prompt, engine | after"]["prompt_tok_s_ratio"]["median"]
        rows.append(["speculative", "prompt tok/s after / before (median of rounds)", f(prompt, 2), "≈ 1", ""])
    return rows


def table_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        benchlib.print_table(["benchmark", "figure", "value", "target", "met"], rows)
    return out.getvalue()


def update_docs(text: str) -> None:
    doc = DOCS.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{DOCS.relative_to(benchlib.ROOT)} has no results block: not updated")
        return
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(head + BEGIN + "\n" + text + END + tail)
    print(f"updated {DOCS.relative_to(benchlib.ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=SCRIPTS, help="use these scripts' last results")
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()

    for name in SCRIPTS:
        if name in args.skip:
            continue
        print(f"\n===== {name} =====", flush=True)
        script, *arguments = command(name)
        subprocess.run([sys.executable, str(benchlib.ROOT / "bench" / script), *arguments], check=True)

    results = {name: load(name) for name in SCRIPTS}
    machine = benchlib.machine()
    text = table_text(headline_rows(results))
    m = machine
    machine_line = (f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; {m['os']}; Python {m['python']}; "
                    + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))  # type: ignore[union-attr]
    print("\n===== summary =====\n" + machine_line + "\n")
    print(text)
    out = benchlib.write_results("latest", {"results": results})
    print(f"results: {out.relative_to(benchlib.ROOT)}")

    import chart

    chart.draw(benchlib.ROOT / "docs" / "benchmarks.png")
    if args.update_docs:
        measured = sorted(r["machine"]["time"] for r in results.values() if r)
        when = f"{measured[0]} to {measured[-1]}" if measured else m["time"]
        update_docs(f"Machine: {machine_line}. Measured {when}.\n\n{text}")


if __name__ == "__main__":
    main()
