"""Training one trial: KMNIST data, the ResNet-9, the LightningModule and the Trainer."""
