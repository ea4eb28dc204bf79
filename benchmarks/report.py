"""The results as a Markdown table."""

from __future__ import annotations

from .cases import Result


def table(results: list[Result]) -> str:
    lines = [
        "| case | app p50 | app p95 | raw p50 | raw p95 | naive / plain p50 | app/raw | "
        "SQL stmts | goal | met | checked |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:

        def cell(variant: str, q: float) -> str:
            return f"{r.p(variant, q):.2f} ms" if r.samples.get(variant) else "–"

        other = "naive" if "naive" in r.samples else "plain"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else (
            f"{r.rate:,.0f}/s" if r.rate is not None else "–")  # fmt: skip
        met = {None: "–", True: "met", False: "NOT MET"}[r.met]
        lines.append(
            f"| {r.case} | {cell('app', 0.5)} | {cell('app', 0.95)} | {cell('raw', 0.5)} | "
            f"{cell('raw', 0.95)} | {cell(other, 0.5)} | {ratio} | "
            f"{r.statements if r.statements is not None else '–'} | {r.goal or '–'} | {met} | "
            f"{r.checked or r.note or '–'} |"
        )
    return "\n".join(lines)
