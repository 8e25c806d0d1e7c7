"""From a folder of ordinary videos to a trained VAE and next-frame predictor, with a verdict.

    python tools/video_pipeline.py --videos my_videos/ --output-dir runs/my_videos \
        [--vae-iterations 1500] [--vae-augment none] [--vae-precision fp32] [--iterations 2000] [--threads 2]

1. **probe** (``a2a_temporal.data.video_probe``): frame size, VAE depth and frame stride chosen
   from the videos (written to ``probe.json`` with the numbers behind each choice); a folder whose
   videos are too short for the context is refused here, before any training.
2. **VAE** (``tools/train_vae.py``) on the training files (``--vae-augment colour`` trains it on
   flipped, turned and re-coloured copies of them, for folders whose few videos each have their
   own palette: the VAE otherwise learns the palettes; the verdict says when that happened;
   ``--vae-precision bf16`` trains it under bf16 autocast, faster on CPUs with bf16 instructions);
3. **predictor** (``tools/train_video.py``, a2a, 1 step), evaluated on the held-out files from
   iteration 0 on, so its learning curve starts at copy-last; with ``--baselines flow regression
   regression_residual`` the same data, VAE, backbone and budget also train those objectives;
4. **report** (``tools/benchmark_video.py`` on the held-out files): next-frame PSNR at 1 step
   against copying the last frame, a rollout curve, and the ceiling the VAE allows (the true next
   latent decoded the same way); ``tools/learning_curves.py`` plots the gain over copy-last.
   ``--test-videos FOLDER`` also scores every file of a second folder of new videos (never seen by
   the VAE or the predictor) and bases the verdict on them: a held-out split of a few files gives
   wide intervals. ``--predictor-augment geometry|colour`` trains the predictor(s) on flipped / turned /
   re-coloured copies of each training video as well (one transform per copy).

The verdict in ``pipeline.json``: ``learned`` when the held-out next-frame PSNR is at least
``--margin`` dB (0.5) above copy-last and the bootstrap interval of the gain over the held-out
videos excludes zero (``not shown`` when it does not), otherwise ``no better than copy-last``, with the VAE named as
the limit when even the true next latent is not ``--margin`` above copy-last, and the number of
videos named when the gain on the training files (per video, on up to 20 of them, in
``report/train_files.json``) exceeds the held-out gain by twice the margin (the predictor
memorises its videos). Every stage runs as
its own process with the command recorded; a stage whose output exists is skipped (``--force``
redoes all).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from a2a_temporal.cli import run_cli, run_tool
from a2a_temporal.data.video_folder import AUGMENTS
from a2a_temporal.data.video_probe import probe_folder
from a2a_temporal.utils import write_json_atomic


# Baselines that isolate the source (name -> objective overrides, sampler steps in the report).
BASELINES = {
    "flow": (["--video.objective.name=flow"], 10),  # from Gaussian noise, 10 Euler steps
    "regression": (["--video.objective.name=regression"], 1),  # one call from the context alone
    "regression_residual": (["--video.objective.name=regression", "--video.objective.regression_residual=true"], 1),
}


TRAIN_FILES_SCORED = 20  # training files the report scores (evenly spaced) for the memorisation check


def training_gain(train_bench: dict) -> float:
    """Gain over copy-last on the training files, measured the way the held-out gain is: per video
    from its mean squared errors (``benchmark_video --split train``); the frame-mean gain of the same
    report when no video has a finite per-video gain (every scored video still)."""
    m = train_bench["models"]["a2a"]
    g = m.get("video_gain_db")
    return g if g is not None else m["next_frame_psnr"] - train_bench["copy_last_next_frame_psnr"]


def verdict_for(gain: float, ceiling: float, train_gain: float | None, margin: float, train_files: int,
                ci: tuple[float, float] | None = None, held_out: int | None = None) -> tuple[str, str]:
    """``(verdict, why)`` from the held-out gain over copy-last (with its bootstrap interval over
    the held-out videos), the VAE's ceiling and the same gain on the training files; the reason
    names the limit: the VAE, the number of videos, or the predictor."""
    seen = "" if train_gain is None else f"; {train_gain:+.2f} dB per video on {train_files} training files"
    spread = "" if ci is None else f" (95 % interval over {held_out} held-out videos: {ci[0]:+.2f} to {ci[1]:+.2f} dB)"
    few = (f"; only {held_out} held-out videos, too few to trust the verdict (more files, or --val-every smaller)"
           if held_out is not None and held_out < 5 else "")
    memorises = train_gain is not None and train_gain - gain >= 2 * margin
    if gain >= margin and ci is not None and ci[0] <= 0:
        return "not shown", (f"{gain:+.2f} dB over copy-last on held-out files{spread}, but the interval includes "
                             f"no gain{seen}{few}")
    if gain >= margin:
        why = f"{gain:+.2f} dB over copy-last on held-out files{spread}{seen}"
        if memorises:
            why += ": it fits the training files far better than new ones, more videos should help"
        return "learned", why + few
    if ceiling < margin:
        return "no better than copy-last", (f"{gain:+.2f} dB over copy-last{spread} (margin {margin} dB); the VAE is the "
                                            f"limit: even the true next latent gives only {ceiling:+.2f} dB{few}")
    if memorises:
        return "no better than copy-last", (f"{gain:+.2f} dB over copy-last on held-out files{spread} (margin {margin} dB)"
                                            f"{seen}: it memorises its videos, more videos are needed{few}")
    return "no better than copy-last", (f"{gain:+.2f} dB over copy-last{spread} (margin {margin} dB){seen}; the VAE "
                                        f"allows {ceiling:+.2f} dB: the predictor did not learn the change (train "
                                        f"longer or larger){few}")


VAE_GAP_DB = 3.0  # training-frame minus held-out reconstruction PSNR that counts as a VAE that learned its videos


def vae_gap_note(train_psnr: float | None, val_psnr: float | None, augment: str) -> str:
    """A clause for the verdict when the VAE reconstructs its training frames far better than the
    held-out ones: the predictor then works in a latent space that does not fit new videos."""
    if train_psnr is None or val_psnr is None or train_psnr - val_psnr < VAE_GAP_DB:
        return ""
    fix = "more videos" + ("" if augment == "colour" else " or --vae-augment colour")
    return (f"; the VAE reconstructs its training frames at {train_psnr:.1f} dB but held-out ones at "
            f"{val_psnr:.1f} dB: it learned the training videos ({fix})")


def stage(cmds: list, tool: str, args: list, done: bool = False) -> None:
    """Record the stage's command (always, so ``pipeline.json`` reproduces every stage); run it
    unless its output exists."""
    cmds.append(" ".join(["python", f"tools/{tool}", *map(shlex.quote, map(str, args))]))
    if done:
        print(f"[skip] {tool}: output exists", flush=True)
    else:
        run_tool(tool, args)


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", required=True, help="folder of video files (mp4, avi, webm, mkv, mov)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--context", type=int, default=2, help="previous frames the predictor sees")
    p.add_argument("--max-size", type=int, default=64, help="largest frame size to train at (32, 64 or 128)")
    p.add_argument("--min-change", type=float, default=2.0,
                   help="mean grey-level change between kept frames that selects the frame stride")
    p.add_argument("--frame-stride", type=int, default=None, help="override the chosen stride")
    p.add_argument("--val-every", type=int, default=None,
                   help="every N-th file is held out (default: 10, or fewer so that one file is held out)")
    p.add_argument("--vae-iterations", type=int, default=1500)
    p.add_argument("--vae-augment", default="none", choices=AUGMENTS,
                   help="augmentation of the VAE's training frames (tools/train_vae.py --augment); the verdict "
                        "suggests colour when the VAE reconstructs held-out frames far worse than training ones")
    p.add_argument("--vae-precision", default="fp32", choices=("fp32", "bf16"),
                   help="bf16: train the VAE under bf16 autocast (fp32 weights; tools/train_vae.py "
                        "--train.mixed_precision=bf16), faster where the CPU has bf16 instructions")
    p.add_argument("--predictor-augment", default="none", choices=AUGMENTS,
                   help="train the predictor(s) also on transformed copies of every training video (one flip / turn / "
                        "re-colouring per copy; tools/train_video.py --augment); measured on the colour gradients it "
                        "did not help (README, 'Your own folder of videos')")
    p.add_argument("--augment-copies", type=int, default=4, help="copies per training video with --predictor-augment")
    p.add_argument("--test-videos", default=None,
                   help="a folder of new videos, all of them scored after training; the verdict then rests on them "
                        "(more files than the held-out split, and unseen by the VAE too)")
    p.add_argument("--iterations", type=int, default=2000, help="predictor training iterations")
    p.add_argument("--evals", type=int, default=4, help="held-out evaluations along training (plus iteration 0)")
    p.add_argument("--margin", type=float, default=0.5, help="dB above copy-last that counts as learned")
    p.add_argument("--baselines", nargs="*", default=[], choices=sorted(BASELINES),
                   help="also train these on the same VAE, data, backbone and budget, and report them beside a2a")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.output_dir)
    if a.force and out.exists():
        for sub in ("vae", "predictor", "baselines", "report", "pipeline.json", "probe.json"):
            target = out / sub
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    probe = probe_folder(a.videos, a.context, a.max_size, a.min_change)
    if a.frame_stride:
        probe.update(frame_stride=a.frame_stride, stride_reason="--frame-stride")
    val_every = a.val_every or min(10, probe["videos"])
    probe["val_every"] = val_every
    write_json_atomic(out / "probe.json", probe)
    size, stride = probe["size"], probe["frame_stride"]
    print(f"{probe['videos']} videos ({probe['frames_min']}-{probe['frames_max']} frames, {', '.join(probe['native_sizes'])})"
          f" -> {size}x{size} px, frame stride {stride} ({probe['stride_reason']}), VAE blocks "
          f"{probe['vae_block_out_channels']}, every {val_every}th file held out", flush=True)

    cmds: list[str] = []
    data = [f"--data.root={a.videos}", f"--data.size={size}", f"--data.val_every={val_every}"]
    blocks = ",".join(map(str, probe["vae_block_out_channels"]))
    vae_dir, pred_dir, report = out / "vae", out / "predictor", out / "report"
    stage(cmds, "train_vae.py", ["--output-dir", vae_dir, *data, "--data.frame_stride=1", f"--vae.image_size={size}",
                                 f"--vae.block_out_channels=[{blocks}]", f"--train.iterations={a.vae_iterations}",
                                 "--train.eval_every=0", f"--train.threads={a.threads}"]
          + ([f"--augment={a.vae_augment}"] if a.vae_augment != "none" else [])
          + (["--train.mixed_precision=bf16"] if a.vae_precision == "bf16" else []),
          done=(vae_dir / "vae" / "model.safetensors").is_file())
    every = max(1, a.iterations // max(1, a.evals))
    runs = {"a2a": (pred_dir, ["--video.objective.name=a2a"], 1)}
    runs.update({b: (out / "baselines" / b, *BASELINES[b]) for b in a.baselines})
    for name, (run_dir, objective, _) in runs.items():
        stage(cmds, "train_video.py", ["--output-dir", run_dir, "--vae-path", vae_dir, *data,
                                       f"--data.frame_stride={stride}", "--video.use_actions=false",
                                       f"--video.context={a.context}", "--video.patch=4", *objective,
                                       "--video.backbone.preset=tiny", "--video.backbone.width=192",
                                       "--video.backbone.depth=4", "--video.backbone.heads=4",
                                       f"--train.iterations={a.iterations}", f"--train.eval_every={every}",
                                       "--train.eval_at_start=true", f"--train.threads={a.threads}"]
              + ([f"--augment={a.predictor_augment}", f"--augment_copies={a.augment_copies}"]
                 if a.predictor_augment != "none" else []),
              done=(run_dir / "train_summary.json").is_file())
    held_min = (probe["frames_min"] - 1) // stride + 1
    frames = max(1, min(16, held_min - a.context))
    models = [x for name, (run_dir, _, steps) in runs.items() for x in ("--model", f"{name}={run_dir}:{steps}")]
    stage(cmds, "benchmark_video.py", ["--videos", a.videos, *models, "--frames", frames,
                                       "--val-every", val_every, "--threads", a.threads,
                                       "--json", report / "heldout.json"])
    stage(cmds, "benchmark_video.py", ["--videos", a.videos, "--model", f"a2a={pred_dir}:1", "--split", "train",
                                       "--max-videos", TRAIN_FILES_SCORED, "--frames", 1, "--throughput-steps",
                                       "--val-every", val_every, "--threads", a.threads,
                                       "--json", report / "train_files.json"])
    if a.test_videos:
        stage(cmds, "benchmark_video.py", ["--videos", a.test_videos, *models, "--frames", frames, "--val-every", 1,
                                           "--throughput-steps", "--threads", a.threads,
                                           "--json", report / "test_files.json"])
    curve_runs = [x for name, (run_dir, _, _) in runs.items() for x in ("--run", f"{name}={run_dir}")]
    stage(cmds, "learning_curves.py", [*curve_runs,
                                       "--metric", "eval/val_psnr", "--baseline", "eval/copy_last_psnr",
                                       "--out", report / "gain_over_copy_last.png"])
    bench = json.loads((report / "heldout.json").read_text())
    held = bench  # the held-out split's report, kept in pipeline.json beside the test folder's
    if a.test_videos:
        bench = json.loads((report / "test_files.json").read_text())
    copy_last = bench["copy_last_next_frame_psnr"]
    m = bench["models"]["a2a"]
    gain = m["next_frame_psnr"] - copy_last
    ceiling = m["true_latent_psnr"] - copy_last
    train_bench = json.loads((report / "train_files.json").read_text())
    train_gain = training_gain(train_bench)
    ci = m.get("gain_ci95")
    # the verdict's gain: per video, from the video's mean squared errors (a frame that repeats the
    # previous one makes copy-last's per-frame PSNR infinite); the frame-mean PSNR gain is kept beside it
    video_gain = m.get("video_gain_db")
    verdict, why = verdict_for(gain if video_gain is None else video_gain, ceiling, train_gain, a.margin, train_bench["scored_videos"],
                               tuple(ci) if ci else None, bench["held_out_videos"])
    vae_summary = json.loads((vae_dir / "vae_summary.json").read_text()) if (vae_dir / "vae_summary.json").is_file() else {}
    why += vae_gap_note(vae_summary.get("train_psnr"), vae_summary.get("val_psnr"), a.vae_augment)
    baselines = {b: {"steps": bench["models"][b]["steps"], "next_frame_psnr": bench["models"][b]["next_frame_psnr"],
                     "gain_db": bench["models"][b]["next_frame_psnr"] - copy_last} for b in a.baselines}
    result = {"videos": a.videos, "probe": probe, "verdict": verdict, "why": why,
              "next_frame_psnr": m["next_frame_psnr"], "copy_last_psnr": copy_last,
              "gain_db": gain, "video_gain_db": video_gain, "gain_ci95": ci, "true_latent_gain_db": ceiling, "train_files_gain_db": train_gain,
              "train_files_scored": train_bench["scored_videos"], "baselines": baselines,
              "vae_reconstruction_psnr": vae_summary.get("val_psnr"),
              "vae_train_reconstruction_psnr": vae_summary.get("train_psnr"), "vae_augment": a.vae_augment,
              "predictor_augment": a.predictor_augment, "test_videos": a.test_videos,
              "held_out_videos": bench["held_out_videos"],
              "heldout_split": {"videos": held["held_out_videos"], "copy_last_psnr": held["copy_last_next_frame_psnr"],
                                "next_frame_psnr": held["models"]["a2a"]["next_frame_psnr"],
                                "video_gain_db": held["models"]["a2a"].get("video_gain_db"),
                                "gain_ci95": held["models"]["a2a"].get("gain_ci95")}, "rollout_frames": frames,
              "rollout_psnr": m["rollout_psnr"], "copy_last_rollout_psnr": bench["copy_last_rollout_psnr"],
              "commands": cmds,
              "command": " ".join(["python", "tools/video_pipeline.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
              "artifacts": {"vae": str(vae_dir / "vae"), "predictor": str(pred_dir), "report": str(report / "heldout.json"),
                            "train_files_report": str(report / "train_files.json"),
                            **({"test_files_report": str(report / "test_files.json")} if a.test_videos else {}),
                            "rollout_png": str(report / ("test_files.png" if a.test_videos else "heldout.png")), "curve_png": str(report / "gain_over_copy_last.png")}}
    write_json_atomic(out / "pipeline.json", result)
    for b, r in baselines.items():
        print(f"baseline {b} ({r['steps']} step{'s' if r['steps'] > 1 else ''}): {r['next_frame_psnr']:.2f} dB "
              f"({r['gain_db']:+.2f} dB over copy-last)")
    where = f"{a.test_videos} ({bench['held_out_videos']} new files)" if a.test_videos else "held-out"
    print(f"\n{where} next-frame PSNR {m['next_frame_psnr']:.2f} dB vs copy-last {copy_last:.2f} dB "
          f"-> {verdict.upper()} ({why})")
    print(f"wrote {out / 'pipeline.json'}")
    return result


if __name__ == "__main__":
    main()
