"""Images per second of `render_for_targets` against naive Pillow and sharp, one run.

Inputs, generated in a temporary directory: 20 photo-like 4032x3024 JPEGs (gradients plus
noise, so their size is a phone photo's; every fifth with EXIF orientation 6, every fifth
+1 with 8) and 5 RGBA PNGs of 2000x2000. Each is rendered for X, Instagram square,
Instagram portrait and Bluesky:

- project: `render_for_targets(source, specs)` (one decode per image, drafted; byte caps);
- naive: per target, `Image.open`, `convert("RGB")`, LANCZOS resize of the same crop box to
  the same size, save quality 85 (one decode per target, no orientation, no cap search);
- sharp (when `npm install sharp` works in a temporary directory): `sharp.concurrency(1)`,
  per target `.rotate().resize(w, h, {fit: "cover", kernel: "lanczos3"}).flatten(white)
  .jpeg({quality: 85})`, timed inside node.

PSNR compares the project's outputs with naive's where they show the same pixels: the
upright JPEGs (naive leaves rotated ones sideways and RGBA on black), same target size and
crop box, so pixel (x, y) of one is pixel (x, y) of the other. Last line: the ratio vs
sharp (vs naive without it) and the PSNR. Goal: >= 1.0x sharp at >= 35 dB.

    python bench/resize.py [--jpegs 20] [--pngs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from social_pipelines.media import ImageSource, RenderStats, render_for_targets, spec_for
from social_pipelines.media.geometry import plan

SPECS = [
    spec_for("x"),
    spec_for("instagram", "square"),
    spec_for("instagram", "portrait"),
    spec_for("bluesky"),
]
SHARP_SCRIPT = r"""
const fs = require("fs");
const sharp = require("sharp");
sharp.concurrency(1);
const jobs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
(async () => {
  const inputs = jobs.map((job) => fs.readFileSync(job.file));
  const started = process.hrtime.bigint();
  for (let i = 0; i < jobs.length; i++) {
    for (const t of jobs[i].targets) {
      await sharp(inputs[i]).rotate()
        .resize(t.width, t.height, { fit: "cover", position: "centre", kernel: "lanczos3" })
        .flatten({ background: "#ffffff" }).jpeg({ quality: 85 }).toBuffer();
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const versions = { version: sharp.versions.sharp, vips: sharp.versions.vips };
  console.log(JSON.stringify({ seconds, ...versions }));
})();
"""


def photo(width: int, height: int, seed: int) -> Image.Image:
    ramp = Image.linear_gradient("L").resize((width, height))
    ring = Image.radial_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 18 + seed % 5)
    bands = [
        Image.blend(ramp, noise, 0.25),
        Image.blend(ring, noise, 0.2),
        Image.blend(ramp.transpose(Image.Transpose.ROTATE_180), noise, 0.3),
    ]
    return Image.merge("RGB", bands)


def make_inputs(directory: Path, jpegs: int, pngs: int) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    base = photo(4032, 3024, 0)
    for i in range(jpegs):
        orientation = {0: 6, 1: 8}.get(i % 5, 1)
        exif = Image.Exif()
        exif[0x0112] = orientation
        image = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else base
        path = directory / f"photo{i:02d}.jpg"
        image.save(path, "JPEG", quality=90 + i % 5, exif=exif.tobytes())
        files.append((path, orientation))
    for i in range(pngs):
        image = photo(2000, 2000, i).convert("RGBA")
        alpha = Image.radial_gradient("L").resize((2000, 2000)).point(lambda v: 255 - v)
        image.putalpha(alpha)
        path = directory / f"logo{i}.png"
        image.save(path, "PNG", compress_level=1)
        files.append((path, 1))
    return files


def run_project(files: list[tuple[Path, int]]) -> tuple[float, dict[str, bytes], RenderStats]:
    sources = [ImageSource(path.read_bytes(), location=path.name) for path, _ in files]
    outputs: dict[str, bytes] = {}
    stats = RenderStats()
    started = time.perf_counter()
    for source in sources:
        for rendering in render_for_targets(source, SPECS, stats=stats):
            outputs[f"{source.location}:{rendering.spec.name}"] = rendering.data
    return time.perf_counter() - started, outputs, stats


def run_naive(files: list[tuple[Path, int]]) -> tuple[float, dict[str, bytes]]:
    blobs = [(path.name, path.read_bytes()) for path, _ in files]
    outputs: dict[str, bytes] = {}
    started = time.perf_counter()
    for name, data in blobs:
        for spec in SPECS:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            target = plan(spec, *image.size)
            box = target.box(*image.size)
            out = image.resize((target.width, target.height), Image.Resampling.LANCZOS, box=box)
            buffer = io.BytesIO()
            out.save(buffer, "JPEG", quality=85)
            outputs[f"{name}:{spec.name}"] = buffer.getvalue()
    return time.perf_counter() - started, outputs


def run_sharp(files: list[tuple[Path, int]], workdir: Path) -> dict[str, object] | None:
    if not shutil.which("node") or not shutil.which("npm"):
        print("sharp: skipped (node or npm not found)")
        return None
    node_dir = Path(tempfile.mkdtemp(prefix="bench-sharp-"))
    try:
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "sharp"],
            cwd=node_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if installed.returncode != 0:
            print(f"sharp: skipped (npm install failed: {installed.stderr.strip()[:200]})")
            return None
        jobs = []
        for path, _ in files:
            with Image.open(path) as image:
                oriented = (image.height, image.width) if _turned(image) else image.size
            targets = [plan(spec, *oriented) for spec in SPECS]
            jobs.append(
                {
                    "file": str(path),
                    "targets": [{"width": t.width, "height": t.height} for t in targets],
                }
            )
        (workdir / "jobs.json").write_text(json.dumps(jobs))
        (node_dir / "bench.js").write_text(SHARP_SCRIPT)
        done = subprocess.run(
            ["node", str(node_dir / "bench.js"), str(workdir / "jobs.json")],
            cwd=node_dir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            print(f"sharp: skipped (node failed: {done.stderr.strip()[:200]})")
            return None
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(node_dir, ignore_errors=True)


def _turned(image: Image.Image) -> bool:
    return image.getexif().get(0x0112) in (5, 6, 7, 8)


def psnr(a: bytes, b: bytes) -> float | None:
    first, second = (
        Image.open(io.BytesIO(a)).convert("RGB"),
        Image.open(io.BytesIO(b)).convert("RGB"),
    )
    if first.size != second.size:
        return None
    rms = ImageStat.Stat(ImageChops.difference(first, second)).rms
    mse = sum(value * value for value in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jpegs", type=int, default=20)
    parser.add_argument("--pngs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-resize-") as temporary:
        workdir = Path(temporary)
        print(f"generating {args.jpegs} JPEGs 4032x3024 and {args.pngs} RGBA PNGs 2000x2000 ...")
        files = make_inputs(workdir, args.jpegs, args.pngs)
        count = len(files)
        megabytes = sum(path.stat().st_size for path, _ in files) / 1e6
        print(
            f"inputs: {count} files, {megabytes:.1f} MB; "
            f"targets: {', '.join(s.name for s in SPECS)}"
        )

        project_s, project_out, stats = run_project(files)
        naive_s, naive_out = run_naive(files)
        sharp = run_sharp(files, workdir)

        project_rate, naive_rate = count / project_s, count / naive_s
        print(
            f"project  {project_rate:6.2f} images/s ({project_s:.2f} s; decodes {stats.decodes}, "
            f"encodes {stats.encodes} for {stats.rendered} targets)"
        )
        print(
            f"naive    {naive_rate:6.2f} images/s ({naive_s:.2f} s)  "
            f"project/naive {project_rate / naive_rate:.2f}x"
        )
        sharp_rate = None
        if sharp is not None:
            sharp_rate = count / float(sharp["seconds"])  # type: ignore[arg-type]
            print(
                f"sharp    {sharp_rate:6.2f} images/s ({float(sharp['seconds']):.2f} s; sharp "  # type: ignore[arg-type]
                f"{sharp['version']}, libvips {sharp['vips']}, concurrency 1)  "
                f"project/sharp {project_rate / sharp_rate:.2f}x"
            )
        over = [key for key, data in project_out.items() if len(data) > _cap(key)]
        print(
            f"byte caps: {len(project_out) - len(over)}/{len(project_out)} "
            "project outputs within their cap"
        )

        upright = {
            path.name for path, orientation in files if orientation == 1 and path.suffix == ".jpg"
        }
        scores = [
            value
            for key, data in project_out.items()
            if key.split(":")[0] in upright and (value := psnr(data, naive_out[key])) is not None
        ]
        finite = [value for value in scores if math.isfinite(value)]  # X: same bytes, no resize
        worst = min(scores)
        mean = sum(finite) / len(finite) if finite else math.inf
        print(f"{len(scores) - len(finite)} outputs identical to naive's (no resize, same encoder)")
        print(
            f"PSNR project vs naive over {len(scores)} same-size upright outputs: "
            f"mean {mean:.1f} dB, min {worst:.1f} dB"
        )
        if sharp_rate is not None:
            print(
                f"ratio project/sharp: {project_rate / sharp_rate:.2f}x (goal >= 1.0), "
                f"PSNR min {worst:.1f} dB (goal >= 35)"
            )
        else:
            print(
                f"ratio project/naive: {project_rate / naive_rate:.2f}x (no sharp), "
                f"PSNR min {worst:.1f} dB (goal >= 35)"
            )


def _cap(key: str) -> int:
    name = key.split(":")[1]
    platform, _, variant = name.partition("-")
    return spec_for(platform, variant or None).max_bytes


if __name__ == "__main__":
    main()
