"""The families a user can fit, register and serve (plain names: specs import them)."""

# The learned model (its architecture, transformer or GRU, is its `sequence`).
MODEL_FAMILY = "model"
# The classical families, each fitted or tuned on train and calibrated on validation.
CLASSICAL_FAMILIES = (
    "gradient_boosting",
    "ipda",
    "ipda_adaptive",
    "track_score",
    "clutter_map",
    "m_of_n",
)
FAMILIES = (MODEL_FAMILY, *CLASSICAL_FAMILIES)
