"""DVC-compatible hashes against a real dvc.lock, the band arithmetic, classes, the pins format."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from segrepro.audit.bands import band, mean_std, pooled_std
from segrepro.audit.dvchash import dvc_md5
from segrepro.audit.environment import class_key, result_environment
from segrepro.audit.lock import read_lock
from segrepro.audit.pins import load_pins, write_section
from segrepro.errors import SegreproError
from tests.audit.conftest import AVX512

REPO = Path(__file__).resolve().parents[2]


def test_every_output_hashes_to_what_dvc_recorded(reproduced):
    stages = read_lock(reproduced / "dvc.lock")
    outs = [out for stage in stages.values() for out in stage.get("outs", [])]
    assert len(outs) == 1 + 4 + 8 + 1
    assert any(out["md5"].endswith(".dir") for out in outs)     # data/processed: nested, non-ASCII, empty file
    for out in outs:
        assert dvc_md5(reproduced / out["path"], reproduced) == out["md5"], out["path"]


def test_directory_hash_honours_dvcignore_and_sees_new_files(ws):
    recorded = read_lock(ws / "dvc.lock")["preprocess"]["outs"][0]["md5"]
    (ws / "data" / "processed" / "scratch.tmp").write_text("ignored")
    (ws / ".dvcignore").write_text("# DVC ignores these\n*.tmp\n")
    assert dvc_md5(ws / "data" / "processed", ws) == recorded
    (ws / "data" / "processed" / "sub" / "extra.npy").write_bytes(b"\0")
    assert dvc_md5(ws / "data" / "processed", ws) != recorded
    assert dvc_md5(ws / "data" / "nothing") is None


def test_band_arithmetic():
    assert mean_std([0.30, 0.32]) == (pytest.approx(0.31), pytest.approx(0.01 * math.sqrt(2)))
    assert mean_std([0.3])[1] is None
    summary = {"a": {"seeds": 3, "std": {"miou": 0.01}}, "b": {"seeds": 2, "std": {"miou": 0.02}},
               "c": {"seeds": 1, "std": {"miou": None}}}
    s, dof = pooled_std(summary, "miou")
    assert dof == 3 and s == pytest.approx(math.sqrt((2 * 0.01 ** 2 + 0.02 ** 2) / 3))
    assert band(0.01, 4, 3, 3, 0.015, 3).width == pytest.approx(3 * 0.01 * math.sqrt(2 / 3))
    assert band(0.001, 4, 3, 3, 0.015, 3).width == 0.015
    floor_only = band(None, 0, 1, 1, 0.015, 3)
    assert floor_only.width == 0.015 and "no seed spread" in floor_only.reason


def test_class_keys_and_the_environment_fallback():
    assert class_key(AVX512) == "cpu-AVX512-Intel(R) Xeon(R) Processor"
    legacy = {k: v for k, v in AVX512.items() if k != "cpu_model"}   # recorded before the model was
    assert class_key(legacy) == class_key({**AVX512, "cpu_model": ""}) == "cpu-AVX512"
    assert class_key({**AVX512, "device": "cuda", "gpu": "NVIDIA H200"}) == "cuda-NVIDIA H200"
    env, recorded = result_environment({"train_environment": AVX512})
    assert recorded and env == AVX512
    env, recorded = result_environment({"miou": 0.3})
    assert not recorded and class_key(env).startswith(("cpu-", "cuda-")) and env["torch"]


def test_the_committed_pins_are_in_the_class_format():
    pins = load_pins(REPO / "pins.yaml")
    # Every section is keyed as the audit looks results up (environment.class_key).
    assert all(klass == class_key(sec["environment"]) for klass, sec in pins["classes"].items())
    # Each machine the default was pinned on names its CPU model (README, Audit: AMD EPYC Zen 4, AVX512,
    # and Zen 3, AVX2); a legacy capability-only section (Intel, before cpu_model was recorded) may stay
    # beside them as a cross-class reference.
    modelled = [k for k, sec in pins["classes"].items() if sec["environment"]["cpu_model"]]
    assert len(modelled) >= 2 and len({pins["classes"][k]["environment"]["cpu_capability"] for k in modelled}) >= 2
    for klass in modelled:
        section = pins["classes"][klass]
        # The default run's seed 0, plus seeds 1 (and 2) for the cross-class band's seed spread (README,
        # Audit): every method at the same consecutive seeds.
        seeds = section["summary"]["sdn"]["seeds"]
        assert seeds >= 2, klass
        assert set(section["results"]) == {f"{m}-{s}" for m in ("baseline", "sdn", "ddsm", "pdn") for s in range(seeds)}
        runs = [section["results"][f"sdn-{s}"]["metrics"]["miou"] for s in range(seeds)]
        assert section["summary"]["sdn"]["mean"]["miou"] == pytest.approx(sum(runs) / seeds, abs=1e-6)
        assert section["summary"]["sdn"]["std"]["miou"] > 0
    assert pins["data"]["md5"].endswith(".dir")


def test_bad_pins_files_are_rejected(tmp_path):
    path = tmp_path / "pins.yaml"
    path.write_text(yaml.safe_dump({"results": {"baseline-0": {}}, "environment": {}}))
    with pytest.raises(SegreproError, match="old single-environment format"):
        load_pins(path)
    path.write_text(yaml.safe_dump({"classes": {}, "tolerance": {"same_clas": 1e-6}}))
    with pytest.raises(SegreproError, match=r"unknown tolerance key\(s\) \['same_clas'\]"):
        load_pins(path)
    path.write_text(yaml.safe_dump({"classes": {"cpu-AVX2": {"results": {}}}}))
    with pytest.raises(SegreproError, match="class cpu-AVX2 needs"):
        load_pins(path)
    with pytest.raises(SegreproError, match="is missing"):
        load_pins(tmp_path / "absent.yaml")
    # Broken YAML is one line naming the place, for the audit and for --update alike.
    path.write_text("classes:\n  a: [1, 2\n")
    for read in (load_pins, lambda p: write_section(p, "cpu-x", {}, None)):
        with pytest.raises(SegreproError, match=r"^pins file .*pins.yaml, line 3, column 1: expected ','") as caught:
            read(path)
        assert "\n" not in str(caught.value)


def test_changed_keys_name_the_leaves_and_read_numbers_as_either_yaml_does():
    from segrepro.audit.stale import changed_keys

    recorded = {"lr": 0.001, "crop": [48, 64], "sub": {"a": 1, "gone": True}}
    current = {"lr": "1e-3", "crop": [48, 64], "sub": {"a": 2, "new": None}}   # PyYAML reads 1e-3 as a string
    assert changed_keys(recorded, current, "train") == ["train.sub.a", "train.sub.gone", "train.sub.new"]
    assert changed_keys({}, {}, "model.baseline") == []
    assert changed_keys([0, 1], [0], "base.seeds") == ["base.seeds"]
    assert changed_keys({"x": 1}, "absent", "s") == ["s"]
