"""Every lab example runs end to end on the CPU (one epoch, a few hundred images) and writes
its JSON metrics and PNG figures. They use the real MNIST lookup chain (fetched once)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.experiments.models import MAIN_JOB

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.environ.get("MINIDL_DEVICE", "cpu") != "cpu",
    reason="the examples run on cpu, in the cpu leg of the suite (test_gpu_path trains Models C and D on this device)",
)
QUICK = ["--epochs", "1", "--limit", "256", "--test-limit", "500", "--device", "cpu"]
EXAMPLES = {
    "conv_dae_mnist.py": ([], ["test_mse", "psnr", "seconds_per_epoch", "models", "corruptions"]),
    "dae_mnist.py": (["--levels", "0.3", "0.6"], ["test_mse", "psnr", "levels"]),
    "regularized_ae.py": (["--sizes", "64", "8"], ["regularized", "code_size_sweep"]),
    "deep_ae.py": (
        ["--sizes", "784", "64", "16", "--one-layer-epochs", "1", "1", "--pretrain-epochs", "1"],
        ["rows", "interpolation"],
    ),
    "interpolation.py": ([], ["pairs"]),
    "manifold_walk.py": (["--steps", "3"], ["final_error", "judged"]),
    "latent_2d.py": ([], ["knn_accuracy"]),
    "cluster_codes.py": (["--points", "500"], ["code_accuracy", "pixel_accuracy", "clusters"]),
    "stacked_classifier.py": ([], ["accuracy", "frozen_accuracy", "scratch_accuracy"]),
    "pooling_ae.py": ([], ["test_mse", "models"]),
    "segmentation.py": ([], ["miou", "plain_miou", "networks"]),
    "dae_vector_field.py": (["--points", "2000"], ["distance_before", "distance_after", "toward_fraction"]),
    "colorization.py": ([], ["test_mse", "psnr", "grey_baseline_mse", "grey_baseline_psnr"]),
    "linear_ae_pca.py": ([], ["worked_example", "pca_test_mse", "models"]),
    "normalization.py": ([], ["test_mse", "most_likely", "readings"]),
}


def _main_job_compares_on_equal_terms(metrics: dict, out: Path) -> None:
    """Both models: the same loss and training corruption (the lab's: MSE, input + 0.3·N(0, 1)), each
    stopped on its validation MSE, and a strip of test digits after every epoch it trained."""
    models = metrics["models"]
    assert set(models) == {"model_c", "model_d"}
    for tag, model in models.items():
        assert (model["loss"], model["train_corruption"]) == ("mse", "gaussian:0.3:noclip"), tag
        assert model["lr"] == MAIN_JOB[tag].lr, tag
        assert 1 <= model["best_epoch"] <= model["epochs"] == len(model["val_mse_per_epoch"]) == 1, tag
        assert model["converged"] is False  # one epoch cannot show that validation MSE stopped improving
        assert (out / f"epochs_{tag}.png").exists()
    assert set(metrics["corruptions"]) == {"gaussian 0.3 noclip", "salt_and_pepper 0.2", "normalization clipped"}


def _worked_example_and_angles(metrics: dict, out: Path) -> None:
    """CS8004's worked example by hand: z = ReLU([1 1 -1; 2 0 0] [1, -1, 0]) = [0, 2], x̂ = ReLU(W z) =
    [0, 2, 0], ‖X - x̂‖² = 1 + 9 + 0 = 10; the linear AE's principal angles to PCA, one per code unit."""
    worked = metrics["worked_example"]
    assert (worked["code"], worked["reconstruction"], worked["squared_error"]) == ([0, 2], [0, 2, 0], 10)
    angles = metrics["models"]["linear"]["principal_angles_deg"]
    assert len(angles) == 16 and angles == sorted(angles) and 0 <= angles[0] and angles[-1] <= 90
    for model in metrics["models"].values():
        assert (model["loss"], model["epochs"], model["best_epoch"], model["converged"]) == ("mse", 1, 1, False)


def _walks_count_class_changes(metrics: dict, out: Path) -> None:
    """Each walk says the fraction of walkers whose judged class changed, and changed to the digit (default 4)."""
    for name, verdict in metrics["judged"].items():
        if name == "real test digits":
            assert verdict["changed_class"] is None and verdict["changed_to_4"] is None
        else:
            assert 0 <= verdict["changed_to_4"] <= verdict["changed_class"] <= 1, name
    assert set(metrics["final_error"]) == {"vector field", "gradient", "toward 4"}


def _strips_name_an_end_only_when_they_change_class(metrics: dict, out: Path) -> None:
    """An interpolation between two classes whose judged ends do not go from the first to the second names no end."""
    records = metrics["interpolation"]
    assert {r["pair"] for r in records} == {"3->3", "4->9"}
    for r in records:
        if r["pair"] == "3->3":
            assert r["goes_a_to_b"] is True
        elif not r["goes_a_to_b"]:
            assert r["named_an_end"] == 0, r


def _rising_noise_retrains_at_each_level(metrics: dict, out: Path) -> None:
    """The 64-unit DAE of the rising-noise experiment: one model trained per level (its own checkpoint),
    scored beside the sweep's DAE trained at --uniform (0.5)."""
    rising = metrics["rising_noise"]
    assert rising["code"] == 64 and list(rising["levels"]) == ["0.1", "0.3", "0.5", "0.7", "0.9"]
    for level, scores in rising["levels"].items():
        assert set(scores) == {"noisy_mse", "denoised_mse", "denoised_mse_trained_at_0.5"}, level
        assert (out / f"code64_noise{level}.ckpt.npz").exists(), level
    assert (out / "rising_noise_mse.png").exists()
    for kind, model in metrics["regularized"].items():  # a fixed budget, said as such: no convergence claimed
        assert (model["epochs"], model["converged"]) == (1, None), kind
        assert model["loss"].startswith("mse") and model["train_corruption"] in ("none", "gaussian:0.3"), kind


def _one_layer_rows_beside_the_notebook(metrics: dict, out: Path) -> None:
    """deep_ae: each row says its loss, corruption, epochs, best epoch and convergence; the one-layer rows
    carry the ISPR notebook's MSE (0.0023 AE on clean input, 0.0107 DAE on noisy 0.4) and the ratio to it."""
    rows = metrics["rows"]
    for kind, reference in (("AE", 0.0023), ("DAE", 0.0107)):
        one = rows[f"one layer {kind}"]
        measured = one["noisy_test_mse"] if kind == "DAE" else one["test_mse"]
        assert one["ispr_notebook_mse"] == reference and one["ratio_to_ispr"] == measured / reference
        tuned = rows[f"deep, fine-tuned {kind}"]
        assert (tuned["epochs"], tuned["best_epoch"], tuned["converged"]) == (1, 1, False)
        assert tuned["train_corruption"] == ("gaussian:0.4:noclip" if kind == "DAE" else "none")
    _strips_name_an_end_only_when_they_change_class(metrics, out)


def _keras_pixel_accuracy(metrics: dict, out: Path) -> None:
    """pooling_ae: a plain and a denoising Model P and a denoising Model C, sigmoid + BCE, each scored by pixel
    accuracy in both readings: a pixel whose rounded prediction equals the target exactly (Keras) has the
    rounded target too, so Keras's reading is at most the rounded one and at most the share of 0/1 pixels."""
    models = metrics["models"]
    assert set(models) == {"model_p_plain", "model_p", "model_c"}
    assert models["model_p_plain"]["train_corruption"] == "none"
    assert models["model_p"]["train_corruption"] == models["model_c"]["train_corruption"] == "gaussian 0.5, clipped"
    assert (models["model_p_plain"]["keras_slides_accuracy"], models["model_p"]["keras_slides_accuracy"]) == (
        0.88,
        0.92,
    )
    for tag, m in models.items():
        assert m["loss"] == "bce" and m["epochs"] == 1, tag
        assert 0 <= m["keras_accuracy"] <= min(m["pixel_accuracy"], metrics["keras_accuracy_ceiling"]), tag
        assert m["pixel_accuracy"] <= 1, tag


def _a_model_trained_on_each_reading(metrics: dict, out: Path) -> None:
    """normalization: Model C and Model D trained and scored on every reading of "normalization", each
    saying its loss, the reading it trained on, epochs, best epoch and convergence; the most likely named."""
    assert metrics["most_likely"] == "standardize"
    assert list(metrics["readings"]) == ["standardize", "clipped", "dataset", "l2"]
    for reading, result in metrics["readings"].items():
        assert result["input_range"][0] < 0 if reading in ("standardize", "dataset") else result["input_range"][0] >= 0
        for tag in ("model_c", "model_d"):
            model = result[tag]
            assert (model["loss"], model["train_corruption"]) == ("mse", f"normalization:{reading}"), (reading, tag)
            assert (model["epochs"], model["best_epoch"], model["converged"]) == (1, 1, False), (reading, tag)
            assert 0 < model["test_mse"] < 1
    assert (out / "normalization.png").exists()


def _segmentation_beside_all_background(metrics: dict, out: Path) -> None:
    """segmentation: both networks' mIoU per epoch, and the baseline that calls every pixel background
    (IoU digit 0, IoU background the share of background pixels: mIoU under 1/2)."""
    assert 0.4 < metrics["all_background_miou"] < 0.5
    for tag in ("unet", "plain"):
        network = metrics["networks"][tag]
        assert network["miou_per_epoch"] == [pytest.approx(network["miou"])]


def _each_level_trained_until_it_learnt(metrics: dict, out: Path) -> None:
    """One Model D per noise level, with the main job's recipe, each stopped on its validation MSE."""
    assert set(metrics["levels"]) == {"0.3", "0.6"}
    for level, row in metrics["levels"].items():
        assert (row["loss"], row["train_corruption"], row["lr"]) == ("mse", f"gaussian:{level}:noclip",
                                                                      MAIN_JOB["model_d"].lr)  # fmt: skip
        assert 1 <= row["best_epoch"] <= row["epochs"] == 1 and row["converged"] is False, level


CHECKS = {"conv_dae_mnist.py": _main_job_compares_on_equal_terms, "dae_mnist.py": _each_level_trained_until_it_learnt,
          "linear_ae_pca.py": _worked_example_and_angles,
          "manifold_walk.py": _walks_count_class_changes,
          "deep_ae.py": _one_layer_rows_beside_the_notebook,
          "regularized_ae.py": _rising_noise_retrains_at_each_level,
          "pooling_ae.py": _keras_pixel_accuracy, "normalization.py": _a_model_trained_on_each_reading,
          "segmentation.py": _segmentation_beside_all_background}  # fmt: skip


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_and_writes_figures_and_metrics(script, tmp_path):
    extra, keys = EXAMPLES[script]
    result = run(script, *QUICK, *extra, "--out", str(tmp_path), "--json", str(tmp_path / "metrics.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in keys:
        assert key in metrics, f"{script}: metrics lack {key}"
    figures = list(tmp_path.glob("*.png"))
    assert figures, f"{script} wrote no figure"
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 2000 for f in figures)
    assert "---" in result.stdout, "the metrics table is missing"
    CHECKS.get(script, lambda *_: None)(metrics, tmp_path)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_help(script):
    result = run(script, "--help")
    assert result.returncode == 0 and "--epochs" in result.stdout and "--resume" in result.stdout


def test_bad_option_is_a_clear_error():
    result = run("conv_dae_mnist.py", "--loss", "hinge")
    assert result.returncode != 0 and "invalid choice: 'hinge'" in result.stderr


def test_colorization_starts_at_the_grey_baseline_and_beats_it(tmp_path):
    """Chroma predicted from luma: untrained (zero chroma) it is exactly the grey copy; one short epoch
    on crops of the photographs' training regions already colours their unseen regions better than grey."""
    scores = {}
    for epochs, limit in [("0", "256"), ("1", "2000")]:
        result = run("colorization.py", "--epochs", epochs, "--limit", limit, "--test-limit", "500", "--device", "cpu",
                     "--out", str(tmp_path / epochs), "--json", str(tmp_path / f"{epochs}.json"))  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        scores[epochs] = json.loads((tmp_path / f"{epochs}.json").read_text())
    assert scores["0"]["test_mse"] == pytest.approx(scores["0"]["grey_baseline_mse"], rel=1e-6)
    assert scores["1"]["test_mse"] < 0.8 * scores["1"]["grey_baseline_mse"]


def test_colorization_trains_on_a_cifar10_archive(tmp_path):
    """--data cifar-10-python.tar.gz: the lecture's experiment on CIFAR-10 (here a small archive of its format)."""
    from test_autoencoders import cifar_archive

    archive = cifar_archive(tmp_path / "cifar-10-python.tar.gz", rows=20)
    result = run("colorization.py", "--epochs", "1", "--device", "cpu", "--data", str(archive), "--out",
                 str(tmp_path / "out"), "--json", str(tmp_path / "m.json"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["data"] == "CIFAR-10 (100 training, 20 test images)" and metrics["psnr"] > 0
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(archive.read_bytes()[:500])
    result = run("colorization.py", "--epochs", "1", "--data", str(damaged), "--out", str(tmp_path / "out2"))
    assert result.returncode == 1 and "damaged.tar.gz: not a readable cifar-10-python.tar.gz" in result.stderr


def test_an_example_on_emu_with_a_compiler_that_is_not_there_exits_2_naming_cxx(tmp_path):
    """CXX=/nonexistent/g++ ended in subprocess's FileNotFoundError, reported as an OS refusal (exit 1)."""
    env = {**os.environ, "CXX": "/nonexistent/g++", "PYTHONPATH": str(ROOT)}  # this checkout's minidl
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "conv_dae_mnist.py"), *QUICK[:-1], "emu",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env=env)  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "minidl: CXX='/nonexistent/g++': there is no program" in result.stderr and "Traceback" not in result.stderr
