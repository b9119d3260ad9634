import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segrepro.cli import main
from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO, assert_one_error_line, tiny_params


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.base.methods[0] == "baseline"
    assert params.base.ignore_index == 11


def test_mistyped_key_is_named_with_a_suggestion(tmp_path):
    raw = tiny_params()
    raw["train"]["epoch"] = raw["train"].pop("epochs")
    with pytest.raises(SegreproError, match=r"unknown params key train.epoch \(did you mean train.epochs\?\)"):
        load_params(write(tmp_path, raw))


def test_missing_key_is_named(tmp_path):
    raw = tiny_params()
    del raw["model"]["backbone"]
    with pytest.raises(SegreproError, match="params key model.backbone is missing"):
        load_params(write(tmp_path, raw))


@pytest.mark.parametrize("section,key,value,message", [
    ("train", "lr", "fast", "train.lr must be of type float"),
    ("train", "epochs", 0, "train.epochs must be > 0"),
    ("base", "methods", ["baseline", "sdm"], "unknown method 'sdm'"),
    ("model", "decoder", "unet", "model.decoder must be one of fcn, fpn, got 'unet'"),
    ("model", "input_norm", "zscore", "model.input_norm must be one of imagenet, per_image, got 'zscore'"),
    ("model", "zero_init_residual", "maybe", "model.zero_init_residual must be of type bool"),
    ("runtime", "device", "tpu", "runtime.device must be one of auto, cpu, cuda, got 'tpu'"),
    ("runtime", "threads", 0, "runtime.threads must be > 0"),
    ("runtime", "inference_batch_size", 0, "runtime.inference_batch_size must be > 0"),
    ("runtime", "threads", 2.5, "runtime.threads must be of type int"),
    ("train", "lr", 0.0, "train.lr must be > 0"),
    ("train", "momentum", -0.9, "train.momentum must be >= 0"),
    ("train", "weight_decay", -1e-4, "train.weight_decay must be >= 0"),
    ("train", "poly_power", -0.9, "train.poly_power must be >= 0"),
    ("train", "crop_height", 4000, "lower train.crop_height"),
    ("train", "class_weighting", "inverse", "train.class_weighting must be one of none, median_frequency, sqrt_median_frequency"),
    ("train", "val_every", 0, "train.val_every must be >= 1"),
    ("train", "optimizer", "adam", "train.optimizer must be one of sgd, adamw"),
    ("base", "seeds", [2 ** 32],
     r"base.seeds must lie in 0..2\^32-1 \(what NumPy's seeding accepts\), got 4294967296"),
    ("base", "seeds", [0, -1], r"base.seeds must lie in 0..2\^32-1 \(what NumPy's seeding accepts\), got -1"),
    ("evaluate", "latency_runs", 0, "evaluate.latency_runs must be >= 1"),
    ("train", "lr", 1e300, r"train.lr must be < 1, got 1e\+300; this pipeline's recipes use 0.001 with AdamW "
                          r"and 0.01 with SGD$"),
    ("train", "lr", 1.0, r"train.lr must be < 1, got 1.0; "),
    ("train", "weight_decay", 5e4, r"train.lr x train.weight_decay must be < 1 \(the decay alone moves every "
                                   r"weight by that fraction of itself each step\), got 0.001 x 50000.0; lower "
                                   r"train.weight_decay \(AdamW runs use 0.01, SGD runs 0.0005\)$"),
    ("train", "momentum", 1.0, r"train.momentum is AdamW's beta1 and must be < 1, got 1.0; 0.9 is usual$"),
    ("train", "scale_max", 15.0, r"train.scale_max must be at most 4, got 15.0; random-scale augmentation spans "
                                 r"0.5-2 \(params.yaml caps it at 1.5, the GPU profile at 2.0\)$"),
    ("model", "output_stride", 7, r"model.output_stride must be one of 8, 16, 32, got 7; the ResNet backbone's "
                                  r"downsampling; params.yaml uses 32, the GPU profile 16$"),
    ("model", "backbone", "resnet19", r"model.backbone must be one of resnet18, resnet34, resnet50, resnet101, "
                                      r"got 'resnet19'; params.yaml uses resnet18$"),
    ("runtime", "threads", 100000, r"runtime.threads must be at most 1024, got 100000; use the machine's core "
                                   r"count or less \(params.yaml's 2 keeps CPU results comparable\)$"),
    ("audit", "pins", "", r"audit.pins must name the pins file, got ''; set it to e.g. pins.yaml \(pins-gpu.yaml "
                          r"for the GPU profile\)$"),
    ("audit", "pins", " \t", r"audit.pins must name the pins file, got ' \\t'; set it to e.g. pins.yaml"),
])
def test_bad_values_are_rejected(tmp_path, section, key, value, message):
    raw = tiny_params()
    raw[section][key] = value
    with pytest.raises(SegreproError, match=message):
        load_params(write(tmp_path, raw))


def test_a_range_error_names_the_file_it_read(tmp_path):
    raw = tiny_params()
    raw["train"]["lr"] = 5.0
    path = tmp_path / "my-sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SegreproError, match=f"^invalid {path}: train.lr must be < 1"):
        load_params(path)
    raw["train"]["lr"] = float("nan")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SegreproError, match=f"^invalid {path}: params key train.lr must be a finite number"):
        load_params(path)


def test_sgd_momentum_of_one_or_more_is_rejected_too(tmp_path):
    """Only AdamW's beta1 was bounded; SGD at momentum >= 1 accumulated its steps until the run diverged."""
    raw = tiny_params(train={"optimizer": "sgd", "lr": 0.01, "momentum": 9.0})  # 9 for 0.9
    with pytest.raises(SegreproError, match=r"train.momentum is SGD's momentum \(at 1 or more past gradients never "
                                            r"fade and the steps accumulate without limit\) and must be < 1, got "
                                            r"9.0; 0.9 is usual$"):
        load_params(write(tmp_path, raw))


@pytest.mark.parametrize("section,values", [
    ("train", {"lr": 0.999, "weight_decay": 1.0}), ("train", {"scale_max": 4.0}), ("runtime", {"threads": 1024}),
    ("model", {"output_stride": 8, "backbone": "resnet101"}), ("model", {"output_stride": 16}),
    ("evaluate", {"bf_tolerances": [80], "trimap_widths": [1, 79, 80]}),  # 80 px: the diagonal of 48x64
    ("train", {"optimizer": "sgd", "lr": 0.5, "momentum": 0.99}),
])
def test_values_at_the_new_bounds_are_accepted(tmp_path, section, values):
    params = load_params(write(tmp_path, tiny_params(**{section: values})))
    assert all(getattr(getattr(params, section), k) == (tuple(v) if isinstance(v, list) else v)
               for k, v in values.items())


@pytest.mark.parametrize("key,pixels,message", [
    ("bf_tolerances", [1, 2, 2], r"evaluate.bf_tolerances must be strictly increasing \(each value names a metric, "
                                 r"bf@<t>px\), got \[1, 2, 2\]; write \[1, 2\]$"),
    ("trimap_widths", [8, 4, 2], r"evaluate.trimap_widths must be strictly increasing \(each value names a metric, "
                                 r"trimap@<w>px\), got \[8, 4, 2\]; write \[2, 4, 8\]$"),
    ("bf_tolerances", [1, 10 ** 9], r"evaluate.bf_tolerances must be at most 80 px, the diagonal of the 48x64 "
                                    r"images preprocess writes \(a larger value scores as 80 does\), got "
                                    r"1000000000; lower it$"),
    ("trimap_widths", [2, 81], r"evaluate.trimap_widths must be at most 80 px, .*got 81; lower it$"),
])
def test_boundary_metric_pixels_are_distinct_increasing_and_within_the_image(tmp_path, key, pixels, message):
    """A repeat made two metrics named bf@2px; a tolerance of 10**9 px ran the morphology 10**9 times."""
    with pytest.raises(SegreproError, match=message):
        load_params(write(tmp_path, tiny_params(evaluate={key: pixels})))


def test_more_trimap_widths_than_a_byte_counts_are_refused_before_training(tmp_path):
    """metrics.boundary counts a pixel's bands in a uint8: 256 widths failed only at evaluate."""
    full = {"height": 360, "width": 480}  # diagonal 600 px: room for 256 distinct widths
    assert load_params(write(tmp_path, tiny_params(preprocess=full, evaluate={"trimap_widths": list(range(1, 256))})))
    with pytest.raises(SegreproError, match=r"evaluate.trimap_widths may hold at most 255 widths \(a pixel's bands "
                                            r"are counted in one byte\), got 256; keep the widths the report needs"):
        load_params(write(tmp_path, tiny_params(preprocess=full, evaluate={"trimap_widths": list(range(1, 257))})))


def test_the_pixel_bound_follows_the_processed_size(tmp_path):
    """300 px at params.yaml's 180x240 (the GPU profile's 360x480: 600)."""
    raw = tiny_params(preprocess={"height": 180, "width": 240}, evaluate={"trimap_widths": [2, 300]})
    assert load_params(write(tmp_path, raw)).evaluate.trimap_widths == (2, 300)
    raw["evaluate"]["trimap_widths"] = [2, 301]
    with pytest.raises(SegreproError, match=r"trimap_widths must be at most 300 px, the diagonal of the 180x240"):
        load_params(write(tmp_path, raw))


@pytest.mark.parametrize("pretrained,sha256,message", [
    ("", "ab" * 32, r"model.pretrained_sha256 is set but model.pretrained is empty, so no weights would be loaded "
                    r"\(a run from scratch\); set model.pretrained to the weights' path or URL, or clear "
                    r"model.pretrained_sha256$"),
    ("https://example.org/resnet18.pth", "", r"model.pretrained is an URL: set model.pretrained_sha256 to its "
                                             r"sha256$"),
    ("weights.pth", "abc123", r"model.pretrained_sha256 'abc123' is not a sha256; give all 64 hex digits "
                              r"\(sha256sum of the weights file\)$"),
])
def test_pretrained_weights_that_cannot_load_are_refused_before_any_stage(tmp_path, pretrained, sha256, message):
    """These failed in train (models.backbone.load_pretrained), after preprocess; a sha256 without weights
    never failed (a silent run from scratch)."""
    raw = tiny_params(model={"pretrained": pretrained, "pretrained_sha256": sha256})
    with pytest.raises(SegreproError, match=message):
        load_params(write(tmp_path, raw))
    # A local file that does not exist yet is the train stage's business, not the params file's.
    raw["model"].update(pretrained="weights.pth", pretrained_sha256="ab" * 32)
    assert load_params(write(tmp_path, raw)).model.pretrained == "weights.pth"


def test_the_backbone_builds_exactly_what_params_accepts():
    """One list each: models.backbone takes OUTPUT_STRIDES and BACKBONES from params_ranges."""
    from segrepro import params_ranges
    from segrepro.models import backbone

    assert backbone.OUTPUT_STRIDES is params_ranges.OUTPUT_STRIDES
    assert tuple(backbone._DEPTHS) == backbone.BACKBONES == params_ranges.BACKBONES
    with pytest.raises(SegreproError, match="output_stride must be one of 8, 16, 32, got 7"):
        backbone.ResNet("resnet18", 7)


def test_every_committed_params_file_still_loads(tmp_path):
    """params.yaml, every profile merged onto it, and every arm of the GPU sweep on the GPU profile."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_sweep
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    from segrepro import profiles

    load_params(REPO / "params.yaml")
    found = sorted((REPO / "profiles").glob("*.yaml"))
    assert found
    for profile in found:
        profiles.merge(REPO / "params.yaml", profile, tmp_path / f"{profile.stem}.yaml")
    planned = gpu_sweep.plan(REPO / "benchmarks" / "gpu_sweep.yaml", tmp_path / "paper-gpu.yaml", tmp_path / "plan")
    assert planned["arms"]
    for arm in planned["arms"]:
        load_params(arm["params"])


def test_cli_reports_bad_params_without_traceback(tmp_path, capsys):
    raw = tiny_params()
    raw["report"]["titel"] = "x"
    code = main(["preprocess", "--params", str(write(tmp_path, raw)), "--raw", str(tmp_path / "r"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown params key report.titel (did you mean report.title?)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


# Which option keys each ablation variant is about: a variant must differ from its parent's
# block in exactly these keys (complete blocks, so a parent edit that a variant misses shows here).
VARIANT_KEYS = {
    "sdn_cdc": {"operator"}, "sdn_vanilla": {"operator"},
    "ddsm_spatial": {"channel"}, "ddsm_channel": {"spatial"},
    "ddsm_bound": {"offset_bound"}, "ddsm_offset_lr": {"offset_lr_scale"},
    "ddsm_relpos": {"position_embedding"}, "ddsm_bn_start": {"identity_start"},
    "ddsm_zeros": {"padding_mode"},
    "pdn_1layer": {"num_layers"}, "pdn_3layer": {"num_layers"},
}


def test_variants_differ_from_their_parent_only_in_what_they_ablate():
    from segrepro.params import method_options, parent_method

    params = load_params(REPO / "params.yaml")
    assert set(params.model.variants) == set(VARIANT_KEYS)
    for name, keys in VARIANT_KEYS.items():
        parent = parent_method(params, name)
        mine, theirs = method_options(params, name), method_options(params, parent)
        assert set(mine) == set(theirs), f"{name} must list every option of {parent}"
        assert {k for k in mine if mine[k] != theirs[k]} == keys, name


def test_a_variant_can_be_run_as_a_method_and_builds_its_parent(tmp_path):
    from segrepro.models.build import model_kwargs

    raw = tiny_params(base={"methods": ["baseline", "pdn", "pdn_1layer"]})
    params = load_params(write(tmp_path, raw))
    kwargs = model_kwargs(params.model, "pdn_1layer", params.base.num_classes)
    assert kwargs["method"] == "pdn" and kwargs["method_options"]["num_layers"] == 1
    assert "of" not in kwargs["method_options"]


def test_a_variant_of_an_unknown_method_is_rejected(tmp_path):
    raw = tiny_params()
    raw["model"]["xyz_small"] = {"of": "xyz"}
    with pytest.raises(SegreproError, match="model.xyz_small.of must name a method"):
        load_params(write(tmp_path, raw))


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    path = write(tmp_path, tiny_params())
    path.write_text(path.read_text() + "report:\n  title: twice\n")
    with pytest.raises(SegreproError, match=r"params file .*params.yaml: params key 'report' appears twice "
                                            r"\(line \d+\), first at line \d+; keep one of them"):
        load_params(path)


@pytest.mark.parametrize("num_classes,ignore_index", [(5, 11), (0, 11), (-3, 11), (11, 255), (11, -1), (12, 12)])
def test_only_camvids_labelling_is_accepted(tmp_path, num_classes, ignore_index):
    """Anything else crashed train (class-weight length, target out of bounds) and evaluate (reshape)."""
    raw = tiny_params(base={"num_classes": num_classes, "ignore_index": ignore_index})
    with pytest.raises(SegreproError, match=rf"base.num_classes and base.ignore_index must be 11 and 11 \(CamVid's "
                                            rf"11 classes and its void label, the only labelling the pipeline "
                                            rf"supports\), got {num_classes} and {ignore_index}; set "
                                            rf"base.num_classes: 11 and base.ignore_index: 11"):
        load_params(write(tmp_path, raw))


@pytest.mark.parametrize("section,values,named", [
    ("train", {"scale_min": float("inf"), "scale_max": float("inf")}, ["train.scale_min", "train.scale_max"]),
    ("train", {"scale_max": float("inf")}, ["train.scale_max"]),
    ("train", {"lr": float("nan")}, ["train.lr"]),
    ("train", {"lr": float("-inf")}, ["train.lr"]),
    ("train", {"warmup_epochs": float("nan")}, ["train.warmup_epochs"]),
    ("evaluate", {"boundary_iou_ratio": float("nan")}, ["evaluate.boundary_iou_ratio"]),
    ("model", {"sdn": {"lam": float("inf")}}, ["model.sdn.lam"]),
    ("model", {"ddsm_bound": {"of": "ddsm", "offset_bound": float("inf")}}, ["model.ddsm_bound.offset_bound"]),
])
def test_nan_and_inf_are_rejected_anywhere(tmp_path, section, values, named):
    """``.inf`` passed ``0 < scale_min <= scale_max`` and crashed training with a NaN → int conversion."""
    path = write(tmp_path, tiny_params(**{section: values}))
    assert ".inf" in path.read_text() or ".nan" in path.read_text()  # the YAML spelling a user would type
    with pytest.raises(SegreproError) as info:
        load_params(path)
    message = str(info.value)
    for key in named:
        assert f"params key {key} must be a finite number, got " in message, message
    assert message.endswith("write a finite value (an option that means 'unbounded' takes null, e.g. "
                            "model.ddsm.offset_bound)")


@pytest.mark.parametrize("height,width,bad", [(10 ** 9, 64, "height"), (48, 10 ** 9, "width"),
                                               (1441, 64, "height"), (48, 1921, "width")])
def test_a_resize_beyond_four_times_camvid_is_rejected(tmp_path, height, width, bad):
    """preprocess.height: 1000000000 crashed numpy (array is too big)."""
    raw = tiny_params(preprocess={"height": height, "width": width})
    limit = {"height": 1440, "width": 1920}[bad]
    with pytest.raises(SegreproError, match=rf"preprocess.{bad} must be at most {limit} \(4x CamVid's "
                                            rf"{limit // 4}\), got {height if bad == 'height' else width}; "
                                            r"CamVid's frames are 360x480: use that size or less"):
        load_params(write(tmp_path, raw))
    assert load_params(write(tmp_path, tiny_params(preprocess={"height": 1440, "width": 1920})))


@pytest.mark.parametrize("text,message", [
    ("", r"params file .*params.yaml is empty; restore it \(`git checkout -- params.yaml` restores the "
         r"repository's\) or pass a complete one$"),
    ("# all commented out\n", "params file .*params.yaml is empty; restore it"),
    ("- base\n", r"params file .*params.yaml must be a mapping of sections \(base:, download:, ...\), got a list; "
                 r"restore it"),
    ("base:\n\tdataset: camvid\n", r"params file .*params.yaml, line 2, column 1: found character '\\t' .*; "
                                   r"YAML indents with spaces only: replace the tab with spaces$"),
    ("base: {dataset: camvid\n", r"params file .*params.yaml, line 2, column 1: .*flow mapping started at line 1, "
                                 r"column 7\); close the `\{` or `\[`"),
    ("? [a, b]\n: 1\n", r"params file .*params.yaml, line 1, column 3: found unhashable key .*; keys must be plain "
                        r"names"),
])
def test_an_unreadable_params_file_is_named_with_place_and_fix(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(SegreproError, match=message):
        load_params(path)


def test_a_params_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"base:\n  dataset: caf\xe9\n")
    with pytest.raises(SegreproError, match=r"params file .*params.yaml, line 2, column 15: byte 0xe9 is not UTF-8; "
                                            r"save the file as UTF-8"):
        load_params(path)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user or DVC runs it."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("DVC_STAGE", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("stage,seed", [("train", "-1"), ("evaluate", str(2 ** 32))])
def test_a_seed_outside_numpys_range_is_one_line(tmp_path, stage, seed):
    """``--seed`` follows base.seeds' rule (params_ranges.SEEDS); it ended in numpy's ValueError traceback."""
    params = write(tmp_path, tiny_params())
    outs = ["--live", "live"] if stage == "train" else ["--out", "m.json", "--per-image", "p.npz"]
    done = _cli(tmp_path, "segrepro.cli", stage, "--params", str(params), "--method", "baseline", "--seed", seed,
                "--data", "processed", "--checkpoint", "models/baseline.pt", *outs)
    assert_one_error_line(done, f"segrepro {stage}: error: --seed must lie in 0..2^32-1 (what NumPy's seeding "
                                f"accepts), got {seed}; pick one in that range, e.g. one of base.seeds")
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "live").exists()


def test_an_unreadable_params_file_is_one_line_from_every_entry_point(tmp_path):
    """The stage CLI and both profile commands read params.yaml through one reader (strict_yaml.read_yaml)."""
    (tmp_path / "tab.yaml").write_text("base:\n\tdataset: camvid\n")
    (tmp_path / "u.yaml").write_bytes(b"base:\n  dataset: caf\xe9\n")
    (tmp_path / "p.yaml").write_text("train.epochs: 3\n")
    done = _cli(tmp_path, "segrepro.cli", "preprocess", "--params", "tab.yaml", "--raw", "raw", "--out", "out")
    assert_one_error_line(done, "segrepro preprocess: error: params file tab.yaml, line 2, column 1: ",
                          "replace the tab with spaces")
    assert not (tmp_path / "out").exists()
    done = _cli(tmp_path, "segrepro.profiles", "set-args", "tab.yaml")
    assert_one_error_line(done, "segrepro profiles: error: profile tab.yaml, line 2, column 1: ",
                          "replace the tab with spaces")
    done = _cli(tmp_path, "segrepro.profiles", "merge", "p.yaml", "--params", "u.yaml", "--out", "m.yaml")
    assert_one_error_line(done, "segrepro profiles: error: params file u.yaml, line 2, column 15: byte 0xe9 is "
                                "not UTF-8", "save the file as UTF-8")
    assert not (tmp_path / "m.yaml").exists()


def test_method_blocks_are_gathered_and_a_missing_block_means_no_options(tmp_path):
    from segrepro.models.methods import METHOD_NAMES

    raw = tiny_params()
    del raw["model"]["baseline"]
    params = load_params(write(tmp_path, raw))
    assert list(params.model.options) == list(METHOD_NAMES)
    assert params.model.options["baseline"] == {} and params.model.options["pdn"] == raw["model"]["pdn"]
    assert params.model.resolve("ddsm") == ("ddsm", raw["model"]["ddsm"])
    assert params.model.resolve("ddsm_zeros")[0] == "ddsm"
    with pytest.raises(SegreproError, match="unknown method 'sdm'; choose from baseline, sdn, ddsm, pdn, .*sdn_cdc"):
        params.model.resolve("sdm")


@pytest.mark.parametrize("key,value,message", [
    ("sdnn", {"lam": 1.0}, r"unknown params key model.sdnn \(did you mean model.sdn\?\).*one block per method "
                           r"\(baseline, sdn, ddsm, pdn\)"),
    ("sdn", None, "params key model.sdn must be a mapping of sdn's options"),
    ("pdn", {"of": "sdn"}, "'of' belongs to ablation variants only"),
    ("options", {}, "params key model.options is reserved"),
    ("variants", {}, "params key model.variants is reserved"),
    ("pdn_small", {"of": "baseline"}, r"model.pdn_small.of must name a method with options \(sdn, ddsm, pdn\)"),
])
def test_bad_model_blocks_are_named_with_the_fix(tmp_path, key, value, message):
    raw = tiny_params()
    raw["model"][key] = value
    with pytest.raises(SegreproError, match=message):
        load_params(write(tmp_path, raw))


def test_runtime_section_is_shared_by_train_and_evaluate():
    params = load_params(REPO / "params.yaml")
    assert params.runtime.device in ("auto", "cpu", "cuda") and params.runtime.threads >= 1
    assert params.runtime.inference_batch_size >= 1
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "evaluate"):
        listed = stages[stage]["params"]
        assert "runtime" in listed, f"dvc.yaml: {stage} reads the runtime section but does not list it"
        other = "evaluate" if stage == "train" else "train"
        assert not [p for p in listed if p == other or p.startswith(other + ".")], \
            f"dvc.yaml: {stage} lists params of the {other} section"


def test_keys_that_moved_to_runtime_name_their_new_place(tmp_path):
    raw = tiny_params()
    raw["train"]["device"] = "cpu"
    raw["evaluate"]["batch_size"] = 4
    with pytest.raises(SegreproError, match=r"train.device → runtime.device, "
                                            r"evaluate.batch_size → runtime.inference_batch_size .*move the value"):
        load_params(write(tmp_path, raw))
    raw = tiny_params()
    raw["train"]["threads"] = 2
    del raw["runtime"]  # the old key is named before the missing section
    with pytest.raises(SegreproError, match=r"train.threads → runtime.threads"):
        load_params(write(tmp_path, raw))


def test_a_params_file_without_runtime_names_the_section(tmp_path):
    raw = tiny_params()
    del raw["runtime"]
    with pytest.raises(SegreproError, match="params key runtime is missing; add it to params.yaml"):
        load_params(write(tmp_path, raw))


def test_the_checkpoint_train_record_keeps_its_layout(tmp_path):
    """Checkpoints are pickled: runtime.threads/device stay inside ``train``, at their old place, so a
    checkpoint trained after the move is byte-identical to one trained before (the pinned md5s)."""
    from segrepro.checkpoint import train_record

    raw = tiny_params(runtime={"threads": 3, "device": "cpu"}, train={"optimizer": "sgd"})
    record = train_record(load_params(write(tmp_path, raw)))
    assert list(record) == ["epochs", "batch_size", "lr", "momentum", "weight_decay", "poly_power",
                            "crop_height", "crop_width", "scale_min", "scale_max", "flip", "threads", "device",
                            "class_weighting", "warmup_epochs", "val_every", "compile", "channels_last"]
    assert record["threads"] == 3 and record["device"] == "cpu" and record["epochs"] == raw["train"]["epochs"]
    # SGD, the only optimiser before train.optimizer, is left out (same bytes); any other is recorded last.
    raw["train"]["optimizer"] = "adamw"
    assert list(train_record(load_params(write(tmp_path, raw))))[-1:] == ["optimizer"]
