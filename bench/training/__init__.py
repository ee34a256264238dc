"""Training: LightningModule, LightningDataModule and the run driver."""
