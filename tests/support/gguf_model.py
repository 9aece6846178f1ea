"""Tiny random-weight LLaMA-architecture GGUF models that a real llama.cpp loads in milliseconds.

The model is useless as a language model but real as a file: llama-server parses it, builds its
SentencePiece-style vocabulary, allocates KV cache per slot, decodes, samples and streams. It is
~0.6 MB and written in a few milliseconds, so a test can make as many as it likes.

Why the output layer is biased: with random weights every token is about equally likely, so the
sampler keeps emitting lone byte tokens (`<0xE2>`...) which detokenize to invalid UTF-8, and the
end-of-generation token, which makes lengths unpredictable. Residual dimension 0 is therefore held
at a large constant (every embedding has it, no layer writes to it), which keeps it positive after
the final RMS norm, and `output.weight` gives control, unknown and byte tokens a large negative
weight on that dimension. Their logits end up ~40 below the rest: generated text is always valid
UTF-8 made of word pieces, and generation runs until `n_predict` or a stop string, never EOS.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["TINY_VOCAB", "make_tiny_gguf"]

N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2  # grouped-query attention, as in most real models
N_FF = 128
CONTEXT_LENGTH = 512
RMS_EPS = 1e-5

HOLD = 4.0  # value of the constant residual dimension 0
PENALTY = -20.0  # weight of penalised tokens on that dimension (logit ~ -40)
WORD_BONUS = 1.0  # ...and of whole words (logit ~ +2), so the text is mostly words, not fragments

# SentencePiece marks a leading space with U+2581 "▁".
SP = "\u2581"

_WORD_TEXT = (
    "the a an and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those he she they we you i me my your our their his her them us not no yes all "
    "any some one two three four five six seven eight nine ten many more most much few little big "
    "small old new good bad long short high low first last next other same each every own such only "
    "very also just then now here there when where why how what which who whom whose can could will "
    "would shall should may might must do does did done have has had make made take took go went come "
    "came see saw know knew think thought say said get got give gave find found tell told ask asked "
    "work worked seem feel try leave call keep let begin show hear play run move live believe bring "
    "happen write sit stand lose pay meet include continue set learn change lead understand watch "
    "follow stop create speak read spend grow open walk win offer remember love consider appear buy "
    "wait serve die send expect build stay fall cut reach kill remain time year people way day man "
    "woman child world life hand part place case week company system program question government "
    "number night point home water room mother area money story fact month lot right study book eye "
    "job word business issue side kind head house service friend father power hour game line end "
    "member law car city community name president team minute idea kid body information back parent "
    "face others level office door health person art war history party result morning reason "
    "research girl guy moment air teacher force education model server token slot engine node pool"
)
_WORDS = _WORD_TEXT.split()

# A few words outside ASCII, so streams carry real multi-byte UTF-8.
_UNICODE_WORDS = ("caf\u00e9", "na\u00efve", "\u00fcber", "se\u00f1or", "\u00e9t\u00e9", "\u65e5\u672c", "\u2603")
_SUFFIXES = ("s", "ed", "ing", "er", "ly", "tion")
_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()\""

# gguf.TokenType values, spelled out so importing this module does not need gguf.
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def _vocab() -> tuple[list[str], list[float], list[int], set[str]]:
    """tokens, scores, token types, and the whole-word pieces (which the model prefers to emit).

    llama.cpp's SentencePiece tokenizer builds a word by merging adjacent pieces whose
    concatenation is in the vocabulary, so every prefix of a word is a piece too: "the" in a
    prompt becomes the one token "▁the" (via "▁t", "▁th"), not four.
    """
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
    types = [_UNKNOWN, _CONTROL, _CONTROL, *([_BYTE] * 256)]
    words = [SP + w for w in (*_WORDS, *_UNICODE_WORDS)]
    pieces = [SP, *_CHARS, *"".join(_UNICODE_WORDS)]
    for word in (*words, *_SUFFIXES):
        pieces += [word[:k] for k in range(2, len(word) + 1)]
    unique = list(dict.fromkeys(p for p in pieces if p not in tokens))  # no duplicates, keep order
    tokens += unique
    types += [_NORMAL] * len(unique)
    # Scores: higher merges first; longer pieces win over their parts.
    scores = [0.0] * (len(tokens) - len(unique)) + [float(len(p)) - i * 1e-4 for i, p in enumerate(unique)]
    return tokens, scores, types, set(words)


TINY_VOCAB: tuple[str, ...] = tuple(_vocab()[0])
N_VOCAB = len(TINY_VOCAB)

_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def make_tiny_gguf(path: Path, *, seed: int = 0, name: str = "tiny", context_length: int = CONTEXT_LENGTH) -> Path:
    """Write a tiny seeded LLaMA GGUF to `path` (atomically) and return `path`.

    Two seeds give two different models; the same seed gives byte-identical files.
    """
    import gguf  # imported here: only the tests that make models need it

    logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)  # not "Writing the following files"

    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, scores, types, words = _vocab()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    def normal(*shape: int, std: float) -> np.ndarray:
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    # numpy shape is (rows=out, cols=in); ggml sees it reversed, as llama.cpp expects.
    tensors: dict[str, np.ndarray] = {}
    embd = normal(n_vocab, N_EMBD, std=1.0)
    embd[:, 0] = HOLD
    tensors["token_embd.weight"] = embd.astype(np.float16)  # the two big ones in f16: ~0.6 MB in all
    w_in = 1.0 / np.sqrt(N_EMBD)
    for i in range(N_LAYER):
        blk = f"blk.{i}"
        tensors[f"{blk}.attn_norm.weight"] = np.ones(N_EMBD, dtype=np.float32)
        tensors[f"{blk}.attn_q.weight"] = normal(N_HEAD * head_dim, N_EMBD, std=w_in)
        tensors[f"{blk}.attn_k.weight"] = normal(N_HEAD_KV * head_dim, N_EMBD, std=w_in)
        tensors[f"{blk}.attn_v.weight"] = normal(N_HEAD_KV * head_dim, N_EMBD, std=w_in)
        attn_out = normal(N_EMBD, N_HEAD * head_dim, std=w_in)
        attn_out[0, :] = 0.0  # never write to the held dimension
        tensors[f"{blk}.attn_output.weight"] = attn_out
        tensors[f"{blk}.ffn_norm.weight"] = np.ones(N_EMBD, dtype=np.float32)
        tensors[f"{blk}.ffn_gate.weight"] = normal(N_FF, N_EMBD, std=w_in)
        tensors[f"{blk}.ffn_up.weight"] = normal(N_FF, N_EMBD, std=w_in)
        down = normal(N_EMBD, N_FF, std=1.0 / np.sqrt(N_FF))
        down[0, :] = 0.0
        tensors[f"{blk}.ffn_down.weight"] = down
    tensors["output_norm.weight"] = np.ones(N_EMBD, dtype=np.float32)
    output = normal(n_vocab, N_EMBD, std=0.5)
    output[:, 0] = [
        PENALTY if kind != _NORMAL else WORD_BONUS if tok in words else 0.0
        for tok, kind in zip(tokens, types, strict=True)
    ]
    tensors["output.weight"] = output.astype(np.float16)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, "llama")
    try:
        writer.add_name(name)
        writer.add_description(f"orchestratord test model, random weights, seed {seed}")
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_context_length(context_length)
        writer.add_embedding_length(N_EMBD)
        writer.add_block_count(N_LAYER)
        writer.add_feed_forward_length(N_FF)
        writer.add_head_count(N_HEAD)
        writer.add_head_count_kv(N_HEAD_KV)
        writer.add_layer_norm_rms_eps(RMS_EPS)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(10000.0)
        writer.add_vocab_size(n_vocab)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(0)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_chat_template(_CHATML)
        for tname, array in tensors.items():
            writer.add_tensor(tname, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
