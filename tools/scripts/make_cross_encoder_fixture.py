#!/usr/bin/env python3
"""Build the cross-encoder fixture for runtime/tests/cross_encoder.rs.

A tiny, randomly initialised Hugging Face BertForSequenceClassification
(num_labels = 1, two post-norm layers of width 8) over a 49-token
vocabulary, scored by PyTorch on a few (query, document) pairs. The Rust
test loads the same folder with `load_pretrained_cross` and must match the
scores. Weights are drawn wider than BERT's N(0, 0.02) so that the scores
spread out and a wrong wiring (a transposed matrix, a missing tanh, the
wrong token type) changes them visibly.

Outputs (under --out, normally runtime/tests/fixtures/cross_encoder/):
  config.json, model.safetensors   as transformers' save_pretrained writes them
  vocab.txt                        the vocabulary
  expected.json                    {"max_len": int, "pairs": [{"a", "b", "ids",
                                    "type_ids", "score"}]}
Run through tools/scripts/make_cross_encoder_fixture.sh, which picks the venv.
"""

import argparse
import json
import os
import shutil
import tempfile

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a of in on and is was cat dog bird sat mat flew "
    "over house red blue car drove fast sun rain what where who capital city france paris "
    "river water cold hot ##s ##ed ##ing big small tree green , . ?"
).split()

PAIRS = [
    ("what is the capital of france", "paris is the capital city of france"),
    ("what is the capital of france", "the cat sat on the mat"),
    ("where did the bird fly", "the bird flew over the red house"),
    ("who drove the car", "a dog drove the blue car fast in the rain"),
    ("cold water", "the river water is cold"),
    ("cold water", "hot sun"),
    ("big green trees", "small red cars, big blue houses and green trees in the city"),
]
MAX_LEN = 24


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    vocab_path = os.path.join(args.out, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(WORDS) + "\n")

    torch.manual_seed(1234)
    cfg = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=MAX_LEN,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        num_labels=1,
        pad_token_id=0,
    )
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5)
            else:
                # Biases and layer-norm parameters away from 0 and 1 too.
                p.add_(torch.randn_like(p) * 0.2)

    tmp = tempfile.mkdtemp()
    model.save_pretrained(tmp, safe_serialization=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(tmp, f), os.path.join(args.out, f))
    shutil.rmtree(tmp)

    tok = BertTokenizer(vocab_path, do_lower_case=True)
    a = [p[0] for p in PAIRS]
    b = [p[1] for p in PAIRS]
    enc = tok(a, b, padding=True, truncation="longest_first", max_length=MAX_LEN,
              return_tensors="pt")
    with torch.no_grad():
        scores = model(**enc).logits[:, 0]
    out = {"max_len": MAX_LEN, "pairs": []}
    for i, (x, y) in enumerate(PAIRS):
        n = int(enc["attention_mask"][i].sum())
        out["pairs"].append({
            "a": x,
            "b": y,
            "ids": enc["input_ids"][i][:n].tolist(),
            "type_ids": enc["token_type_ids"][i][:n].tolist(),
            "score": float(scores[i]),
        })
    # One pair a line keeps the file short and its diffs readable.
    lines = [json.dumps(p) for p in out["pairs"]]
    text = '{"max_len": %d, "pairs": [\n%s\n]}\n' % (MAX_LEN, ",\n".join(lines))
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        f.write(text)
    print("scores", [round(float(s), 5) for s in scores])


if __name__ == "__main__":
    main()
