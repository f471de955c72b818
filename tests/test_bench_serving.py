"""The serving benchmark's own machinery: wrk parsing, the Lua rotation, answers, targets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.servebench.load import LoadSettings, parse_wrk, run_wrk, write_script
from benchmarks.servebench.model import FEATURES, N_LEAVES, N_TREES, bench_spec, train_bench_model
from benchmarks.servebench.processes import Server, _group_alive
from benchmarks.servebench.report import target_checks
from benchmarks.servebench.verify import verify_target
from riskops.specs import parse_spec

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:56783/v2/models/bench/infer
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.74ms   22.15ms    1.20s    93.28%
    Req/Sec   525.10    203.26     1.15k    75.51%
  Latency Distribution
     50%  659.00us
     75%    9.56ms
     90%   22.75ms
     99%  135.91ms
  5203 requests in 5.08s, 3.20MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 17
Requests/sec:   1024.47
Transfer/sec:    645.07KB
"""


def test_parse_wrk_reads_rate_percentiles_in_ms_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 5203
    assert result.seconds == pytest.approx(5.08)
    assert result.requests_per_second == pytest.approx(1024.47)
    assert result.p50_ms == pytest.approx(0.659)  # microseconds converted
    assert result.p99_ms == pytest.approx(135.91)
    assert result.max_ms == pytest.approx(1200.0)  # seconds converted
    assert result.non_2xx_3xx == 17
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 3}
    assert result.failed == 22


def test_parse_wrk_without_errors_lines_counts_zero_failures() -> None:
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert parse_wrk(clean).failed == 0


def test_parse_wrk_names_the_missing_line() -> None:
    without_p99 = WRK_OUTPUT.replace("     99%  135.91ms\n", "")
    with pytest.raises(ValueError, match="99% latency"):
        parse_wrk(without_p99)


@pytest.fixture(scope="module")
def model():
    return train_bench_model(seed=3, train_rows=20_000, n_bodies=300)


def test_model_has_the_benchmark_shape_and_cut_offs_at_training_quantiles(model) -> None:
    dump = model.booster.dump_model()
    assert model.booster.num_trees() == N_TREES
    assert model.booster.feature_name() == FEATURES
    leaves = [tree["num_leaves"] for tree in dump["tree_info"]]
    assert max(leaves) == N_LEAVES and min(leaves) > 1
    assert 0 < model.approve_below < model.decline_at_or_above < 1
    shares = model.band_shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    # fresh rows from the training distribution land near 80 / 10 / 10
    assert shares["approve"] == pytest.approx(0.80, abs=0.07)
    assert shares["decline"] == pytest.approx(0.10, abs=0.05)


def test_model_is_reproducible_from_its_seed(model) -> None:
    again = train_bench_model(seed=3, train_rows=20_000, n_bodies=300)
    np.testing.assert_array_equal(again.rows, model.rows)
    np.testing.assert_array_equal(again.expected, model.expected)
    assert again.approve_below == model.approve_below


def test_bench_spec_is_a_valid_riskops_spec(model) -> None:
    spec = parse_spec(bench_spec(model), "bench")
    assert spec.name == "bench" and spec.family == "other" and spec.risk_class == "minimal"
    assert spec.features.numeric == FEATURES and not spec.features.categorical
    assert spec.decision.approve_below == model.approve_below
    assert spec.decision.decline_at_or_above == model.decline_at_or_above
    values = np.abs(model.rows).max()
    assert all(rule.max > values and rule.min < -values for rule in spec.columns.values())


class _Recorder(BaseHTTPRequestHandler):
    """Answers {"predictions": [score]} from the body's "i"; body "i" == 13 gets a 500."""

    seen: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with self.lock:
            self.seen.append((body, self.headers.get("Authorization")))
        index = json.loads(body)["i"]
        status = 500 if index == 13 else 200
        payload = json.dumps({"predictions": [index / 1000]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/score", _Recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(
    shutil.which("wrk") is None and not os.environ.get("CI"),
    reason="wrk not installed (apt-get install wrk; .ci/run installs it, and CI fails without)",
)
def test_wrk_rotates_through_the_bodies_and_counts_errors(recorder, tmp_path: Path) -> None:
    url, handler = recorder
    bodies = [json.dumps({"i": i}) for i in range(40)]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer k3y"}
    script = write_script(tmp_path, "t", bodies, headers)
    settings = LoadSettings(threads=2, connections=2, seconds=1, timeout_seconds=5)
    result, output = run_wrk(url, script, 1, settings)
    sent = [body for body, _auth in handler.seen]
    assert set(sent) <= set(bodies), "wrk sent a body that is not one of ours"
    assert len(set(sent)) == len(bodies), "the rotation did not reach every body"
    assert {auth for _body, auth in handler.seen} == {"Bearer k3y"}
    assert result.requests > 0
    assert result.non_2xx_3xx > 0, output  # body 13 is answered 500 on each turn
    assert result.non_2xx_3xx == pytest.approx(result.requests / len(bodies), rel=0.5, abs=2)


def test_write_script_refuses_multiline_bodies(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single-line"):
        write_script(tmp_path, "bad", ['{"a":\n1}'], {})


def test_verify_counts_errors_and_wrong_scores(recorder) -> None:
    url, _handler = recorder
    bodies = [json.dumps({"i": i}) for i in range(20)]
    expected = np.array([i / 1000 for i in range(20)])
    expected[5] += 1e-6  # the server's answer for body 5 is now wrong
    target = SimpleNamespace(bodies=bodies, headers={}, scores=lambda a: a["predictions"])
    check = verify_target(url, target, expected)
    assert (check.sent, check.ok_status, check.matched) == (20, 19, 18)
    assert not check.passed
    assert "body 5" in check.first_problem
    anywhere = SimpleNamespace(bodies=bodies[:5], headers={}, scores=None)
    assert verify_target(url, anywhere, expected[:5]).passed


def _result(label: str, rate: float, p99: float, failed: int = 0) -> dict:
    return {
        "label": label,
        "requests_per_second": rate,
        "p99_ms": p99,
        "failed": failed,
        "busy_machine": False,
        "verification": {"matched": 10, "sent": 10, "passed": True},
    }


def test_targets_pass_fail_flag_and_not_checked() -> None:
    results = {
        "floor": _result("floor", 10_000, 2),
        "mlserver": _result("mlserver", 1_000, 50),
        "riskops-score": _result("score", 1_600, 4.0),
        "riskops-score-only": _result("score-only", 4_000, 3),
    }
    verdicts = {line["target"]: line["verdict"] for line in target_checks(results)}
    assert verdicts == {
        "score_vs_mlserver": "PASS",
        "score_p99": "PASS",
        "score_only_vs_floor": "FAIL",  # 0.4x the floor
    }
    results["riskops-score"] = _result("score", 1_600, 4.0, failed=3)
    flagged = {line["target"]: line for line in target_checks(results)}
    assert flagged["score_p99"]["verdict"] == "FAIL"
    assert "3 failed requests" in flagged["score_p99"]["text"]
    del results["mlserver"]
    assert {line["target"]: line["verdict"] for line in target_checks(results)}[
        "score_vs_mlserver"
    ] == "NOT CHECKED"


def test_server_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import subprocess, time; "
               "subprocess.Popen(['sleep', '300']); time.sleep(300)"]  # fmt: skip
    with Server("sleeper", command, env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                log=tmp_path / "s.log") as server:  # fmt: skip
        pgid = server.process.pid
        deadline = 50
        while deadline and len(subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                                              text=True).stdout.split()) < 2:  # fmt: skip
            deadline -= 1
            subprocess.run(["sleep", "0.1"])
        assert _group_alive(pgid)
    assert not _group_alive(pgid), "a process of the server's group outlived stop()"
