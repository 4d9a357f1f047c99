"""Classifiers taught by example: what `POST /v1/classifiers/{name}` answers, and its retirement."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from kerasserve.schemas.models import ModelInfo

HeadKind = Literal["centroid", "logistic"]


class ClassExamples(BaseModel):
    """One class of a taught classifier: its examples and how well leave-one-out found them."""

    label: str
    examples: int = Field(description="Photos of this class in this version (earlier ones too).")
    new_examples: int = Field(description="Photos of this class posted in this request.")
    loo_accuracy: float = Field(
        description="Share of this class' photos the kept head classified right when each was "
        "held out in turn (recall)."
    )


class HeadEvaluation(BaseModel):
    """One head fitted on the embeddings, measured by leave-one-out over every example."""

    kind: HeadKind = Field(
        description="centroid: cosine to each class' mean embedding, softmax with a "
        "temperature; logistic: multinomial logistic regression on centred embeddings."
    )
    loo_accuracy: float
    loo_log_loss: float


class TeachTiming(BaseModel):
    """Where the request's time went, in seconds."""

    embed_s: float = Field(description="Decoding the photos and computing their embeddings.")
    fit_s: float = Field(description="Fitting both heads and their leave-one-out evaluation.")
    save_s: float = Field(description="Writing base + head as one .keras file, and examples.")
    load_s: float = Field(description="Loading and warming the new version beside the old.")
    total_s: float


class ClassifierResponse(BaseModel):
    """`POST /v1/classifiers/{name}`: the version just published and how good it is."""

    name: str
    version: int = Field(description="The version published (serving from now on).")
    base: str = Field(description="The keras.applications model whose embeddings it uses.")
    layer: str = Field(description="The base's layer the embeddings come from (avg-pooled).")
    head: HeadKind = Field(description="The head kept: the better leave-one-out accuracy.")
    temperature: float | None = Field(
        default=None, description="centroid head: cosine similarities are divided by this."
    )
    accuracy: float = Field(
        description="Leave-one-out accuracy of the kept head over every example of this version."
    )
    evaluation: Literal["leave-one-out"] = "leave-one-out"
    heads: list[HeadEvaluation] = Field(description="Every head fitted, kept or not.")
    examples: int = Field(description="Photos this version was fitted on (earlier ones too).")
    new_examples: int = Field(description="Photos posted in this request.")
    classes: list[ClassExamples] = Field(description="In the model's output order.")
    confusion: list[list[int]] = Field(
        default_factory=list,
        description="Leave-one-out confusion of the kept head: row i counts the examples of "
        "`classes[i]` by the class they were given (columns in `classes` order); the diagonal "
        "is what it got right.",
    )
    stored_in: str = Field(
        description="The version's folder: in the model repository when the server has one, "
        "else a folder the server owns for its lifetime."
    )
    timing: TeachTiming
    model: ModelInfo = Field(description="The model as `GET /v1/models/{name}` describes it.")


class ClassifierRetired(BaseModel):
    """`DELETE /v1/classifiers/{name}`: the classifier no longer serves, its files are gone."""

    name: str
    versions: list[int] = Field(description="The versions removed.")
