"""`elubench export`: recorded runs into TensorBoard event files and MLflow runs."""
