"""Dataset profiles (routing skew, expert overlap, draft acceptance) and acceptance parameters.

A **dataset profile** (``data/datasets/<name>.toml``) holds, per target model, the workload
parameters that the paper does not state and that depend on what is being generated
(docs/model.md §4, §6 and §9):

- ``zipf_exponent`` a: routing skew, ``routing.expert_probabilities(E, k, "zipf", a)``;
- ``overlap_frac`` rho: share of a token's experts already chosen by the previous token of its
  sequence (``routing.effective_tokens``);
- ``alpha_max``: acceptance ceiling of the Elastic-SD self-draft
  (``speculative.elastic_acceptance``);
- ``eagle_acceptance_frac``, ``slm_acceptance_frac``: per-token acceptance of the EAGLE draft
  head and of a small separate draft LM (baselines EAGLE-SD and SLM-SD);
- ``batch_locality_scale``, ``pool_window_tokens`` (optional per model; else the dataset's
  ``[locality]`` block, :class:`LocalityProfile`): the loss of locality as the batch grows and
  the routing window that picks the hot pool (``elmoe_dse.locality``).

Tables are keyed by model id (``[models."glm-4.7-flash"]``) plus a ``[models.default]`` table used
for any other model. Every value is an assumption with a ``source`` saying why; ``[ranges]`` maps a
dotted field path to ``{min, max, source}`` and the loader rejects a value outside its range
(calibration never leaves it). Model ids contain dots, so a path is resolved against the keys that
exist (``models.glm-4.7-flash.alpha_max``), and ``*`` in the model position applies a range to
every model table (``models.*.alpha_max``).

**Acceptance-shape parameters** (``data/acceptance.toml``, shared by all datasets): the named
constants of ``speculative.bits_quality`` and ``speculative.expert_quality``, with the same
``[ranges]`` convention; every parameter must have a range.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from elmoe_dse.specs._base import (
    DATA_DIR,
    RangeSpec,
    Spec,
    check_ranges,
    load_named_or_path,
    load_spec_file,
    shipped_names,
    validate,
)

DATASETS_DIR = DATA_DIR / "datasets"
ACCEPTANCE_PATH = DATA_DIR / "acceptance.toml"

DEFAULT_MODEL_KEY = "default"
WILDCARD = "*"


class ModelProfile(Spec):
    """Workload parameters of one target model on one dataset (all fractions 0-1)."""

    zipf_exponent: float = Field(
        ge=0, le=4, description="routing skew a of p_i ∝ rank^-a (0 = uniform)"
    )
    overlap_frac: float = Field(
        ge=0,
        lt=1,
        description="rho: share of a token's experts already chosen by the previous token",
    )
    alpha_max: float = Field(
        gt=0, lt=1, description="acceptance ceiling of the Elastic-SD self-draft"
    )
    eagle_acceptance_frac: float = Field(
        gt=0, lt=1, description="per-token acceptance of an EAGLE draft head"
    )
    slm_acceptance_frac: float = Field(
        gt=0, lt=1, description="per-token acceptance of a small separate draft LM"
    )
    source: str
    # Locality terms (docs/model.md §5): None = the dataset's [locality] block.
    batch_locality_scale: float | None = Field(
        default=None, gt=0, description="B_loc: batch size at which the reuse rho halves"
    )
    pool_window_tokens: float | None = Field(
        default=None, ge=1, description="W: tokens per sequence whose routing counts pick the pool"
    )


class LocalityProfile(Spec):
    """A dataset's locality terms, for every model table that does not set its own.

    - ``batch_locality_scale`` B_loc: the loss of locality as the batch grows,
      rho_B = rho / (1 + (B - 1) / B_loc) (``locality.batch_overlap``), used by every cache;
    - ``pool_window_tokens`` W: the hot pool is the top-C experts by routing counts over the
      previous W tokens of each sequence (``locality.window_pool``), refreshed every W tokens.
    """

    batch_locality_scale: float = Field(gt=0, description="B_loc, sequences")
    pool_window_tokens: float = Field(ge=1, le=4096, description="W, tokens per sequence")
    source: str


class DatasetProfile(Spec):
    """A dataset's workload profile per target model. See the module docstring."""

    schema_version: int = Field(ge=1, le=1)
    name: str = Field(min_length=1)
    description: str
    source: str
    models: dict[str, ModelProfile]
    locality: LocalityProfile
    ranges: dict[str, RangeSpec] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _has_default(cls, models: dict[str, ModelProfile]) -> dict[str, ModelProfile]:
        if DEFAULT_MODEL_KEY not in models:
            raise ValueError(
                f"no [models.{DEFAULT_MODEL_KEY}] table; add one, it is used for every model "
                "without its own table"
            )
        for key in models:
            if key != key.lower() or key != key.strip():
                raise ValueError(
                    f"model key '{key}' must be a lower-case model id; write "
                    f"'{key.strip().lower()}'"
                )
        return models

    @model_validator(mode="after")
    def _in_ranges(self) -> DatasetProfile:
        check_ranges(self, self.expanded_ranges())
        return self

    def expanded_ranges(self) -> dict[str, RangeSpec]:
        """Ranges with ``*`` replaced by every model key; an exact path beats a wildcard."""
        out: dict[str, RangeSpec] = {}
        for path, rng in self.ranges.items():
            prefix = f"models.{WILDCARD}."
            if path.startswith(prefix):
                field = path[len(prefix) :]
                if field not in ModelProfile.model_fields:
                    raise ValueError(
                        f"range path '{path}': '{field}' is not a model-profile field; use one "
                        f"of {', '.join(ModelProfile.model_fields)}"
                    )
                for key in self.models:
                    out.setdefault(f"models.{key}.{field}", rng)
            elif WILDCARD in path:
                raise ValueError(
                    f"range path '{path}': '*' is allowed only as the model key (models.*.FIELD)"
                )
        for path, rng in self.ranges.items():
            if WILDCARD not in path:
                out[path] = rng
        return out

    def for_model(self, model_id: str) -> ModelProfile:
        """The profile of ``model_id`` (case-insensitive), or the ``default`` table, with the
        locality terms it does not set taken from the ``[locality]`` block."""
        profile = self.models.get(str(model_id).strip().lower(), self.models[DEFAULT_MODEL_KEY])
        fill = {
            name: getattr(self.locality, name)
            for name in ("batch_locality_scale", "pool_window_tokens")
            if getattr(profile, name) is None
        }
        return profile.model_copy(update=fill) if fill else profile


class AcceptanceParams(Spec):
    """Shape parameters of the acceptance model (``speculative.bits_quality``, ``expert_quality``).

    The bit factor q_bits = exp(-(NSR / s)^n) is anchored on two observable points of a
    round-to-nearest draft instead of on s and n directly, so that every point of the ranges
    keeps the paper's observations (4 bits good, collapse below 4 bits):

    - ``round_4bit_quality_frac``: q_bits of a 4-bit rounded draft (fixes the scale s);
    - ``round_2bit_quality_frac``: q_bits of a 2-bit rounded draft (fixes the steepness n);
    - ``bias_coherence``: effective number of dot-product terms over which a weight bias adds
      coherently, c = d x mean(x)^2 / E[x^2] (0 = a bias costs nothing beyond its noise);
    - ``expert_coverage_exponent``: beta of q_experts = coverage^beta.
    """

    schema_version: int = Field(ge=1, le=1)
    source: str
    round_4bit_quality_frac: float = Field(gt=0, lt=1)
    round_2bit_quality_frac: float = Field(gt=0, lt=1)
    bias_coherence: float = Field(ge=0)
    expert_coverage_exponent: float = Field(gt=0)
    ranges: dict[str, RangeSpec]

    @model_validator(mode="after")
    def _consistent(self) -> AcceptanceParams:
        if not self.round_2bit_quality_frac < self.round_4bit_quality_frac:
            raise ValueError(
                f"round_2bit_quality_frac = {self.round_2bit_quality_frac} must be below "
                f"round_4bit_quality_frac = {self.round_4bit_quality_frac} (fewer bits, more "
                "error); lower it"
            )
        for name in self.parameter_names():
            if name not in self.ranges:
                raise ValueError(
                    f"no range for '{name}'; add [ranges.{name}] with min, max and source"
                )
        for path in self.ranges:
            if path not in self.parameter_names():
                raise ValueError(
                    f"range path '{path}' is not a shape parameter; use one of "
                    f"{', '.join(self.parameter_names())}"
                )
        check_ranges(self, self.ranges)
        return self

    @staticmethod
    def parameter_names() -> tuple[str, ...]:
        """The numeric shape parameters (every one has a range)."""
        return (
            "round_4bit_quality_frac",
            "round_2bit_quality_frac",
            "bias_coherence",
            "expert_coverage_exponent",
        )


# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------


def list_datasets() -> list[str]:
    """Names of the shipped dataset specs."""
    return shipped_names(DATASETS_DIR)


def load_dataset(name_or_path: str | Path) -> DatasetProfile:
    """Load a shipped dataset profile by name (case-insensitive) or a profile file by path."""
    return load_named_or_path(DatasetProfile, name_or_path, DATASETS_DIR, "dataset")


@cache
def _load_acceptance(path: Path) -> AcceptanceParams:
    return validate(AcceptanceParams, load_spec_file(path), path=path)


def load_acceptance_params(path: str | Path | None = None) -> AcceptanceParams:
    """Load the acceptance-shape parameters: the shipped ``data/acceptance.toml`` or ``path``."""
    if path is None:
        return _load_acceptance(ACCEPTANCE_PATH)
    return validate(AcceptanceParams, load_spec_file(path), path=path)
