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
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    LTX2ConditionPipeline,
    LTX2VideoTransformer3DModel,
    LTXConditionPipeline,
    LTXLatentUpsamplePipeline,
    LTXVideoTransformer3DModel,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
from diffusers.pipelines.ltx2 import LTX2TextConnectors
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
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


def tiny_gemma3() -> Gemma3ForConditionalGeneration:
    """LTX-2's text encoder, Gemma 3, at 2 layers of 32 (its vision tower is unused)."""
    text = Gemma3TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
        sliding_window=64,
    )
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=8, patch_size=4)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    return Gemma3ForConditionalGeneration(config).eval()


def _tiny_ltx2_vae(real_compression: bool) -> AutoencoderKLLTX2Video:
    """A 2x spatial / 2x temporal video VAE, or one with the real LTX-2 VAE's 32x / 8x
    (patches of 4, then three 2x stages in space and time)."""
    if real_compression:
        vae = AutoencoderKLLTX2Video(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1), spatio_temporal_scaling=(True,) * 4,
            decoder_spatio_temporal_scaling=(True,) * 3, decoder_inject_noise=(False,) * 4,
            upsample_residual=(False,) * 3, upsample_factor=(1,) * 3,
            timestep_conditioning=False, patch_size=4, patch_size_t=1, encoder_causal=True,
            decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8,
        )
    else:
        vae = AutoencoderKLLTX2Video(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,),
            decoder_block_out_channels=(8,), layers_per_block=(1,),
            decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
            decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False),
            downsample_type=("spatial",), upsample_residual=(False,), upsample_factor=(1,),
            timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True,
            decoder_causal=False,
        )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def tiny_ltx2(real_compression: bool = False) -> LTX2ConditionPipeline:
    """LTX2ConditionPipeline with a tiny video VAE (``_tiny_ltx2_vae``) and a joint audio
    branch (shapes from the diffusers test suite). The audio VAE and vocoder are sized so
    that the waveform is honest: 8 kHz, a mel hop of 16 samples and a vocoder that
    upsamples by 16."""
    torch.manual_seed(0)
    text_encoder = tiny_gemma3()
    hidden = text_encoder.config.text_config.hidden_size
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
        num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=hidden,
        rope_double_precision=False, rope_type="split",
    )
    connectors = LTX2TextConnectors(
        caption_channels=hidden, text_proj_in_factor=3,
        video_connector_num_attention_heads=4, video_connector_attention_head_dim=8,
        video_connector_num_layers=1, video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4, audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1, audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split",
    )
    vae = _tiny_ltx2_vae(real_compression)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1,
        attn_resolutions=None, in_channels=2, resolution=32, latent_channels=2,
        norm_type="pixel", causality_axis="height", dropout=0.0, mid_block_add_attention=False,
        sample_rate=8000, mel_hop_length=16, is_causal=True, mel_bins=8,
    )
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[8, 8],
        upsample_factors=[4, 4], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=8000,
    )
    return LTX2ConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, audio_vae=audio_vae,
        text_encoder=text_encoder, tokenizer=tiny_tokenizer(), connectors=connectors,
        transformer=transformer, vocoder=vocoder,
    )


def _tiny_wan_transformer(
    image_dim: int | None, pos_embed_seq_len: int | None, in_channels: int = 36
) -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
        in_channels=in_channels,
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
    elif version == "2.2-ti2v":
        # TI2V-5B: one transformer on the bare latents, the image as the first latent frame.
        parts["transformer"] = _tiny_wan_transformer(None, None, in_channels=16)
        parts["expand_timesteps"] = True
    else:
        raise ValueError(f"unknown tiny Wan version {version!r}; use '2.1', '2.2' or '2.2-ti2v'")
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
        "wan22-ti2v": lambda: tiny_wan("2.2-ti2v"), "ltx2": tiny_ltx2,
        "ltx2-480p": lambda: tiny_ltx2(real_compression=True),
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


def save_tiny_ltx2_upsampler(directory: Path) -> Path:
    """LTX-2's latent spatial upsampler (2x) for the tiny LTX-2 VAE's 4 latent channels."""
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

    torch.manual_seed(0)
    model = LTX2LatentUpsamplerModel(in_channels=4, mid_channels=32, num_blocks_per_stage=1,
                                     dims=3, spatial_upsample=True, temporal_upsample=False,
                                     use_rational_resampler=False)
    model.save_pretrained(directory, safe_serialization=True)
    return directory

