"""The registry pages over the mirror: catalogue, model, version, compare and lineage. Views are thin;
reads live in `selectors`, pandas and plotly in `compare` and `charts`."""
