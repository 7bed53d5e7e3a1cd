"""A cheap, conservative token count for keeping chunks under an embedding model's input limit.

The embedding models have a hard input limit (bge: 512 tokens, counting the two special tokens). Past
it, depending on the server, the rest is silently dropped from the vector (BAAI's reference code
truncates) or the request fails (e.g. Hugging Face TEI); Workers AI does not document which. Running
the real tokenizer on the edge would mean shipping its vocabulary (bge's WordPiece file alone is ~230 KB)
and a tokenizer library into every worker, so the chunker sizes chunks with :func:`estimate_tokens`,
which is designed to be an UPPER BOUND of the real count on natural text and costs two regex scans.

How the estimate is built (each rule is the worst case of the tokenizers we care about):

* ``BASE_TOKENS`` (5): the two sequence markers ([CLS]/[SEP] in BERT, <s> in Llama-2) plus a margin of
  3, which covers short texts where a single rare word can take a token per character.
* Lower-case ASCII letters cost 1 per run of up to 3 (``ceil(len / 3)`` for a word).
* Upper-case ASCII letters cost 1 per run of up to 2, plus 1 for every run of two or more capitals:
  both tokenizers have far fewer upper-case merges ("GAPDH", "CXCR", "Hg" split badly).
* Every ASCII digit costs 1 (Llama-2 splits numbers into single digits; WordPiece never does worse).
* A space directly before an ASCII letter is free (it merges into the word's first piece); every other
  character costs 1, and a non-ASCII character costs its UTF-8 length in bytes: byte-fallback
  tokenizers never need more, and WordPiece needs at most 1 ([UNK] included). This over-counts CJK and
  emoji up to 3-4x: safe, not tight.

Measured on SciFact (tests/unit/test_tokens.py): never below the Llama-2 count of any chunk the chunker
produces, about 1.5x above it on average. A one-off check against a BERT uncased WordPiece vocabulary
(the family bge uses) gave the same picture. The estimate is monotone: appending text never lowers it
(the chunker's searches rely on that).

The counting is done by C-level regex scans, not a Python loop per word: the chunker calls this on
every candidate chunk, and on Pyodide a per-character Python loop would dominate ingestion CPU time.

To extend: if a new embedding model tokenises some script much worse than these rules assume, add an
alternative to ``_UNITS`` (every match costs one token) and extend the tests' corpus check with text in
that script.
"""

from __future__ import annotations

import re

__all__ = ["BASE_TOKENS", "estimate_tokens"]

BASE_TOKENS = 5

# Every match is one token. Order matters only for readability: the alternatives match disjoint
# first characters, except the space, which is free when a letter follows.
_UNITS = re.compile(r"[a-z]{1,3}|[A-Z]{1,2}|[0-9]|(?! [A-Za-z])[^A-Za-z0-9]", re.DOTALL)
_CAPITAL_RUN = re.compile(r"[A-Z]{2,}")


def estimate_tokens(text: str) -> int:
    """An upper bound of the embedding model's token count for ``text`` (special tokens included)."""
    # subn counts matches without building a list of them; the extra UTF-8 bytes of non-ASCII
    # characters come from one encode ("surrogatepass" so a lone surrogate is sized, not an error).
    extra_bytes = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return BASE_TOKENS + _UNITS.subn("", text)[1] + _CAPITAL_RUN.subn("", text)[1] + extra_bytes
