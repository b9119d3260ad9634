"""The audit on a real dvc.lock: same class, edits, other classes, CUDA, re-pinning, crashes."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from segrepro.audit.audit import run_audit
from segrepro.audit.pins import load_pins, update_pins
from segrepro.errors import SegreproError
from segrepro.layout import method_of
from tests.audit.conftest import KEYS, OTHER_CLASS, RUN_CLASS, RUN_ENV, pin_other_class, pin_this_run

EDITED = "edited after its stage ran; rerun `dvc repro`"


def audit(ws: Path, pins: Path, keys: list[str] = KEYS) -> tuple[int, dict, list[dict]]:
    code, _ = run_audit(pins, ws / "results" / "metrics", ws / "dvc.lock", keys,
                        ws / "reports" / "audit.json", ws / "reports" / "audit.md")
    report = json.loads((ws / "reports" / "audit.json").read_text())
    return code, report, report["checks"]


def rows(checks: list[dict], **match) -> list[dict]:
    return [c for c in checks if all(c[k] == v for k, v in match.items())]


def test_same_class_passes_and_names_the_class(ws):
    code, report, checks = audit(ws, pin_this_run(ws))
    assert code == 0 and report["passed"]
    assert {c["status"] for c in checks} == {"pass"}
    assert len(rows(checks, check="checkpoint md5")) == 4
    assert len(rows(checks, subject="results/comparison.json")) == 1
    assert report["result_classes"][RUN_CLASS]["source"] == ["train_environment"]
    md = (ws / "reports" / "audit.md").read_text()
    assert "**PASS**" in md and f"class **{RUN_CLASS}**" in md and "same class" in md


def test_metric_edited_below_the_old_tolerance_is_caught(ws):
    pins = pin_this_run(ws)
    path = ws / "results" / "metrics" / "baseline-0.json"
    result = json.loads(path.read_text())
    result["miou"] += 0.009
    path.write_text(json.dumps(result, indent=2, sort_keys=True))
    code, report, checks = audit(ws, pins)
    assert code == 1 and not report["passed"]
    (edit,) = rows(checks, subject="results/metrics/baseline-0.json")
    assert edit["status"] == "drift" and EDITED in edit["note"]
    assert rows(checks, subject="baseline-0", check="miou")[0]["status"] == "drift"
    assert "FAIL" in (ws / "reports" / "audit.md").read_text()


def test_comparison_edit_is_caught(ws):
    pins = pin_this_run(ws)
    path = ws / "results" / "comparison.json"
    path.write_text(path.read_text().replace("0.286", "0.296"))
    code, _, checks = audit(ws, pins)
    (edit,) = rows(checks, subject="results/comparison.json")
    assert code == 1 and edit["status"] == "drift" and EDITED in edit["note"]
    assert [c["subject"] for c in checks if c["status"] != "pass"] == ["results/comparison.json"]


def test_per_image_edit_is_caught(ws):
    pins = pin_this_run(ws)
    path = ws / "results" / "per_image" / "sdn-1.npz"
    with zipfile.ZipFile(path, "w") as npz:
        npz.writestr("miou.txt", json.dumps([0.9] * 3))
    code, _, checks = audit(ws, pins)
    (edit,) = rows(checks, subject="results/per_image/sdn-1.npz")
    assert code == 1 and edit["status"] == "drift" and edit["note"] == f"results/per_image/sdn-1.npz {EDITED}"


def test_a_missing_result_fails(ws):
    pins = pin_this_run(ws)
    (ws / "results" / "metrics" / "sdn-0.json").unlink()
    code, _, checks = audit(ws, pins)
    assert code == 1
    assert rows(checks, subject="results/metrics/sdn-0.json")[0]["status"] == "missing"
    assert rows(checks, subject="sdn-0", check="result")[0]["status"] == "missing"


def test_a_run_of_fewer_seeds_than_pinned_passes(ws):
    pins = pin_this_run(ws)                          # seeds 0 and 1 pinned, for the seed spread
    code, _, checks = audit(ws, pins, keys=["baseline-0", "sdn-0"])
    assert code == 0
    assert [c["subject"] for c in checks if c["status"] == "skip"] == ["baseline-1", "sdn-1"]


def _unpin(pins: Path, keys: list[str] = (), methods: list[str] = ()) -> Path:
    """Remove runs (and whole methods) from the run's own class in a pins file."""
    data = yaml.safe_load(pins.read_text())
    section = data["classes"][RUN_CLASS]
    for key in [*keys, *(k for k in section["results"] if method_of(k) in methods)]:
        del section["results"][key]
    for method in methods:
        del section["summary"][method]
    pins.write_text(yaml.safe_dump(data))
    return pins


def test_a_seed_its_class_does_not_pin_takes_the_band(ws):
    # e.g. seed 2 of `dvc exp run -S 'base.seeds=[0,1,2]'` where the pins hold seeds 0 and 1
    pins = _unpin(pin_this_run(ws), keys=["baseline-1", "sdn-1"])
    code, report, checks = audit(ws, pins)
    assert code == 0 and report["passed"]
    assert [c["status"] for c in rows(checks, check="checkpoint md5", subject="baseline-0")] == ["pass"]
    (skipped,) = rows(checks, check="checkpoint md5", subject="baseline-1")
    assert skipped["status"] == "skip" and f"a seed not pinned in {RUN_CLASS}" in skipped["note"]
    (band,) = rows(checks, subject="sdn", check="miou (mean of 1 seed(s))")
    assert band["status"] == "pass" and f"({RUN_CLASS})" in band["pinned"]
    described = report["result_classes"][RUN_CLASS]["check"]
    assert "same class" in described and "statistical band" in described
    # Held to its own class's pins, not to whichever class lies closest: sdn's own pinned mean moves
    # 5 points up while another class pins the run's own values.
    own = yaml.safe_load(pins.read_text())
    data = yaml.safe_load(pin_other_class(ws, {"baseline": 0.0, "sdn": 0.0}).read_text())
    data["classes"][RUN_CLASS] = own["classes"][RUN_CLASS]
    summary = data["classes"][RUN_CLASS]["summary"]["sdn"]
    summary["mean"] = {m: v + 0.05 for m, v in summary["mean"].items()}
    pins.write_text(yaml.safe_dump(data))
    code, _, checks = audit(ws, pins)
    assert code == 1
    assert rows(checks, subject="sdn", check="miou (mean of 1 seed(s))")[0]["status"] == "drift"
    assert rows(checks, subject="baseline", check="miou (mean of 1 seed(s))")[0]["status"] == "pass"
    assert {c["status"] for c in rows(checks, subject="sdn-0")} == {"pass"}   # still bit-checked


def test_a_method_no_class_pins_is_missing(ws):
    # e.g. an ablation variant: nothing to compare it with
    code, report, checks = audit(ws, _unpin(pin_this_run(ws), methods=["sdn"]))
    assert code == 1 and not report["passed"]
    (missing,) = rows(checks, subject="sdn", check="pin")
    assert missing["status"] == "missing" and "no pinned class has this method" in missing["pinned"]
    assert {c["status"] for c in rows(checks, subject="baseline-0")} == {"pass"}


def test_cross_class_run_one_point_off_passes(ws):
    pins = pin_other_class(ws, {"baseline": 0.01, "sdn": -0.01})
    code, report, checks = audit(ws, pins)
    hashes = rows(checks, check="checkpoint md5")
    assert {c["status"] for c in hashes} == {"skip"}
    assert all(f"no pins for class {RUN_CLASS}" in c["note"] for c in hashes)
    bands = rows(checks, subject="baseline", check="miou (mean of 2 seed(s))")
    # 3 · 0.008 · sqrt(1/2 + 1/3) = 0.0219 > the 0.01 shift
    assert bands[0]["status"] == "pass" and f"± 0.0219 ({OTHER_CLASS})" in bands[0]["pinned"]
    assert code == 0 and report["passed"]
    assert "statistical band" in report["result_classes"][RUN_CLASS]["check"]


def test_cross_class_regression_of_five_points_fails(ws):
    pins = pin_other_class(ws, {"baseline": 0.01, "sdn": 0.05})   # sdn's run is 5 points below its pins
    code, _, checks = audit(ws, pins)
    assert code == 1
    failed = {(c["subject"], c["check"].split(" ")[0]) for c in checks if c["status"] != "pass"
              and c["status"] != "skip"}
    assert ("sdn", "miou") in failed and not any(subject == "baseline" for subject, _ in failed)


def test_another_cpu_model_of_the_same_capability_uses_the_band(ws):
    # Measured: an Intel Xeon and an AMD EPYC Zen 4, both AVX512, train SDN to different bits.
    intel_avx2 = {**RUN_ENV, "cpu_model": "Intel(R) Xeon(R) Processor"}
    pins = pin_other_class(ws, {"baseline": 0.01, "sdn": -0.01}, environment=intel_avx2)
    assert set(yaml.safe_load(pins.read_text())["classes"]) == {"cpu-AVX2-Intel(R) Xeon(R) Processor"}
    code, _, checks = audit(ws, pins)
    hashes = rows(checks, check="checkpoint md5")
    assert len(hashes) == 4 and all(c["status"] == "skip" and f"no pins for class {RUN_CLASS}" in c["note"]
                                    for c in hashes)
    assert code == 0
    regressed = pin_other_class(ws, {"baseline": 0.0, "sdn": 0.05}, environment=intel_avx2)
    code, _, checks = audit(ws, regressed)
    assert code == 1 and rows(checks, subject="sdn", check="miou (mean of 2 seed(s))")[0]["status"] == "drift"


def test_torch_version_change_uses_the_band(ws):
    pins = pin_this_run(ws)
    data = yaml.safe_load(pins.read_text())
    data["classes"][RUN_CLASS]["environment"]["torch"] = "2.12.0+cpu"
    pins.write_text(yaml.safe_dump(data))
    code, _, checks = audit(ws, pins)
    assert code == 0
    assert all("torch 2.13.0+cpu differs" in c["note"] for c in rows(checks, check="checkpoint md5"))
    # two seeds per method on each side: s = 0.0057 pooled, band 3·s·√(1/2 + 1/2) = 0.0170
    band = rows(checks, subject="sdn", check="miou (mean of 2 seed(s))")[0]
    assert f"± 0.0170 ({RUN_CLASS})" in band["pinned"] and "pooled over methods (2 dof)" in band["note"]


def _as_gpu_run(ws: Path) -> None:
    """Results as a GPU evaluate would write them, recorded in dvc.lock as DVC would (md5 of bytes)."""
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    for key in KEYS:
        path = ws / "results" / "metrics" / f"{key}.json"
        result = json.loads(path.read_text())
        result["train_environment"].update(device="cuda", gpu="NVIDIA H100 80GB HBM3", cuda="12.8")
        path.write_text(json.dumps(result, sort_keys=True))
        for out in lock["stages"][f"evaluate@{key}"]["outs"]:
            if out["path"] == f"results/metrics/{key}.json":
                out["md5"], out["size"] = hashlib.md5(path.read_bytes()).hexdigest(), path.stat().st_size
    (ws / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def test_cuda_pins_never_compare_hashes(ws):
    _as_gpu_run(ws)
    pins = pin_this_run(ws, ws / "pins-gpu.yaml")
    data = yaml.safe_load(pins.read_text())
    assert list(data["classes"]) == ["cuda-NVIDIA H100 80GB HBM3"]
    for result in data["classes"]["cuda-NVIDIA H100 80GB HBM3"]["results"].values():
        result["checkpoint"]["md5"] = "0" * 32     # another GPU run: other checkpoint bits
    pins.write_text(yaml.safe_dump(data))
    code, _, checks = audit(ws, pins)
    hashes = rows(checks, check="checkpoint md5")
    assert len(hashes) == 4 and all(c["status"] == "skip" and "not bit-exact" in c["note"] for c in hashes)
    assert code == 0 and rows(checks, subject="baseline", check="miou (mean of 2 seed(s))")[0]["status"] == "pass"


def test_update_rewrites_only_its_class_and_records_mean_and_std(ws):
    pins = pin_other_class(ws, {"baseline": 0.01, "sdn": 0.0})
    other = yaml.safe_load(pins.read_text())["classes"][OTHER_CLASS]
    diff = update_pins(pins, ws / "results" / "metrics", ws / "dvc.lock", KEYS)
    new = load_pins(pins)
    assert new["classes"][OTHER_CLASS] == other
    summary = new["classes"][RUN_CLASS]["summary"]["baseline"]
    assert summary["seeds"] == 2 and summary["mean"]["miou"] == pytest.approx(0.31)
    assert summary["std"]["miou"] == pytest.approx(0.008 / 2 ** 0.5, abs=1e-6)   # ±0.004 around the mean
    assert f"+  {RUN_CLASS}:" in diff and f"-  {OTHER_CLASS}:" not in diff


def test_update_refuses_edited_outputs(ws):
    (ws / "results" / "comparison.json").write_text("{}")
    with pytest.raises(SegreproError, match="cannot pin: results/comparison.json: .*edited"):
        pin_this_run(ws)


def test_update_with_outputs_missing_names_them_once(ws):
    import shutil

    shutil.rmtree(ws / "results" / "per_image")
    with pytest.raises(SegreproError) as caught:
        pin_this_run(ws)
    said = str(caught.value)
    # Every per-image file is missing: one phrase counts them and names three, the note appears once.
    n = len(KEYS)
    first = ", ".join(f"results/per_image/{k}.npz" for k in sorted(KEYS)[:3])
    assert said.startswith(f"cannot pin: {n} outputs ({first}") and said.count("missing from the workspace") == 1
    assert "\n" not in said


def test_crash_replaces_a_previous_pass_report(ws):
    pins = pin_this_run(ws)
    assert audit(ws, pins)[0] == 0
    pins.write_text("classes: [not, a, mapping]\n")
    with pytest.raises(SegreproError, match="no 'classes' mapping"):
        audit(ws, pins)
    assert "FAILED" in (ws / "reports" / "audit.md").read_text()
    assert json.loads((ws / "reports" / "audit.json").read_text())["passed"] is False


def test_the_cli_entry_runs_the_audit(ws):
    from segrepro.cli import main

    args = ["audit", "--params", str(ws / "params.yaml"), "--pins", str(ws / "pins.yaml"),
            "--metrics", str(ws / "results" / "metrics"), "--lock", str(ws / "dvc.lock"),
            "--out-json", str(ws / "a.json"), "--out-md", str(ws / "a.md")]
    assert main(args + ["--update"]) == 0
    assert main(args) == 0 and "**PASS**" in (ws / "a.md").read_text()
    (ws / "results" / "comparison.json").write_text("{}")
    assert main(args) == 1 and "FAIL" in (ws / "a.md").read_text()


@pytest.mark.parametrize("out, said", [
    ("dir", "it is a directory; pass a file path"),
    ("file/audit.md", "is a file, not a directory"),
    ("pins.yaml", "is also the stage's --pins"),
])
def test_a_bad_output_path_is_one_line_before_the_audit(ws, capsys, out, said):
    from segrepro.cli import main

    (ws / "dir").mkdir()
    (ws / "file").write_text("x")
    pins = ws / "pins.yaml"
    pins.write_text("classes: {}\n")
    before = pins.read_bytes()
    args = ["audit", "--params", str(ws / "params.yaml"), "--pins", str(pins),
            "--metrics", str(ws / "results" / "metrics"), "--lock", str(ws / "dvc.lock"),
            "--out-json", str(ws / "a.json"), "--out-md", str(ws / out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segrepro audit: error: ") and said in err[0], err
    # Nothing ran: no report, the pins untouched.
    assert not (ws / "a.json").exists() and pins.read_bytes() == before


def test_a_data_hash_other_than_the_pinned_one_fails(ws):
    pins = pin_this_run(ws)
    data = yaml.safe_load(pins.read_text())
    data["data"]["md5"] = "0" * 32 + ".dir"           # pinned from other processed data
    pins.write_text(yaml.safe_dump(data))
    code, report, checks = audit(ws, pins)
    assert code == 1 and not report["passed"]
    (row,) = rows(checks, subject="data")
    assert row["status"] == "drift" and row["pinned"] == "0" * 32 + ".dir"
    assert row["note"] == "processed data changed; rerun preprocess or re-pin"
    assert [c["subject"] for c in checks if c["status"] != "pass"] == ["data"]


def test_a_same_class_checkpoint_other_than_the_pinned_one_fails(ws):
    pins = pin_this_run(ws)
    data = yaml.safe_load(pins.read_text())
    data["classes"][RUN_CLASS]["results"]["sdn-1"]["checkpoint"]["md5"] = "0" * 32
    pins.write_text(yaml.safe_dump(data))
    code, _, checks = audit(ws, pins)
    assert code == 1
    (row,) = rows(checks, subject="sdn-1", check="checkpoint md5")
    assert row["status"] == "drift" and row["pinned"] == "0" * 32
    assert "training changed" in row["note"]
    assert [c["subject"] for c in checks if c["status"] != "pass"] == ["sdn-1"]   # metrics still equal


def test_the_band_uses_the_closest_of_several_pinned_classes(ws):
    intel_avx2 = {**RUN_ENV, "cpu_model": "Intel(R) Xeon(R) Processor"}
    near = yaml.safe_load(pin_other_class(ws, {"baseline": 0.005, "sdn": 0.005}, environment=intel_avx2)
                          .read_text())
    far = yaml.safe_load(pin_other_class(ws, {"baseline": 0.06, "sdn": 0.06}).read_text())   # AVX512
    near["classes"].update(far["classes"])
    pins = ws / "pins.yaml"
    pins.write_text(yaml.safe_dump(near))
    code, _, checks = audit(ws, pins)
    assert code == 0
    for method in ("baseline", "sdn"):
        (band,) = rows(checks, subject=method, check="miou (mean of 2 seed(s))")
        assert band["status"] == "pass" and band["pinned"].endswith("(cpu-AVX2-Intel(R) Xeon(R) Processor)")
        assert OTHER_CLASS not in band["pinned"]


def _set_params(ws: Path, **changes) -> None:
    """Edit params.yaml (dotted key → value) without rerunning anything."""
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    (ws / "params.yaml").write_text(yaml.safe_dump(params))


def test_params_changed_without_rerunning_are_stale(ws):
    pins = pin_this_run(ws)
    _set_params(ws, **{"train.epochs": 2, "model.sdn.lam": 2.0})
    code, report, checks = audit(ws, pins)
    assert code == 1 and not report["passed"]
    stale = {c["subject"]: c for c in checks if c["status"] == "stale"}
    assert sorted(stale) == ["compare", "train@baseline-0", "train@baseline-1", "train@sdn-0", "train@sdn-1"]
    assert stale["train@baseline-0"]["note"] == ("params.yaml changed since train@baseline-0 ran (train.epochs); "
                                                 "its outputs are from the old values: rerun `dvc repro`")
    assert stale["train@sdn-1"]["observed"] == "model.sdn.lam=2.0, train.epochs=2"
    assert stale["train@sdn-1"]["pinned"] == "model.sdn.lam=1.0, train.epochs=1"
    assert "(model.sdn.lam)" in stale["compare"]["note"]
    assert stale["compare"]["check"] == "params = dvc.lock (params.yaml)"
    assert {c["status"] for c in checks if c not in stale.values()} == {"pass"}   # outputs are unedited
    assert "FAIL: 5 check(s) drifted, missing or stale" in (ws / "reports" / "audit.md").read_text()
    with pytest.raises(SegreproError, match=r"cannot pin: train@baseline-0: params.yaml changed since "
                                            r"train@baseline-0 ran \(train.epochs\)"):
        pin_this_run(ws, ws / "new-pins.yaml")


def test_a_method_list_cut_without_rerunning_makes_the_comparison_stale(ws):
    pins = pin_this_run(ws)
    _set_params(ws, **{"base.methods": ["baseline"]})
    code, _, checks = audit(ws, pins, keys=["baseline-0", "baseline-1"])
    assert code == 1
    (stale,) = [c for c in checks if c["status"] == "stale"]
    assert stale["subject"] == "compare" and "(base.methods)" in stale["note"]
    assert stale["observed"] == 'base.methods=["baseline"]' and stale["pinned"] == 'base.methods=["baseline","sdn"]'


def test_a_missing_params_file_fails_the_stages_that_read_it(ws):
    pins = pin_this_run(ws)
    (ws / "params.yaml").unlink()
    code, _, checks = audit(ws, pins)
    failed = [c for c in checks if c["status"] != "pass"]
    assert code == 1 and len(failed) == 1 + 4 + 4 + 1 and {c["status"] for c in failed} == {"missing"}
    assert "params.yaml, whose values preprocess ran with, is missing" in failed[0]["note"]
