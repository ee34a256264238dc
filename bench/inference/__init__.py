"""Using a trained run: saved model folders (:mod:`.model_files`), prediction (:mod:`.predictor`), input files."""
