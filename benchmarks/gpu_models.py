"""Full-size diffusion pipelines with random weights, built from the published configs,
for ``gpu_speed.py`` (speed and memory do not depend on weight values)."""

from __future__ import annotations

from typing import Any

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
    # LTX-2 (19B): diffusers' defaults are the published config; Gemma 3 12B encodes text.
    "ltx2-distilled": {"family": "ltx2", "variant": "distilled", "transformer": {}},
    "ltx2-full": {"family": "ltx2", "variant": "full", "transformer": {},
                  "call_options": {"spatio_temporal_guidance_blocks": [29]}},
}
GEMMA3_12B = dict(vocab_size=262_208, hidden_size=3840, intermediate_size=15_360,
                  num_hidden_layers=48, num_attention_heads=16, num_key_value_heads=8,
                  head_dim=256, max_position_embeddings=131_072, sliding_window=1024)
SIGLIP_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                     num_attention_heads=16, image_size=896, patch_size=14)
TINY: dict[str, dict[str, Any]] = {
    "ltx2": {"family": "ltx2", "variant": "distilled", "transformer": {}},
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
    if spec["family"] == "ltx2":
        return _build_ltx2(tiny, device, dtype)
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


def _build_ltx2(tiny: bool, device: str, dtype: Any) -> Any:
    """LTX-2 at full size (random weights, made in place on the device), or the tests' tiny
    one on the CPU."""
    import diffusers
    import torch
    import transformers as tf
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    if tiny:
        from tests.engines.tiny_pipelines import tiny_ltx2

        return tiny_ltx2()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            config = tf.Gemma3Config(text_config=tf.Gemma3TextConfig(**GEMMA3_12B),
                                     vision_config=tf.SiglipVisionConfig(**SIGLIP_SO400M))
            return diffusers.LTX2ConditionPipeline(
                scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
                # The published VAE declares its ratios (the default derivation says 64/16).
                vae=diffusers.AutoencoderKLLTX2Video(spatial_compression_ratio=32,
                                                     temporal_compression_ratio=8),
                audio_vae=diffusers.AutoencoderKLLTX2Audio(),
                text_encoder=tf.Gemma3ForConditionalGeneration(config).eval(),
                tokenizer=word_tokenizer(1024), connectors=LTX2TextConnectors(),
                transformer=diffusers.LTX2VideoTransformer3DModel(), vocoder=LTX2Vocoder(),
            )
    finally:
        torch.set_default_dtype(previous)
