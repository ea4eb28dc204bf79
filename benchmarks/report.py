"""The results as a Markdown table."""

from __future__ import annotations

from .cases import Result


def _cell(result: Result, variant: str, q: float) -> str:
    return f"{result.p(variant, q):.2f} ms" if result.samples.get(variant) else "-"


def table(results: list[Result]) -> str:
    lines = [
        "| case | app p50 | app p95 | raw p50 | raw p95 | naive / plain p50 | app/raw | "
        "SQL stmts | goal | met | checked |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        other = "naive" if "naive" in r.samples else "plain"
        if r.ratio is not None:
            ratio = f"{r.ratio:.2f}x"
        elif r.share is not None:
            ratio = f"{r.share:.2f} of plain"
        else:
            ratio = f"{r.rate:,.0f}/s" if r.rate is not None else "-"
        met = {None: "-", True: "met", False: "NOT MET"}[r.met]
        lines.append(
            f"| {r.case} | {_cell(r, 'app', 0.5)} | {_cell(r, 'app', 0.95)} | "
            f"{_cell(r, 'raw', 0.5)} | {_cell(r, 'raw', 0.95)} | {_cell(r, other, 0.5)} | "
            f"{ratio} | "
            f"{r.statements if r.statements is not None else '-'} | {r.goal or '-'} | {met} | "
            f"{r.checked or r.note or '-'} |"
        )
    return "\n".join(lines)
