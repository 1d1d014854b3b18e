"""`seqlab serve`: the unroller and the trained models' pages as a local web app (see app.py)."""
