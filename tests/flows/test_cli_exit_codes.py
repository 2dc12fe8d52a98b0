"""The CLI's contract: a user error is exit 2 and one sentence; anything else is a bug with its
traceback and exit 1; a reader that goes away (`| head`) leaves no traceback behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from flows.cli import EXIT_BROKEN_PIPE, main

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def _tp(script: str) -> subprocess.CompletedProcess:
    """`script` run by a fresh interpreter (real exit code, real stderr) from the repository."""
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_user_error_is_exit_2_and_one_sentence(tiny_store, capsys):
    assert main(["evaluate-baselines", "--store", tiny_store, "--tracks", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0 and "Traceback" not in err
    assert "'nope'" in err and "tp tracks" in err


def test_internal_error_is_exit_1_with_its_traceback(tiny_store, tmp_path):
    # A bug deep in the domain (here: the report builder) must not pass for bad input.
    done = _tp(
        f"""
        import sys
        import tasks.evaluate

        def broken_report(*args, **kwargs):
            raise ValueError("injected bug in build_report")

        tasks.evaluate.build_report = broken_report
        from flows.cli import main
        argv = ["evaluate-baselines", "--store", {tiny_store!r}, "--out", {str(tmp_path)!r}]
        sys.exit(main(argv))
        """
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "broken_report" in done.stderr
    assert "ValueError: injected bug in build_report" in done.stderr
    assert "error: " not in done.stderr.splitlines()[0]


def _info_piped_into(reader: str, store: str) -> tuple[str, str, int]:
    """`tp info --json | READER` in a real shell: (the reader's output, tp's stderr and exit)."""
    tp = f"{PYTHON} -m flows.cli info --json --store '{store}'"
    command = f"{tp} | {reader}; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    return done.stdout, done.stderr, done.returncode


def test_info_json_into_head_leaves_no_broken_pipe_traceback(tiny_store):
    out, err, code = _info_piped_into("head -c 50", tiny_store)
    assert len(out) == 50 and out.startswith("{")
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception" not in err
    assert code in (0, EXIT_BROKEN_PIPE)
    # A reader gone before tp writes a byte: the write itself fails, still quietly.
    out, err, code = _info_piped_into("head -c 0", tiny_store)
    assert out == "" and err == ""
    assert code == EXIT_BROKEN_PIPE


def test_help_imports_no_torch_nor_scipy_optimize():
    # Every command's options come from configs; building them must not pay torch's second.
    done = _tp(
        """
        import sys
        from flows.cli import main
        for command in ("train", "generate", "train-tokenizer", "score", "pipeline"):
            try:
                main([command, "--help"])
            except SystemExit:
                pass
        heavy = sorted({"torch", "scipy.optimize", "einx"} & set(sys.modules))
        print("heavy:", heavy, file=sys.stderr)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stderr, done.stderr
