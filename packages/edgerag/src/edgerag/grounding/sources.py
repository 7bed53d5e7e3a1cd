"""A :class:`Source`: one retrieved chunk as the model sees it, numbered from 1.

Sources are built by the caller from hybrid-search hits (:class:`edgerag.retrieval.hybrid.SearchHit`)
plus the chunk's full text, numbered in retrieval order; the number is the ``[n]`` marker the model
cites. :func:`is_relevant` is the rule that decides whether a hit is worth giving to the model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Source", "is_relevant"]


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(ge=1, description="the source's number: the model cites it as [n]")
    chunk_id: str
    document_id: str
    title: str
    text: str = Field(description="what the model is shown")
    snippet: str = Field(default="", description="a short window of the text, for display")
    score: float = Field(default=0.0, description="fused retrieval score (weighted RRF); higher is better")
    retrievers: dict[str, int] = Field(
        default_factory=dict, description="rank (from 1) in each retriever that found the chunk"
    )


def is_relevant(retrievers: dict[str, int]) -> bool:
    """Whether a hit carries evidence of relevance: the keyword retriever matched it.

    Vector search always returns the nearest chunks, however far they are, and its similarity is not
    reported through fusion (ranks only), so a hit only the vector retriever found is no evidence that
    the documents talk about the question. A keyword match (a query term in the chunk) is.
    """
    return "keyword" in retrievers
