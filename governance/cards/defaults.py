"""The built-in card template: used for a tier until an admin saves its own (CardTemplate)."""

SECTIONS = [
    ("purpose", "Purpose", "What decision or process the model supports, and why it exists."),
    ("intended_use", "Intended use", "Who uses the output and for what; uses that are out of scope."),
    ("inputs", "Inputs", "The features the model reads (the signature) and where they come from."),
    ("output", "Output", "What the model returns and how it is to be read."),
    ("performance", "Performance", "Metrics on each split and the validation's headline figures."),
    ("training_data", "Training data and lineage", "Datasets with digests, the run, the code, the parameters."),
    ("validation", "Validation, approvals and findings", "The validation run, who approved, open findings."),
    ("owner", "Owner", "The accountable person or team, and how to reach them."),
    ("sla", "SLA", "Latency, availability and retraining commitments."),
    ("limitations", "Limitations", "Known weaknesses, populations or conditions where it should not be trusted."),
    ("ethics", "Ethical and regulatory considerations", "Fairness, privacy, the regulation that applies."),
]

# Required sections per tier ('' = a model without a tier): the rest are offered, not required.
REQUIRED = {
    "tier1": [key for key, _, _ in SECTIONS],
    "tier2": ["purpose", "intended_use", "inputs", "output", "performance", "owner", "limitations"],
    "tier3": ["purpose", "owner"],
    "": ["purpose"],
}


def default_sections(tier: str) -> list[dict]:
    required = set(REQUIRED.get(tier, REQUIRED[""]))
    return [{"key": key, "title": title, "required": key in required, "guidance": guidance}
            for key, title, guidance in SECTIONS]
