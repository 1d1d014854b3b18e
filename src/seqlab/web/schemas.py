"""Request bodies of the JSON API, with their limits (a request over them is a 422 naming the field)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT = 500  # characters of any text a request carries
MAX_TOKENS = 500  # tokens one request may unroll or generate
MAX_BODY = 64 * 1024  # bytes of a request body (413 above)
ModelName = Field(min_length=1, max_length=200, description="a run listed by /api/models, e.g. 'sst2' or "
                                                          "'toy:lstm' (the unroller's scratch cells)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnrollRequest(Strict):
    model: str = ModelName
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    hidden: int = Field(4, ge=1, le=16, description="toy cells only: hidden size")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="toy cells only: seed of the weights and word vectors")
    top_k: int = Field(5, ge=1, le=20, description="language models: next tokens shown per step")


class GenerateRequest(Strict):
    model: str = ModelName
    prime: str = Field("", max_length=MAX_TEXT)
    length: int = Field(200, ge=1, le=MAX_TOKENS)
    temperature: float = Field(0.8, gt=0.0, le=5.0)
    top_k: int = Field(0, ge=0, le=1000, description="0: no limit")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class Seq2SeqRequest(Strict):
    model: str = ModelName
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    beam: int = Field(1, ge=1, le=10)


class TagRequest(Strict):
    model: str = ModelName
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class ForecastRequest(Strict):
    model: str = ModelName
    origin: str | None = Field(None, max_length=64, description="time label to forecast from; default: the "
                                                                "start of the model's test part")
    history: int = Field(96, ge=1, le=2000, description="steps of history shown before the origin")
