"""RKD-SC: large-model-enabled semantic communication with robust knowledge distillation."""
