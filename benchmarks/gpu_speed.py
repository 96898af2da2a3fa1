"""Seconds per stage for a 5 s video through the diffusion engine, on one GPU.

Weights cannot be downloaded where this was written, so every model is built from its
published configuration with random weights, directly on the GPU in bfloat16. Speed and
memory do not depend on weight values; the frames are noise, the timings are real.
Pass ``--weights DIR`` to time real weights from a diffusers folder instead.

    python benchmarks/gpu_speed.py --models ltx-2b-distilled ltx-13b-distilled \
        --resolutions 480p 720p 1080p --compile --out benchmarks/results/gpu_speed.md
    python benchmarks/gpu_speed.py --tiny      # the same code path on the CPU, in seconds

Each configuration renders once to warm up (and compile), then ``--runs`` times measured;
the table shows the last run: text encode, VAE encode, denoise, VAE decode, H.264 encode,
end to end, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from typing import Any

import numpy as np

from segue.domain import SIZES, Mode, frames_for
from segue.engines.base import RenderJob
from segue.engines.diffusion import DiffusionEngine

T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
              num_heads=64, feed_forward_proj="gated-gelu")
UMT5_XXL = dict(T5_XXL, vocab_size=256384)
LTX_TRANSFORMER = dict(  # LTX-Video 2B (0.9.x); the 13B changes heads' size and depth
    in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
    attention_head_dim=64, cross_attention_dim=2048, num_layers=28,
    activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads",
    norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096,
    attention_bias=True, attention_out_bias=True,
)
LTX_VAE = dict(  # LTX-Video 0.9.7 VAE (32x spatial, 8x temporal, timestep-aware decoder)
    in_channels=3, out_channels=3, latent_channels=128,
    block_out_channels=(128, 256, 512, 1024, 2048),
    down_block_types=("LTXVideo095DownBlock3D",) * 4,
    decoder_block_out_channels=(256, 512, 1024), layers_per_block=(4, 6, 6, 2, 2),
    decoder_layers_per_block=(5, 5, 5, 5), spatio_temporal_scaling=(True, True, True, True),
    decoder_spatio_temporal_scaling=(True, True, True),
    decoder_inject_noise=(False, False, False, False),
    downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    upsample_residual=(True, True, True), upsample_factor=(2, 2, 2),
    timestep_conditioning=True, patch_size=4, patch_size_t=1, resnet_norm_eps=1e-6,
    scaling_factor=1.0, encoder_causal=True, decoder_causal=False,
    spatial_compression_ratio=32, temporal_compression_ratio=8,
)
WAN_14B = dict(
    attention_head_dim=128, cross_attn_norm=True, eps=1e-6, ffn_dim=13824, freq_dim=256,
    in_channels=36, num_attention_heads=40, num_layers=40, out_channels=16,
    patch_size=(1, 2, 2), qk_norm="rms_norm_across_heads", text_dim=4096,
)
WAN_FLF2V = dict(WAN_14B, image_dim=1280, added_kv_proj_dim=5120, rope_max_seq_len=1024,
                 pos_embed_seq_len=257 * 2)
CLIP_H14 = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                num_attention_heads=16, patch_size=14, image_size=224, projection_dim=1024)

MODELS: dict[str, dict[str, Any]] = {
    "ltx-2b-distilled": {"family": "ltx", "variant": "distilled", "transformer": LTX_TRANSFORMER},
    "ltx-13b-distilled": {
        "family": "ltx", "variant": "distilled",
        "transformer": dict(LTX_TRANSFORMER, attention_head_dim=128, cross_attention_dim=4096,
                            num_layers=48),
    },
    "wan2.1-flf2v-14b": {"family": "wan", "variant": "flf2v", "transformer": WAN_FLF2V},
    "wan2.2-i2v-a14b": {"family": "wan", "variant": "i2v", "transformer": WAN_14B},
}
TINY: dict[str, dict[str, Any]] = {
    "ltx": {"family": "ltx", "variant": "dev", "transformer": dict(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32)},
    "wan": {"family": "wan", "variant": "flf2v", "transformer": dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
        image_dim=4, pos_embed_seq_len=2 * 17)},
}
TINY_T5 = dict(vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
               relative_attention_num_buckets=8)
TINY_LTX_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
    decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
    decoder_layers_per_block=(1, 1, 1, 1, 1),
    spatio_temporal_scaling=(True, True, False, False),
    decoder_spatio_temporal_scaling=(True, True, False, False),
    decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4,
    upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1, patch_size_t=1,
)
TINY_WAN_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                    temperal_downsample=[False, True, True])
TINY_CLIP = dict(hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
                 image_size=4, intermediate_size=16, patch_size=1)


def word_tokenizer(max_length: int) -> Any:
    """A word-level tokenizer: text-encoder cost depends on the padded length, not the words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=max_length)


def build_pipeline(spec: dict[str, Any], tiny: bool, device: str) -> Any:
    """The model's pipeline with random weights, created on ``device`` in its run dtype."""
    import diffusers
    import torch
    import transformers as tf

    dtype = torch.float32 if tiny else torch.bfloat16
    text = TINY_T5 if tiny else (T5_XXL if spec["family"] == "ltx" else UMT5_XXL)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in place: a 14B model never exists in fp32
    try:
        with torch.device(device):
            if spec["family"] == "ltx":
                return diffusers.LTXConditionPipeline(
                    scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
                    vae=diffusers.AutoencoderKLLTXVideo(**(TINY_LTX_VAE if tiny else LTX_VAE)),
                    text_encoder=tf.T5EncoderModel(tf.T5Config(**text)).eval(),
                    tokenizer=word_tokenizer(128),
                    transformer=diffusers.LTXVideoTransformer3DModel(**spec["transformer"]),
                )
            return _build_wan(spec, tiny, text, dtype)
    finally:
        torch.set_default_dtype(previous)


def _build_wan(spec: dict[str, Any], tiny: bool, text: dict, dtype: Any) -> Any:
    import diffusers
    import torch
    import transformers as tf

    parts: dict[str, Any] = {"transformer": diffusers.WanTransformer3DModel(**spec["transformer"])}
    if spec["variant"] == "i2v":
        parts["transformer_2"] = diffusers.WanTransformer3DModel(**spec["transformer"])
        parts["boundary_ratio"] = 0.9
    else:
        clip = tf.CLIPVisionConfig(**(TINY_CLIP if tiny else CLIP_H14))
        parts["image_encoder"] = tf.CLIPVisionModel(clip).eval().to(torch.float32)
        size = clip.image_size
        parts["image_processor"] = tf.CLIPImageProcessor(crop_size=size, size=size)
    vae = diffusers.AutoencoderKLWan(**(TINY_WAN_VAE if tiny else {})).to(torch.float32)
    return diffusers.WanImageToVideoPipeline(
        tokenizer=word_tokenizer(512), text_encoder=tf.UMT5EncoderModel(tf.UMT5Config(**text)),
        vae=vae, scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=5.0), **parts,
    )


def keyframes(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    first = np.broadcast_to((x + y) / 2, (height, width, 3)).astype(np.uint8)
    return first, (255 - first).copy()


def h264_sink(width: int, height: int) -> tuple[Any, Any, Any]:
    """An in-memory libx264 encoder like the service's (veryfast, crf 18, yuv420p)."""
    import av

    container = av.open(io.BytesIO(), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "18"}
    return container, stream, av.VideoFrame


def timed_render(engine: DiffusionEngine, job: RenderJob) -> dict[str, float]:
    """One render consumed by the H.264 encoder; seconds per stage and peak memory."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    container, stream, video_frame = h264_sink(job.width, job.height)
    encode = 0.0
    started = time.perf_counter()
    for frame in engine.render(job):
        t = time.perf_counter()
        for packet in stream.encode(video_frame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        encode += time.perf_counter() - t
    t = time.perf_counter()
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    encode += time.perf_counter() - t
    result = dict(engine.timer.seconds, h264_encode=encode, total=time.perf_counter() - started)
    result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return result


COLUMNS = ("text_encode", "image_encode", "vae_encode", "denoise", "vae_decode", "to_frames",
           "h264_encode", "total", "peak_gib")


def row(model: str, size: str, frames: int, steps: int, r: dict[str, float]) -> str:
    cells = [f"{r.get(c, 0.0):.2f}" for c in COLUMNS]
    return f"| {model} | {size} | {frames} | {steps} | " + " | ".join(cells) + " |"


def header(device: str) -> str:
    import diffusers
    import torch

    cols = " | ".join(COLUMNS)
    return (
        f"\nDevice: {device}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"Python {platform.python_version()}. Random weights from the published configs.\n\n"
        f"| model | size | frames | steps | {cols} |\n|" + "---|" * (4 + len(COLUMNS))
    )


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    args = parse_args(argv)
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.processor()})"
    specs = TINY if args.tiny else {m: MODELS[m] for m in args.models}
    lines, results = [header(name)], []
    print(lines[0], flush=True)
    for model, spec in specs.items():
        engine = DiffusionEngine(
            family=spec["family"], model=args.weights or model, variant=spec["variant"],
            steps=2 if args.tiny else args.steps, device=device, compile=args.compile,
            attention_backend=args.attention, step_cache=args.step_cache,
            cpu_offload=args.cpu_offload,
        )
        if args.weights:
            engine.load()
        else:
            engine.use_pipeline(build_pipeline(spec, args.tiny, device), device)
        sizes = [("tiny", 64, 64)] if args.tiny else [
            (r, *SIZES[r]["16:9"]) for r in args.resolutions]
        for label, width, height in sizes:
            frames = 9 if args.tiny else frames_for(args.duration)
            first, last = keyframes(width, height)
            job = RenderJob(prompt="a cat walks on the beach at sunset", mode=Mode.FIRST_LAST,
                            width=width, height=height, frames=frames, seed=0,
                            first=first, last=last)
            for _ in range(1 + args.runs):  # the first run warms up (and compiles)
                result = timed_render(engine, job)
            steps = len(engine.timer.steps)
            lines.append(row(model, f"{label} {width}x{height}", frames, steps, result))
            results.append(dict(result, model=model, width=width, height=height))
            print(lines[-1], flush=True)
        del engine
        torch.cuda.empty_cache() if device == "cuda" else None
    if args.out:
        with open(args.out, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["ltx-2b-distilled"])
    p.add_argument("--resolutions", nargs="+", choices=list(SIZES), default=["720p"])
    p.add_argument("--duration", type=int, default=5, help="seconds of video (24 fps)")
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--runs", type=int, default=1, help="measured runs after the warm-up")
    p.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    p.add_argument("--attention", default=None, help="diffusers attention backend, e.g. flash")
    p.add_argument("--step-cache", type=float, default=None, help="first-block cache threshold")
    p.add_argument("--cpu-offload", action="store_true", help="for models beyond GPU memory")
    p.add_argument("--weights", default=None, help="a diffusers folder of real weights")
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU")
    p.add_argument("--out", default=None, help="append the markdown table to this file")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
