"""Model cards: a card per model version, in markdown sections set by a template per risk tier,
prefilled from the evidence the console holds, edited as a governed change, written back to MLflow
as the version's description and exported as HTML and PDF."""
