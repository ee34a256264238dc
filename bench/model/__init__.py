"""What training and prediction share about the classifier's inputs: padded batches of token ids."""
