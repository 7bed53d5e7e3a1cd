"""Request and response bodies of the OpenAI-compatible routes, in OpenAI's wire shapes.

Requests are validated strictly where a value changes what is answered and loosely elsewhere:

- **Unknown top-level fields are ignored** (``extra="ignore"``), as OpenAI-compatible servers (vLLM,
  Ollama, llama.cpp) do, so a newer SDK that sends a new optional parameter keeps working. Sampling
  hints this API does not forward (``top_p``, ``seed``, ``stop``, penalties, ``logit_bias``,
  ``parallel_tool_calls``, ``metadata``, ``store``) fall in that group.
- Parameters whose value would change the *shape* of the answer are declared and limited to what is
  served: ``n`` must be 1, ``tool_choice`` may be ``"auto"`` or ``"none"`` (a forced tool cannot be
  guaranteed across providers), ``response_format`` may only be ``{"type": "text"}``, ``logprobs`` only
  false; anything else is a 400 naming the field.
- Message content is a string or a list of ``{"type": "text"}`` parts (no images or audio: the
  configured models read text only).

The ``edgerag`` extension field (:class:`EdgeragOptions`; the SDK sends it with
``extra_body={"edgerag": {...}}``) controls grounding; responses carry :class:`EdgeragExtension` under
the same name.

To accept another OpenAI parameter: declare it here with the values served, and map it in
:mod:`gateway.openai_api.translate`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from edgerag.llm.types import ToolSpec
from pydantic import BaseModel, ConfigDict, Field

from gateway.enduser import END_USER_PATTERN

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "EdgeragExtension",
    "EdgeragOptions",
    "EmbeddingList",
    "EmbeddingsRequest",
    "ModelList",
]

MAX_CONTENT_CHARS = 100_000
MAX_EMBEDDING_INPUTS = 256
_TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- requests --------------------------------------------------------------------------------------


class TextPart(_Loose):
    type: Literal["text"]
    text: str = Field(max_length=MAX_CONTENT_CHARS)


Content = (
    Annotated[str, Field(max_length=MAX_CONTENT_CHARS)]
    | Annotated[list[TextPart], Field(min_length=1, max_length=64)]
)


class FunctionCall(_Loose):
    name: str = Field(min_length=1, max_length=128)
    arguments: str = Field(default="{}", max_length=MAX_CONTENT_CHARS, description="JSON text")


class MessageToolCall(_Loose):
    id: str = Field(min_length=1, max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Loose):
    role: Literal["system", "developer"]
    content: Content


class UserMessage(_Loose):
    role: Literal["user"]
    content: Content


class AssistantMessage(_Loose):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[MessageToolCall] | None = Field(default=None, max_length=64)


class ToolMessage(_Loose):
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(min_length=1, max_length=128)


RequestMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class FunctionDefinition(_Loose):
    name: str = Field(pattern=_TOOL_NAME)
    description: str | None = Field(default=None, max_length=4096)
    parameters: dict[str, Any] | None = Field(default=None, description="a JSON Schema of the arguments")


class ToolParam(_Loose):
    type: Literal["function"]
    function: FunctionDefinition

    def spec(self) -> ToolSpec:
        parameters = self.function.parameters or {"type": "object", "properties": {}}
        return ToolSpec(
            name=self.function.name, description=self.function.description or "", parameters=parameters
        )


class StreamOptions(_Loose):
    include_usage: bool | None = Field(
        default=None, description="send a last chunk with the usage of the whole request (and empty choices)"
    )


class ResponseFormat(_Closed):
    type: Literal["text"]


class EdgeragOptions(_Closed):
    """The extension field ``edgerag`` of a chat completion request."""

    grounding: bool = Field(
        default=True,
        description="retrieve from the tenant's documents with the last user message and answer from "
        "them (cited as [n]); false sends the messages to the model as they are",
    )
    top_k: int = Field(default=5, ge=1, le=20, description="sources given to the model at most")
    document_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=50, description="ground only in these documents (omitted: all)"
    )


class ChatCompletionRequest(_Loose):
    model: str = Field(min_length=1, max_length=128, description="an id from GET /v1/models")
    messages: list[RequestMessage] = Field(min_length=1, max_length=500)
    tools: list[ToolParam] | None = Field(
        default=None,
        max_length=64,
        description="the client's own functions: offered to the model, never run by the server; calls "
        "come back as message.tool_calls with finish_reason 'tool_calls'",
    )
    tool_choice: Literal["auto", "none"] | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768, description="deprecated alias of the next")
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        default=None,
        max_length=128,
        pattern=END_USER_PATTERN,
        description="the end user (same rule as X-End-User, which wins when both are sent)",
    )
    n: int | None = Field(default=None, ge=1, le=1, description="only 1 choice is served")
    logprobs: Literal[False] | None = None
    response_format: ResponseFormat | None = None
    edgerag: EdgeragOptions | None = None


EmbeddingInput = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]


class EmbeddingsRequest(_Loose):
    input: (
        EmbeddingInput | Annotated[list[EmbeddingInput], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    ) = Field(description="one text or a list of texts (cut to the model's input limit, like search)")
    model: str | None = Field(default=None, max_length=128, description="the configured embedding model's id")
    encoding_format: Literal["float", "base64"] | None = Field(
        default=None, description="base64: little-endian float32 (what the SDK asks for by default)"
    )
    dimensions: int | None = Field(
        default=None, ge=1, le=8192, description="must equal the model's dimensions"
    )
    user: str | None = Field(default=None, max_length=128)


# ---- responses -------------------------------------------------------------------------------------


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="0: this deployment does not know when a model was created")
    owned_by: str = Field(description="the configured provider that serves it")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class SourceOut(BaseModel):
    n: int = Field(description="the marker [n] that cites it")
    document_id: str
    chunk_id: str
    title: str
    snippet: str
    score: float


class CitationOut(BaseModel):
    n: int
    document_id: str
    chunk_id: str
    title: str


class EdgeragExtension(BaseModel):
    """The extension field ``edgerag`` of a completion (and of the stream's finishing chunk)."""

    grounded: bool = Field(description="whether sources from the tenant's documents were retrieved")
    sources: list[SourceOut] = Field(description="what the model was given, numbered as it saw them")
    citations: list[CitationOut] = Field(description="the sources the answer cites, in order of first use")
    removed_citations: int = Field(
        0, description="markers that named no given source: removed from a non-streamed answer, counted"
    )
    provider: str | None = Field(default=None, description="the configured provider that answered")
    cost_usd: float | None = None


class ResponseFunctionCall(BaseModel):
    name: str
    arguments: str


class ResponseToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None
    tool_calls: list[ResponseToolCall] | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: FinishReason
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="the configured model that answered (a fallback may answer)")
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None
    edgerag: EdgeragExtension


class ChunkToolCallFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ChunkToolCall(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChunkToolCallFunction


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` line of a streamed completion (documented for the schema; sent as JSON text)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    edgerag: EdgeragExtension | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
