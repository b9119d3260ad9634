"""Stage commands of the tiny audit-test pipeline: small deterministic outputs, no training,
standard library only (each stage is a process start).

Metrics are per method around a base value with a seed offset of ±0.004; the
training environment recorded is an AVX2-only CPU (the class without pins in
the tests' other-class scenarios).
"""
import json
import sys
import zipfile
from pathlib import Path

BASE = {"baseline": 0.31, "sdn": 0.29}
ENV = {"torch": "2.13.0+cpu", "device": "cpu", "cpu_capability": "AVX2",
       "cpu_model": "AMD EPYC 7763 64-Core Processor", "gpu": "", "cuda": ""}


def metrics(key: str) -> dict:
    method, seed = key.rsplit("-", 1)
    m = BASE[method] + (0.004 if int(seed) else -0.004)
    return {"miou": m, "pixel_acc": m + 0.44, "mean_acc": m + 0.08, "boundary_iou": m - 0.12,
            "bf@2px": m + 0.02, "trimap@4px": m - 0.09, "latency_ms": 31.4, "train_environment": ENV}


def main(stage: str, key: str = "") -> None:
    if stage == "preprocess":
        out = Path("data/processed")
        (out / "sub").mkdir(parents=True)
        (out / "train_images.npy").write_bytes(bytes(range(12)))
        (out / "card.json").write_text(json.dumps({"images": 3}))
        (out / "sub" / "caf\u00e9.txt").write_text("non-ASCII name\n")
        (out / "empty.bin").write_bytes(b"")
    elif stage == "train":
        Path("models").mkdir(exist_ok=True)
        Path(f"models/{key}.pt").write_bytes(key.encode() * 64)
    elif stage == "evaluate":
        for sub in ("metrics", "per_image"):
            Path("results", sub).mkdir(parents=True, exist_ok=True)
        Path(f"results/metrics/{key}.json").write_text(json.dumps(metrics(key), indent=2, sort_keys=True))
        with zipfile.ZipFile(f"results/per_image/{key}.npz", "w") as npz:  # stands in for np.savez
            npz.writestr("miou.txt", json.dumps([metrics(key)["miou"]] * 3))
    elif stage == "compare":
        files = sorted(Path("results/per_image").glob("*.npz"))
        table = {f.stem: json.loads(zipfile.ZipFile(f).read("miou.txt"))[0] for f in files}
        Path("results/comparison.json").write_text(json.dumps(table, sort_keys=True))


if __name__ == "__main__":
    main(*sys.argv[1:])
