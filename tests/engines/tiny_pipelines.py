"""Tiny random diffusers pipelines built fully offline, for the diffusion engine tests.

Real LTX-Video and Wan checkpoints are tens of gigabytes and the test machines have
no hub access, so these builders make the same pipeline classes from small configs
with random weights (the shapes follow the diffusers test-suite configs). Speed and
shapes do not depend on weight values, so the engine's whole path (loading from a
diffusers-layout folder, conditioning, the denoising loop, decoding) runs as in
production, only on a model a few hundred kilobytes large.

Import this module only after ``pytest.importorskip("diffusers")``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    LTXConditionPipeline,
    LTXLatentUpsamplePipeline,
    LTXVideoTransformer3DModel,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
    UMT5Config,
    UMT5EncoderModel,
)

TEXT_DIM = 32
_WORDS = (
    "a the of and in on to with is camera fixed does not move red blue green cat dog "
    "walks runs sky sea city night day slow fast zoom pan light dark"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level T5-like tokenizer (pad=0, eos=1, unk=2) built in code, no download."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )


def tiny_text_encoder(umt5: bool = False) -> T5EncoderModel | UMT5EncoderModel:
    """A 2-layer T5 encoder (LTX) or UMT5 encoder (Wan) with random weights."""
    sizes = dict(
        vocab_size=64, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=16,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    if umt5:
        return UMT5EncoderModel(UMT5Config(**sizes)).eval()
    return T5EncoderModel(T5Config(**sizes)).eval()


def tiny_ltx(real_compression: bool = False) -> LTXConditionPipeline:
    """LTXConditionPipeline with a 4x spatial / 4x temporal VAE, or with the real LTX VAE's
    32x / 8x compression (so that Seedance output sizes stay cheap in the worker tests)."""
    torch.manual_seed(0)
    scaling = (True, True, True, False) if real_compression else (True, True, False, False)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=TEXT_DIM,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8,
        block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=scaling, decoder_spatio_temporal_scaling=scaling,
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False, patch_size=4 if real_compression else 1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=tiny_text_encoder(),
        tokenizer=tiny_tokenizer(),
        transformer=transformer,
    )


def _tiny_wan_transformer(image_dim: int | None, pos_embed_seq_len: int | None):
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
        out_channels=16, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
        image_dim=image_dim, pos_embed_seq_len=pos_embed_seq_len,
    )


def tiny_wan(version: str = "2.1") -> WanImageToVideoPipeline:
    """WanImageToVideoPipeline shaped like Wan2.1 FLF2V (CLIP image encoder) or Wan2.2 I2V
    (two transformers split at ``boundary_ratio``, no image encoder)."""
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    parts: dict[str, object] = {}
    if version == "2.1":
        clip_size = 4
        clip = CLIPVisionConfig(
            hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
            image_size=clip_size, intermediate_size=16, patch_size=1,
        )
        parts["image_encoder"] = CLIPVisionModel(clip).eval()
        parts["image_processor"] = CLIPImageProcessor(crop_size=clip_size, size=clip_size)
        # FLF2V embeds the first and the last image: two CLIP sequences side by side.
        parts["transformer"] = _tiny_wan_transformer(4, 2 * (clip_size * clip_size + 1))
    elif version == "2.2":
        parts["transformer"] = _tiny_wan_transformer(None, None)
        parts["transformer_2"] = _tiny_wan_transformer(None, None)
        parts["boundary_ratio"] = 0.875
    else:
        raise ValueError(f"unknown tiny Wan version {version!r}; use '2.1' or '2.2'")
    return WanImageToVideoPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_text_encoder(umt5=True),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        **parts,
    )


def save_tiny(kind: str, directory: Path) -> Path:
    """Write a tiny pipeline in the diffusers folder layout (what SEGUE_MODELS_DIR holds)."""
    builders = {
        "ltx": tiny_ltx, "ltx-480p": lambda: tiny_ltx(real_compression=True),
        "wan21": lambda: tiny_wan("2.1"), "wan22": lambda: tiny_wan("2.2"),
    }
    pipe = builders[kind]()
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


def tiny_ltx_upsampler(latent_channels: int = 8) -> LTXLatentUpsamplerModel:
    """A latent spatial upsampler (2x) for the tiny LTX VAE's latents, random weights."""
    torch.manual_seed(0)
    return LTXLatentUpsamplerModel(
        in_channels=latent_channels, mid_channels=32, num_blocks_per_stage=1, dims=3,
        spatial_upsample=True, temporal_upsample=False,
    )


def save_tiny_upsampler(directory: Path, pipeline_layout: bool = False) -> Path:
    """Write the tiny upsampler as a bare model folder (``config.json``) or, as Lightricks
    publishes it, an ``LTXLatentUpsamplePipeline`` folder (``model_index.json``)."""
    model = tiny_ltx_upsampler()
    if pipeline_layout:
        pipe = LTXLatentUpsamplePipeline(vae=tiny_ltx().vae, latent_upsampler=model)
        pipe.save_pretrained(directory, safe_serialization=True)
    else:
        model.save_pretrained(directory, safe_serialization=True)
    return directory
