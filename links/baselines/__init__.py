"""Baseline links that RKD-SC is compared with: separate coding, digital features, deep JSCC, non-robust KD."""
